/**
 * Connection actions: add a server (by URL, domain or `imagine://` URI, with an optional
 * token), sign in to one again with a new token, remove one. The agent checks the address and
 * the token; the panel only refuses what is plainly not an address.
 */
import type { Connection } from '../../../../shared/schemas/agent.ts';
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
 * Signs in to a connection with a new token. The agent API has no "change token" call, so the
 * connection is added again with the token; when the server refuses it, the connection is put
 * back as it was (without a token) and the refusal is reported.
 */
export async function runSignIn(client: AgentClient, connection: Connection, token: string): Promise<Connection> {
  await client.removeConnection(connection.id);
  try {
    return await client.addConnection({ url: connection.origin, token: token.trim(), name: connection.name });
  } catch (error) {
    await client.addConnection({ url: connection.origin, name: connection.name }).catch(() => undefined);
    throw error;
  }
}

export const STATE_LABELS: Record<Connection['state'], string> = {
  ok: 'Connected',
  offline: 'Offline',
  unauthorized: 'Token refused',
  error: 'Error',
  unknown: 'Not checked yet',
};
