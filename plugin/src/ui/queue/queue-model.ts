/**
 * How the queue view reads the agent's push queue: what is in flight, waiting for the network
 * (offline), in conflict, failed or done, in the order a user wants to see them.
 */
import type { QueueItem } from '../../../../shared/schemas/agent.ts';

export type QueueGroup = 'conflict' | 'failed' | 'offline' | 'in-flight' | 'done';

const UNREACHABLE = new Set(['ERR_UPSTREAM_UNREACHABLE', 'ERR_UPSTREAM_TIMEOUT', 'ERR_DISCOVERY_UNREACHABLE', 'ERR_DISCOVERY_TIMEOUT']);

export function groupOf(item: QueueItem): QueueGroup {
  switch (item.state) {
    case 'conflict':
      return 'conflict';
    case 'failed':
      return 'failed';
    case 'done':
      return 'done';
    case 'retrying':
      return item.error && UNREACHABLE.has(item.error.code) ? 'offline' : 'in-flight';
    default:
      return 'in-flight';
  }
}

const ORDER: Record<QueueGroup, number> = { conflict: 0, failed: 1, offline: 2, 'in-flight': 3, done: 4 };

/** Conflicts and failures first (they need the user), then waiting and running pushes (oldest first), then done (newest first). */
export function sortQueue(items: readonly QueueItem[]): QueueItem[] {
  return [...items].sort((a, b) => {
    const group = ORDER[groupOf(a)] - ORDER[groupOf(b)];
    if (group !== 0) return group;
    return groupOf(a) === 'done' ? b.updated.localeCompare(a.updated) : a.created.localeCompare(b.created);
  });
}

export interface QueueSummary {
  active: number;
  offline: number;
  conflicts: number;
  failed: number;
  done: number;
}

export function summarise(items: readonly QueueItem[]): QueueSummary {
  const s: QueueSummary = { active: 0, offline: 0, conflicts: 0, failed: 0, done: 0 };
  for (const item of items) {
    const group = groupOf(item);
    if (group === 'conflict') s.conflicts++;
    else if (group === 'failed') s.failed++;
    else if (group === 'offline') s.offline++;
    else if (group === 'done') s.done++;
    else s.active++;
  }
  return s;
}

/** The badge on the queue tab: what needs attention or is still running. */
export function badge(summary: QueueSummary, pendingInPanel = 0): string {
  const needs = summary.conflicts + summary.failed;
  const running = summary.active + summary.offline + pendingInPanel;
  if (needs > 0) return `${needs}!`;
  return running > 0 ? String(running) : '';
}

export function stateLabel(item: QueueItem, now = Date.now()): string {
  switch (groupOf(item)) {
    case 'conflict':
      return 'Someone saved a newer version meanwhile';
    case 'failed':
      return `Failed: ${item.error?.message ?? 'unknown error'}`;
    case 'offline':
      return `Server unreachable: retrying${retryIn(item, now)} (kept on this computer)`;
    case 'done':
      return item.result ? `Saved as ${item.result.version}` : 'Saved';
    default:
      if (item.state === 'queued') return 'Waiting to upload';
      if (item.state === 'retrying') return `Retrying${retryIn(item, now)}: ${item.error?.message ?? ''}`.trim();
      return 'Uploading';
  }
}

function retryIn(item: QueueItem, now: number): string {
  if (!item.nextAttempt) return '';
  const seconds = Math.round((Date.parse(item.nextAttempt) - now) / 1000);
  return seconds > 0 ? ` in ${seconds} s` : ' now';
}

/** Poll fast while something runs, slowly otherwise (milliseconds). */
export function pollInterval(summary: QueueSummary, pendingInPanel = 0): number {
  return summary.active + pendingInPanel > 0 ? 1000 : 5000;
}
