import { useRef, type ReactNode } from 'react';
import './elements.ts';
import { flag, useElementEvent } from './use-element-event.ts';

export interface ButtonProps {
  children: ReactNode;
  onClick: () => void;
  /** `cta`, `primary`, `secondary`, `warning` (sp-button); ignored by action buttons. */
  variant?: 'cta' | 'primary' | 'secondary' | 'warning';
  disabled?: boolean;
  quiet?: boolean;
  /** An `sp-action-button` (toolbar style) instead of an `sp-button`. */
  action?: boolean;
  title?: string;
  testId?: string;
}

/** `sp-button` / `sp-action-button` with its click listener attached by ref. */
export function Button(props: ButtonProps) {
  const ref = useRef<HTMLElement>(null);
  useElementEvent(ref, 'click', () => {
    if (!props.disabled) props.onClick();
  });
  const common = {
    ref,
    disabled: flag(props.disabled),
    quiet: flag(props.quiet),
    title: props.title,
    'data-testid': props.testId,
  };
  if (props.action) return <sp-action-button {...common}>{props.children}</sp-action-button>;
  return (
    <sp-button {...common} variant={props.variant ?? 'secondary'}>
      {props.children}
    </sp-button>
  );
}
