import './elements.ts';

export interface ProgressBarProps {
  label: string;
  /** Bytes or items done. */
  done: number;
  /** Total, or null when unknown (an indeterminate bar). */
  total: number | null;
  testId?: string;
}

/** `sp-progressbar` showing `done` of `total` as a percentage. */
export function ProgressBar(props: ProgressBarProps) {
  const known = props.total !== null && props.total > 0;
  const percent = known ? Math.min(100, Math.round((props.done / (props.total as number)) * 100)) : 0;
  return (
    <sp-progressbar
      class="progress"
      max={100}
      value={percent}
      indeterminate={known ? undefined : true}
      show-value={known ? true : undefined}
      data-testid={props.testId}
      role="progressbar"
      aria-valuenow={known ? percent : undefined}
      aria-label={props.label}
    >
      <sp-label slot="label">{props.label}</sp-label>
    </sp-progressbar>
  );
}
