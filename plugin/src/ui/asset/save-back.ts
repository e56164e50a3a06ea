/**
 * "Save back as a new version" as a user action. The active document is saved first when it is
 * the checked-out file; then the save is written to the panel's pending saves, handed to the
 * agent's durable queue, and removed from the pending saves only once the agent holds it.
 * When the agent is down the save stays pending (shown in the queue view, sent again later).
 */
import type { Checkout, QueueItem } from '../../../../shared/schemas/agent.ts';
import type { ActiveDocument, HostAdapter } from '../../../host/types.ts';
import type { AgentClient } from '../../agent-client.ts';
import { normalisePath } from '../links/out-of-date.ts';
import { describeError, isAgentProblem } from '../messages.ts';
import type { PendingSave, PendingSaves } from '../queue/pending-saves.ts';

/** Checkout states from which a push makes sense. */
const PUSHABLE: ReadonlySet<Checkout['state']> = new Set(['ready', 'pushed', 'conflict', 'failed']);

export const MAX_COMMENT = 2000;

export function canSaveBack(checkout: Checkout | undefined, comment: string): { ok: true } | { ok: false; reason: string } {
  if (!checkout) return { ok: false, reason: 'Open or place this image first: the saved file is pushed from its local copy.' };
  if (checkout.state === 'downloading') return { ok: false, reason: 'The image is still downloading.' };
  if (checkout.state === 'pushing') return { ok: false, reason: 'A save of this image is being uploaded.' };
  if (!PUSHABLE.has(checkout.state)) return { ok: false, reason: `The local copy is ${checkout.state}.` };
  if (comment.length > MAX_COMMENT) return { ok: false, reason: `The comment is longer than ${MAX_COMMENT} characters.` };
  return { ok: true };
}

/** Whether the host's document is the checked-out file (saved first) or another file. */
export function planSaveBack(checkout: Checkout, active: ActiveDocument | null): { saveDocumentFirst: boolean } {
  if (!active?.path) return { saveDocumentFirst: false };
  return { saveDocumentFirst: normalisePath(active.path) === normalisePath(checkout.path) };
}

export type SaveBackResult = { queued: QueueItem } | { kept: PendingSave; message: string };

export interface SaveBackInput {
  client: AgentClient;
  host: HostAdapter;
  pending: PendingSaves;
  checkout: Checkout;
  comment: string;
  label: string;
}

export async function runSaveBack(input: SaveBackInput): Promise<SaveBackResult> {
  const { client, host, pending, checkout } = input;
  const allowed = canSaveBack(checkout, input.comment);
  if (!allowed.ok) throw new Error(allowed.reason);
  let path: string | undefined;
  const active = await host.activeDocument().catch(() => null);
  if (planSaveBack(checkout, active).saveDocumentFirst) {
    const saved = await host.saveActiveDocument();
    if (saved && normalisePath(saved) !== normalisePath(checkout.path)) path = saved;
  }
  const entry = pending.add({ checkoutId: checkout.id, label: input.label, comment: input.comment.trim(), path });
  const result = await sendPending(client, pending, entry);
  if ('busy' in result) throw new Error('This save is already being sent.');
  return result;
}

/** Sends one pending save to the agent; it leaves the pending list only when the agent took it. */
export async function sendPending(client: AgentClient, pending: PendingSaves, entry: PendingSave): Promise<SaveBackResult | { busy: true }> {
  if (!pending.claim(entry.id)) return { busy: true };
  try {
    const queued = await client.push(entry.checkoutId, { comment: entry.comment || undefined, path: entry.path });
    pending.remove(entry.id);
    return { queued };
  } catch (error) {
    const message = describeError(error);
    const kept = { ...entry, attempts: entry.attempts + 1, lastError: { code: message.code, message: message.title } };
    pending.update(entry.id, { attempts: kept.attempts, lastError: kept.lastError });
    return { kept, message: isAgentProblem(error) ? 'The companion did not answer: your save is kept in this panel and sent when it is back.' : message.title };
  } finally {
    pending.release(entry.id);
  }
}

/**
 * Sends the pending saves that failed only because the agent was away (when it comes back);
 * stops at the first sign it is down again. Saves the agent refused wait for the user.
 */
export async function flushPending(
  client: AgentClient,
  pending: PendingSaves,
  options: { includeRefused?: boolean } = {},
): Promise<{ sent: number; left: number }> {
  let sent = 0;
  for (const entry of pending.list()) {
    if (!options.includeRefused && entry.lastError && entry.lastError.code !== 'ERR_AGENT_NOT_RUNNING') continue;
    const result = await sendPending(client, pending, entry);
    if ('queued' in result) sent++;
    else if ('kept' in result && result.kept.lastError?.code === 'ERR_AGENT_NOT_RUNNING') break;
  }
  return { sent, left: pending.list().length };
}
