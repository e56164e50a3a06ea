/**
 * The queue: saves still held by the panel (the companion was away), then the agent's pushes:
 * conflicts and failures first, then waiting (offline) and uploading ones with progress, then
 * done. Polls quickly while something moves.
 */
import { useState } from 'react';
import type { QueueItem } from '../../../../shared/schemas/agent.ts';
import { flushPending, sendPending } from '../asset/save-back.ts';
import { useAction, usePoll } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { describeError } from '../messages.ts';
import { connectionNames, usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { ProgressBar } from '../spectrum/ProgressBar.tsx';
import { ConflictChoices } from './ConflictChoices.tsx';
import type { PendingSave } from './pending-saves.ts';
import { groupOf, pollInterval, sortQueue, stateLabel, summarise } from './queue-model.ts';

export function QueueScreen() {
  const panel = usePanel();
  const [items, setItems] = useState<QueueItem[] | undefined>();
  const [error, setError] = useState<unknown>();
  const pending = panel.pending.list();
  const kick = usePoll(
    async () => {
      try {
        const fresh = await panel.client.queue();
        setItems(fresh);
        setError(undefined);
        return pollInterval(summarise(fresh), panel.pending.list().length);
      } catch (e) {
        setError(e);
        return 3000;
      }
    },
    2000,
    true,
    [panel.client, panel.pendingVersion],
  );
  const sorted = items ? sortQueue(items) : [];
  const names = connectionNames(panel.connections);
  return (
    <div className="screen" data-testid="queue-screen">
      <sp-heading size="S">Uploads</sp-heading>
      {pending.length > 0 ? <PendingList pending={pending} onChange={kick} /> : null}
      {/* The companion being away is said once, by the banner above the tabs. */}
      {error && describeError(error).code !== 'ERR_AGENT_NOT_RUNNING' ? <ErrorMessage error={error} actions={{ retry: kick }} testId="queue-error" /> : null}
      {items && sorted.length === 0 && pending.length === 0 ? <Notice testId="queue-empty">Nothing waiting: every save is on its server.</Notice> : null}
      <div className="list">
        {sorted.map((item) => (
          <QueueRow key={item.id} item={item} server={names[item.connection] ?? item.connection} onChange={kick} />
        ))}
      </div>
    </div>
  );
}

function QueueRow({ item, server, onChange }: { item: QueueItem; server: string; onChange: () => void }) {
  const panel = usePanel();
  const group = groupOf(item);
  const retry = useAction(async () => {
    await panel.client.retry(item.id);
    onChange();
  });
  // The agent names the file it uploads (`filename`); its spool path is only a fallback.
  const named = (item as { filename?: unknown }).filename;
  const name = typeof named === 'string' && named ? named : (item.path.split(/[\\/]/).pop() ?? item.path);
  return (
    <div className={`list-item queue-item queue-${group}`} data-testid="queue-item" data-state={item.state} data-group={group}>
      <div className="row spread">
        <span className="item-title">{name}</span>
        <span className="item-sub">{server}</span>
      </div>
      <div className="item-sub">
        {item.kind === 'new-asset' ? 'New image' : `New version of ${item.assetId} (from ${item.baseVersion})`}
        {item.comment ? ` · “${item.comment}”` : ''}
      </div>
      <div className={group === 'failed' || group === 'conflict' ? 'warning-text' : 'item-sub'} data-testid="queue-state">
        {stateLabel(item)}
        {item.attempts > 1 ? ` · attempt ${item.attempts}` : ''}
      </div>
      {group === 'in-flight' || group === 'offline' ? <ProgressBar label={`Uploading ${name}`} done={item.progress.done} total={item.progress.total} testId="queue-progress" /> : null}
      {group === 'conflict' ? <ConflictChoices item={item} onResolved={onChange} /> : null}
      {group === 'failed' || group === 'offline' ? (
        <Button action onClick={() => void retry.run()} disabled={retry.running} testId="retry">
          {group === 'failed' ? 'Retry' : 'Retry now'}
        </Button>
      ) : null}
      {retry.error ? <ErrorMessage error={retry.error} /> : null}
    </div>
  );
}

function PendingList({ pending, onChange }: { pending: PendingSave[]; onChange: () => void }) {
  const panel = usePanel();
  const [confirmDiscard, setConfirmDiscard] = useState<string | undefined>();
  const sendAll = useAction(async () => {
    const result = await flushPending(panel.client, panel.pending, { includeRefused: true });
    panel.pendingChanged();
    onChange();
    return result;
  });
  const sendOne = useAction(async (save: PendingSave) => {
    await sendPending(panel.client, panel.pending, save);
    panel.pendingChanged();
    onChange();
  });
  return (
    <div className="section" data-testid="pending-saves">
      <Notice kind="warning">
        {pending.length === 1 ? '1 save is' : `${pending.length} saves are`} kept in this panel until the companion takes {pending.length === 1 ? 'it' : 'them'}.
      </Notice>
      {pending.map((save) => (
        <div className="list-item" key={save.id} data-testid="pending-save">
          <div className="item-title">{save.label}</div>
          <div className="item-sub">
            {save.comment ? `“${save.comment}” · ` : ''}
            {save.lastError ? save.lastError.message : 'Not sent yet'}
          </div>
          <div className="row">
            <Button action onClick={() => void sendOne.run(save)} disabled={sendOne.running}>
              Send now
            </Button>
            {confirmDiscard === save.id ? (
              <Button
                action
                onClick={() => {
                  panel.pending.remove(save.id);
                  panel.pendingChanged();
                  setConfirmDiscard(undefined);
                }}
              >
                Discard this save?
              </Button>
            ) : (
              <Button action quiet onClick={() => setConfirmDiscard(save.id)}>
                Discard
              </Button>
            )}
          </div>
        </div>
      ))}
      <Button onClick={() => void sendAll.run()} disabled={sendAll.running}>
        Send all
      </Button>
      {sendAll.error ? <ErrorMessage error={sendAll.error} /> : null}
    </div>
  );
}
