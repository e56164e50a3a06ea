/**
 * Connection actions: add a server (by URL, domain or `imagine://` URI, with an optional
 * token), sign in to one again with a new token, remove one. The agent checks the address and
 * the token; the panel only refuses what is plainly not an address.
 */
import type { Connection, SyncStatus } from '../../../../shared/schemas/agent.ts';
import type { AgentClient } from '../../agent-client.ts';

export type CanRun = { ok: true } | { ok: false; reason: string };

export interface AddForm {
  url: string;
  token: string;
  name: string;
}

export function canAddConnection(form: AddForm, existing: readonly Connection[]): CanRun {
  const url = form.url.trim();
  if (url === '') return { ok: false, reason: 'Enter the server address.' };
  if (url.length > 2000) return { ok: false, reason: 'That address is too long.' };
  if (/\s/.test(url)) return { ok: false, reason: 'An address has no spaces.' };
  const lower = url.toLowerCase().replace(/\/+$/, '');
  if (existing.some((c) => c.origin.toLowerCase() === lower)) return { ok: false, reason: 'You are already connected to this server.' };
  if (form.token.length > 1000) return { ok: false, reason: 'That token is too long.' };
  return { ok: true };
}

export function runAddConnection(client: AgentClient, form: AddForm): Promise<Connection> {
  const token = form.token.trim();
  const name = form.name.trim();
  return client.addConnection({ url: form.url.trim(), ...(token ? { token } : {}), ...(name ? { name } : {}) });
}

export function canSignIn(token: string): CanRun {
  if (token.trim() === '') return { ok: false, reason: 'Paste the token the server gave you.' };
  return { ok: true };
}

/**
 * Signs in to a connection with a new token, in place: the agent tries the token before it
 * replaces the old one (a refused token changes nothing), and the connection keeps its cached
 * thumbnails, offline copy and checkouts.
 */
export function runSignIn(client: AgentClient, connection: Connection, token: string): Promise<Connection> {
  return client.updateConnection(connection.id, { token: token.trim() });
}

export const STATE_LABELS: Record<Connection['state'], string> = {
  ok: 'Connected',
  offline: 'Offline',
  unauthorized: 'Token refused',
  error: 'Error',
  unknown: 'Not checked yet',
};

function ago(seconds: number): string {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

function size(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

/** One line on a connection's offline copy (the agent's mirror): what `imagine sync status` says. */
export function describeSync(status: SyncStatus | undefined, now = Date.now()): { text: string; error?: string } {
  if (!status) return { text: 'Offline copy: not started yet.' };
  const images = `${status.assets} image${status.assets === 1 ? '' : 's'}, ${size(status.bytesOnDisk)} on this computer`;
  const when =
    status.state === 'syncing'
      ? 'syncing now'
      : status.lastSync
        ? `last synced ${ago((now - Date.parse(status.lastSync)) / 1000)} ago${status.lagSeconds !== null && status.lagSeconds > 120 ? ` (behind by ${ago(status.lagSeconds)})` : ''}`
        : 'first sync not finished';
  const error = status.lastError ? `Last sync error: ${status.lastError.message}` : undefined;
  return { text: `Offline copy: ${images}; ${when}.`, ...(error ? { error } : {}) };
}
