/** The two ways out of a conflict: push on top of the newer version, or save as a new image. */
import type { QueueItem } from '../../../../shared/schemas/agent.ts';
import { useAction } from '../hooks.ts';
import { ErrorMessage } from '../Message.tsx';
import { usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';

export function ConflictChoices({ item, onResolved }: { item: QueueItem; onResolved?: (item: QueueItem) => void }) {
  const panel = usePanel();
  const resolve = useAction(async (action: 'push-on-top' | 'new-asset') => {
    const next = await panel.client.resolveConflict(item.id, { action });
    onResolved?.(next);
    panel.refreshStatus();
    return next;
  });
  return (
    <div className="conflict" data-testid="conflict-choices">
      <div className="message-detail">Someone saved a newer version of this image while you worked on it.</div>
      <div className="row">
        <Button variant="primary" onClick={() => void resolve.run('push-on-top')} disabled={resolve.running} testId="push-on-top">
          Push on top
        </Button>
        <Button onClick={() => void resolve.run('new-asset')} disabled={resolve.running} testId="save-as-new">
          Save as new image
        </Button>
      </div>
      {resolve.error ? <ErrorMessage error={resolve.error} actions={{}} /> : null}
    </div>
  );
}
