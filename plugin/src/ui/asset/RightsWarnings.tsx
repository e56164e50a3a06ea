import type { RightsWarning } from './rights.ts';

export function RightsWarnings({ warnings }: { warnings: readonly RightsWarning[] }) {
  if (warnings.length === 0) return null;
  return (
    <div className="rights" data-testid="rights-warnings">
      {warnings.map((w) => (
        <div key={w.kind} className={`message ${w.level === 'confirm' ? 'message-warning' : 'message-info'}`} data-testid={`rights-${w.kind}`}>
          {w.message}
        </div>
      ))}
    </div>
  );
}
