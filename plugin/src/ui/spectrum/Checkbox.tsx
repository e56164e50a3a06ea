import { useEffect, useRef, type ReactNode } from 'react';
import './elements.ts';
import { flag, useElementEvent } from './use-element-event.ts';

export interface CheckboxProps {
  checked: boolean;
  onChange: (checked: boolean) => void;
  children: ReactNode;
  disabled?: boolean;
  testId?: string;
}

/** `sp-checkbox`; its `change` event carries the new state in `checked`. */
export function Checkbox(props: CheckboxProps) {
  const ref = useRef<HTMLElement & { checked: boolean }>(null);
  useEffect(() => {
    if (ref.current && ref.current.checked !== props.checked) ref.current.checked = props.checked;
  }, [props.checked]);
  useElementEvent(ref, 'change', (event) => {
    const target = (event.currentTarget ?? event.target) as { checked?: boolean } | null;
    props.onChange(Boolean(target?.checked));
  });
  return (
    <sp-checkbox ref={ref} checked={flag(props.checked)} disabled={flag(props.disabled)} data-testid={props.testId}>
      {props.children}
    </sp-checkbox>
  );
}
