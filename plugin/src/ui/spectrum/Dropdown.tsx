import { useRef } from 'react';
import './elements.ts';
import { flag, useElementEvent } from './use-element-event.ts';

export interface DropdownOption<V extends string> {
  value: V;
  label: string;
}

export interface DropdownProps<V extends string> {
  label: string;
  value: V;
  options: readonly DropdownOption<V>[];
  onChange: (value: V) => void;
  disabled?: boolean;
  testId?: string;
}

/**
 * `sp-dropdown` with an `sp-menu` of items. The widget reports the chosen item's index
 * (`selectedIndex`), which is mapped back to the option's value.
 */
export function Dropdown<V extends string>(props: DropdownProps<V>) {
  const ref = useRef<HTMLElement & { selectedIndex?: number }>(null);
  useElementEvent(ref, 'change', (event) => {
    const target = (event.currentTarget ?? event.target) as { selectedIndex?: number } | null;
    const option = props.options[target?.selectedIndex ?? -1];
    if (option && option.value !== props.value) props.onChange(option.value);
  });
  return (
    <div className="field-row">
      <sp-label>{props.label}</sp-label>
      <sp-dropdown ref={ref} class="field" disabled={flag(props.disabled)} data-testid={props.testId} aria-label={props.label}>
        <sp-menu slot="options">
          {props.options.map((option) => (
            <sp-menu-item key={option.value} value={option.value} selected={flag(option.value === props.value)}>
              {option.label}
            </sp-menu-item>
          ))}
        </sp-menu>
      </sp-dropdown>
    </div>
  );
}
