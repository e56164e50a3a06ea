/**
 * `imagine sync status | now [CONNECTION] | collections CONNECTION [ID...] [--all]`: the local
 * mirror of each connection, through the running agent (`/agent/v1/sync`).
 */
import { isErrorCode, ProtocolError } from '../../shared/errors.ts';
import type { SyncStatus } from '../../shared/schemas/agent.ts';
import { loadConfig } from '../config.ts';
import { callAgent } from './agent-call.ts';

interface Flags {
  data?: string;
  json?: boolean;
}

function dataDirOf(flags: Flags): string {
  return loadConfig({ env: process.env, flags: { dataDir: flags.data } }).dataDir;
}

/** 1536 → '1.5 KiB'. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 75 → '1m 15s'. */
export function formatSeconds(seconds: number | null): string {
  if (seconds === null) return 'never synced';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.round(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`;
}

type Status = SyncStatus & {
  phase?: string;
  fullSync?: { reason: string; scanned: number };
  thumbnails?: { cached: number; failed: number; stopped?: string };
};

/** The human form of one connection's status, a few lines. */
export function describeStatus(status: Status): string {
  const lines = [
    `${status.connection}: ${status.state}${status.phase === 'initial' ? ' (full sync)' : ''}`,
    `  assets      ${status.assets}`,
    `  last sync   ${status.lastSync ?? 'never'}${status.lagSeconds === null ? '' : ` (lag ${formatSeconds(status.lagSeconds)})`}`,
    `  on disk     ${formatBytes(status.bytesOnDisk)}`,
  ];
  if (status.fullSync) lines.push(`  full sync   ${status.fullSync.reason}: ${status.fullSync.scanned} scanned`);
  if (status.thumbnails) {
    const stopped = status.thumbnails.stopped ? ` (${status.thumbnails.stopped})` : '';
    lines.push(`  thumbnails  ${status.thumbnails.cached} cached, ${status.thumbnails.failed} failed${stopped}`);
  }
  if (status.lastError) lines.push(`  last error  ${status.lastError.message} [${status.lastError.code}] at ${status.lastError.at}`);
  return lines.join('\n');
}

export async function runSyncStatus(flags: Flags): Promise<void> {
  const { items } = (await callAgent(dataDirOf(flags), 'GET', '/sync', undefined, { timeoutMs: 30_000 })) as { items: Status[] };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ items })}\n`);
    return;
  }
  process.stdout.write(items.length === 0 ? 'no connections (add one with imagine connect URL)\n' : `${items.map(describeStatus).join('\n')}\n`);
}

export async function runSyncNow(connection: string | undefined, flags: Flags): Promise<void> {
  const dataDir = dataDirOf(flags);
  let ids: string[];
  if (connection !== undefined) {
    ids = [connection];
  } else {
    const { items } = (await callAgent(dataDir, 'GET', '/sync', undefined, { timeoutMs: 30_000 })) as { items: Status[] };
    ids = items.map((s) => s.connection);
  }
  const results: Status[] = [];
  for (const id of ids) {
    results.push((await callAgent(dataDir, 'POST', `/sync/${encodeURIComponent(id)}?wait=true`)) as Status);
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ items: results })}\n`);
  } else {
    process.stdout.write(results.length === 0 ? 'no connections\n' : `${results.map(describeStatus).join('\n')}\n`);
  }
  const failed = results.filter((s) => s.state === 'error' || s.state === 'offline');
  if (failed.length > 0) {
    const first = failed[0]!;
    const code = isErrorCode(first.lastError?.code) ? first.lastError.code : 'ERR_UPSTREAM_ERROR';
    throw new ProtocolError(code, `sync of ${failed.map((s) => s.connection).join(', ')} did not complete: ${first.lastError?.message ?? first.state}`);
  }
}

export async function runSyncCollections(connection: string, ids: string[], flags: Flags & { all?: boolean }): Promise<void> {
  if (flags.all ? ids.length > 0 : ids.length === 0) {
    throw new ProtocolError('ERR_VALIDATION', 'name collection ids, or --all to mirror everything (not both)');
  }
  const body = { collections: flags.all ? null : ids };
  const status = (await callAgent(dataDirOf(flags), 'PUT', `/sync/${encodeURIComponent(connection)}`, body)) as Status;
  process.stdout.write(flags.json ? `${JSON.stringify(status)}\n` : `${describeStatus(status)}\n`);
}
