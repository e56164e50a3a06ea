/**
 * `imagine queue [--json]`: the agent's push queue, one push per line: id, state, attempts,
 * progress, the asset, and the result or the last error.
 */
import type { QueueItem } from '../../shared/schemas/agent.ts';
import { loadConfig } from '../config.ts';
import { callAgent } from './agent-call.ts';

export interface QueueFlags {
  data?: string;
  json?: boolean;
}

/** One line of the queue listing. */
export function formatQueueItem(item: QueueItem): string {
  const { done, total } = item.progress;
  const progress = total ? `${Math.floor((100 * done) / total)}%` : `${done} B`;
  const outcome = item.result ? item.result.uri : item.error ? `${item.error.message} [${item.error.code}]` : '';
  const next = item.state === 'retrying' && item.nextAttempt ? ` next ${item.nextAttempt}` : '';
  return `${item.id}\t${item.state}\t${item.attempts} attempt(s)\t${progress}\t${item.assetId}@${item.baseVersion}\t${outcome}${next}`;
}

export async function runQueue(flags: QueueFlags): Promise<void> {
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const { items } = (await callAgent(config.dataDir, 'GET', '/queue')) as { items: QueueItem[] };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ items })}\n`);
    return;
  }
  process.stdout.write(items.length ? `${items.map(formatQueueItem).join('\n')}\n` : 'the push queue is empty\n');
}
