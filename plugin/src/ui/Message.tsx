import type { ReactNode } from 'react';
import { Button } from './spectrum/Button.tsx';
import { describeError, type WayOut } from './messages.ts';

export interface ErrorMessageProps {
  error: unknown;
  /** Actions for the ways out this place can offer; others are not shown. */
  actions?: Partial<Record<WayOut, () => void>>;
  testId?: string;
}

const LABELS: Record<WayOut, string> = {
  retry: 'Try again',
  pair: 'Pair again',
  'start-companion': 'Try again',
  connections: 'Connections',
  'sign-in': 'Sign in',
  back: 'Back',
  refine: 'Refine search',
  queue: 'Open the queue',
};

/** A failure in words, with its way out as a button (and "Try again" as the fallback). */
export function ErrorMessage(props: ErrorMessageProps) {
  const message = describeError(props.error);
  const primary = props.actions?.[message.wayOut];
  // "Try again" as well, unless it is the same button or pointless (the thing is gone).
  const fallback = LABELS[message.wayOut] !== LABELS.retry && message.wayOut !== 'back' ? props.actions?.retry : undefined;
  return (
    <div className="message message-error" role="alert" data-testid={props.testId ?? 'error'} data-code={message.code}>
      <div className="message-title">{message.title}</div>
      {message.detail && message.detail !== message.title ? <div className="message-detail">{message.detail}</div> : null}
      <div className="row">
        {primary ? <Button onClick={primary}>{LABELS[message.wayOut]}</Button> : null}
        {fallback ? <Button onClick={fallback}>{LABELS.retry}</Button> : null}
      </div>
    </div>
  );
}

export function Notice(props: { kind?: 'info' | 'warning' | 'success'; children: ReactNode; testId?: string }) {
  return (
    <div className={`message message-${props.kind ?? 'info'}`} data-testid={props.testId}>
      {props.children}
    </div>
  );
}
