/**
 * Where the panel finds the agent and its pairing token, and where it keeps them.
 *
 * - Browser preview: the agent is the page's own origin; the preview route embeds the pairing
 *   token in `<meta name="imagine-pairing-token">` (only for loopback requests).
 * - UXP: `http://127.0.0.1:7420` unless the user set another address; the token is the one
 *   the user pasted (`imagine pair`), kept in UXP's localStorage.
 */
import { DEFAULT_AGENT_URL } from './agent-client.ts';

/** The part of `Storage` the panel uses (localStorage in both runtimes; a Map in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const STORAGE_KEYS = Object.freeze({
  agentUrl: 'imagine.agentUrl',
  token: 'imagine.pairingToken',
  pendingSaves: 'imagine.pendingSaves',
});

export const TOKEN_META = 'imagine-pairing-token';

export interface AgentSettings {
  baseUrl: string;
  token: string | undefined;
  /** Where the token came from: shown so a user knows why pairing is asked again. */
  tokenSource: 'page' | 'stored' | 'none';
}

export interface SettingsEnvironment {
  /** Running inside UXP (Photoshop / InDesign). */
  uxp: boolean;
  /** The page's origin (browser preview). */
  pageOrigin?: string;
  /** The token the preview page carries, if any. */
  pageToken?: string;
}

export function loadAgentSettings(env: SettingsEnvironment, store: KeyValueStore | undefined): AgentSettings {
  const stored = (key: string) => safeGet(store, key)?.trim() || undefined;
  const baseUrl = env.uxp || !env.pageOrigin ? stored(STORAGE_KEYS.agentUrl) ?? DEFAULT_AGENT_URL : env.pageOrigin;
  if (env.pageToken) return { baseUrl, token: env.pageToken, tokenSource: 'page' };
  const token = stored(STORAGE_KEYS.token);
  return { baseUrl, token, tokenSource: token ? 'stored' : 'none' };
}

/** Keeps what the user entered. A blank value forgets the setting. */
export function saveAgentSettings(store: KeyValueStore | undefined, settings: { baseUrl?: string; token?: string }): void {
  if (!store) return;
  const put = (key: string, value: string | undefined) => {
    if (value === undefined) return;
    if (value.trim() === '') store.removeItem(key);
    else store.setItem(key, value.trim());
  };
  put(STORAGE_KEYS.agentUrl, settings.baseUrl);
  put(STORAGE_KEYS.token, settings.token);
}

/**
 * Checks an agent address typed by the user: an http(s) origin. The agent only listens on
 * loopback, so other hosts are refused here rather than failing later.
 */
export function parseAgentUrl(input: string): { ok: true; value: string } | { ok: false; reason: string } {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    return { ok: false, reason: 'Enter an address like http://127.0.0.1:7420.' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'The address must start with http://.' };
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    return { ok: false, reason: 'The companion runs on this computer: use 127.0.0.1 or localhost.' };
  }
  return { ok: true, value: url.origin };
}

function safeGet(store: KeyValueStore | undefined, key: string): string | null {
  try {
    return store?.getItem(key) ?? null;
  } catch {
    return null;
  }
}
