/**
 * "Save back as a new version" with a comment. The save goes to the agent's durable queue (or
 * stays pending in the panel while the companion is away); its progress is followed here until
 * the new version is on the server, and a conflict offers its two ways out.
 */
import { useState } from 'react';
import type { Checkout, QueueItem } from '../../../../shared/schemas/agent.ts';
import { useAction, usePoll } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { usePanel } from '../panel-context.ts';
import { ConflictChoices } from '../queue/ConflictChoices.tsx';
import { groupOf, stateLabel } from '../queue/queue-model.ts';
import { Button } from '../spectrum/Button.tsx';
import { ProgressBar } from '../spectrum/ProgressBar.tsx';
import { TextField } from '../spectrum/TextField.tsx';
import { canSaveBack, runSaveBack } from './save-back.ts';

export interface SaveBackProps {
  checkout: Checkout | undefined;
  label: string;
  /** A version landed on the server: the detail fetches the asset again. */
  onLanded: (item: QueueItem) => void;
}

export function SaveBack({ checkout, label, onLanded }: SaveBackProps) {
  const panel = usePanel();
  const [comment, setComment] = useState('');
  const [item, setItem] = useState<QueueItem | undefined>();
  const [kept, setKept] = useState<string | undefined>();
  const allowed = canSaveBack(checkout, comment);
  const save = useAction(async () => {
    if (!checkout) return undefined;
    setKept(undefined);
    setItem(undefined);
    const result = await runSaveBack({ client: panel.client, host: panel.host, pending: panel.pending, checkout, comment, label });
    panel.pendingChanged();
    if ('queued' in result) {
      setItem(result.queued);
      setComment('');
    } else {
      setKept(result.message);
    }
    panel.refreshStatus();
    return result;
  });
  const following = item !== undefined && (groupOf(item) === 'in-flight' || groupOf(item) === 'offline');
  usePoll(
    async () => {
      if (!item) return;
      try {
        const fresh = await panel.client.queueItem(item.id);
        setItem(fresh);
        if (fresh.state === 'done') {
          onLanded(fresh);
          panel.refreshStatus();
        }
      } catch {
        // the queue view shows the details; here the last known state stays
      }
    },
    700,
    following,
    [item?.id],
  );

  return (
    <div className="form" data-testid="save-back">
      <sp-heading size="XS">Save back as a new version</sp-heading>
      <TextField label="Comment" multiline value={comment} onChange={setComment} placeholder="What changed?" testId="save-comment" />
      <div className="row">
        <Button variant="cta" onClick={() => void save.run()} disabled={!allowed.ok || save.running || following} testId="save-back-button">
          {save.running ? 'Saving…' : 'Save back'}
        </Button>
        {!allowed.ok ? <span className="hint">{allowed.reason}</span> : null}
      </div>
      {kept ? (
        <Notice kind="warning" testId="save-kept">
          {kept}
        </Notice>
      ) : null}
      {save.error ? <ErrorMessage error={save.error} actions={{ retry: () => void save.run(), queue: () => panel.go('queue') }} testId="save-error" /> : null}
      {item ? (
        <div className="queue-follow" data-testid="save-status" data-state={item.state}>
          {item.state !== 'done' ? <div className="item-sub">{stateLabel(item)}</div> : null}
          {following ? <ProgressBar label={`Uploading ${label}`} done={item.progress.done} total={item.progress.total} testId="save-progress" /> : null}
          {item.state === 'conflict' ? <ConflictChoices item={item} onResolved={setItem} /> : null}
          {item.state === 'done' && item.result ? (
            <Notice kind="success" testId="save-done">
              Saved as version {item.result.version}.
            </Notice>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
