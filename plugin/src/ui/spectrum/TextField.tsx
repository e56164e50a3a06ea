import { useEffect, useRef } from 'react';
import './elements.ts';
import { flag, useElementEvent } from './use-element-event.ts';

export interface TextFieldProps {
  value: string;
  onChange: (value: string) => void;
  /** Enter pressed in the field. */
  onSubmit?: () => void;
  placeholder?: string;
  type?: 'text' | 'search' | 'password' | 'url';
  label?: string;
  disabled?: boolean;
  invalid?: boolean;
  id?: string;
  testId?: string;
  multiline?: boolean;
}

/**
 * `sp-textfield` (or `sp-textarea`), kept in step with `value`: the widget owns its text, so the
 * value is written as a property when it differs, and `input` events report what was typed.
 */
export function TextField(props: TextFieldProps) {
  const ref = useRef<HTMLElement & { value: string }>(null);
  useEffect(() => {
    const element = ref.current;
    if (element && element.value !== props.value) element.value = props.value;
  }, [props.value]);
  useElementEvent(ref, 'input', (event) => props.onChange(readValue(event)));
  useElementEvent(ref, 'change', (event) => props.onChange(readValue(event)));
  useElementEvent(ref, 'keydown', (event) => {
    if ((event as KeyboardEvent).key === 'Enter' && !props.multiline) props.onSubmit?.();
  });
  const common = {
    ref,
    id: props.id,
    'data-testid': props.testId,
    placeholder: props.placeholder,
    disabled: flag(props.disabled),
    invalid: flag(props.invalid),
    'aria-label': props.label ?? props.placeholder,
  };
  const field = props.multiline ? (
    <sp-textarea {...common} class="field"></sp-textarea>
  ) : (
    <sp-textfield {...common} class="field" type={props.type ?? 'text'}></sp-textfield>
  );
  if (!props.label) return field;
  return (
    <div className="field-row">
      <sp-label>{props.label}</sp-label>
      {field}
    </div>
  );
}

function readValue(event: Event): string {
  const target = (event.currentTarget ?? event.target) as { value?: unknown } | null;
  return typeof target?.value === 'string' ? target.value : '';
}
