/**
 * The servers the user works with: origin, domain, name and token, in
 * `<data>/agent/connections.json` (mode 0600; tokens never leave the agent), with each one's
 * last known state. One store per agent process; writes are serialised.
 */
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import { isLoopbackHost, parseOrigin } from '../../shared/origin.ts';
import { parseUri, URI_SCHEME } from '../../shared/uri.ts';
import type { Connection, ConnectionState } from '../../shared/schemas/agent.ts';
import { readJsonFile, writeJsonFile } from './json-file.ts';

export interface StoredConnection extends Connection {
  token?: string;
  /** The agent's own library (role `both`), connected at start. */
  self?: boolean;
}

interface ConnectionsFile {
  connections: StoredConnection[];
}

export const CONNECTIONS_FILE = 'connections.json';

/** A connection's local id, from its origin's authority: `images.example`, `127.0.0.1_7420`. */
export function connectionIdOf(origin: string): string {
  const authority = origin.slice(origin.indexOf('://') + 3);
  return authority.replace(/[^A-Za-z0-9.-]/g, '_');
}

/**
 * The origin a user means by what they typed: an origin or URL (`https://images.example/x`),
 * a bare domain (`images.example`, `localhost:7420`: https, or http for loopback), or an
 * `imagine://` URI (its authority). Throws ERR_ORIGIN_INVALID / ERR_URI_INVALID.
 */
export function originFromUserInput(input: string, options: { allowInsecure?: boolean } = {}): string {
  const text = input.trim();
  if (text.toLowerCase().startsWith(URI_SCHEME)) {
    const authority = text.slice(URI_SCHEME.length).split('/')[0] ?? '';
    // A bare authority (`imagine://images.example`) is accepted as well as a resource URI.
    const host = text.slice(URI_SCHEME.length).includes('/') ? parseUri(text).host : hostOf(authority);
    return parseOrigin(`${isLoopbackHost(host) ? 'http' : 'https'}://${authority}`, options);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch (error) {
      throw new ProtocolError('ERR_ORIGIN_INVALID', `not a URL: ${JSON.stringify(text.slice(0, 100))}`, { cause: error });
    }
    return parseOrigin(url.origin, options);
  }
  const authority = text.replace(/\/.*$/, '');
  return parseOrigin(`${isLoopbackHost(hostOf(authority)) ? 'http' : 'https'}://${authority}`, options);
}

function hostOf(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  return authority.split(':')[0] ?? authority;
}

export class ConnectionStore {
  readonly path: string;
  #items: StoredConnection[];
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, items: StoredConnection[]) {
    this.path = path;
    this.#items = items;
  }

  /** Opens (or starts) the store in the agent's folder. */
  static async open(agentDir: string): Promise<ConnectionStore> {
    const path = join(agentDir, CONNECTIONS_FILE);
    const file = await readJsonFile<ConnectionsFile>(path, { connections: [] });
    const items = Array.isArray(file.connections) ? file.connections : [];
    return new ConnectionStore(path, items);
  }

  /** Every connection, without tokens. */
  list(): Connection[] {
    return this.#items.map(toPublic);
  }

  get(id: string): StoredConnection | undefined {
    return this.#items.find((c) => c.id === id);
  }

  /** The connection, or ERR_CONNECTION_NOT_FOUND. */
  require(id: string): StoredConnection {
    const found = this.get(id);
    if (!found) throw new ProtocolError('ERR_CONNECTION_NOT_FOUND', `no connection ${JSON.stringify(id)}`);
    return found;
  }

  /** The connection an `imagine://` authority belongs to (its domain or its origin's authority). */
  byAuthority(authority: string): StoredConnection | undefined {
    const wanted = authority.toLowerCase();
    return this.#items.find(
      (c) => c.domain.toLowerCase() === wanted || c.origin.slice(c.origin.indexOf('://') + 3) === wanted,
    );
  }

  byOrigin(origin: string): StoredConnection | undefined {
    return this.#items.find((c) => c.origin === origin);
  }

  /** Adds a connection; ERR_CONNECTION_EXISTS when its origin is already one. */
  async add(connection: StoredConnection): Promise<Connection> {
    if (this.byOrigin(connection.origin) || this.get(connection.id)) {
      throw new ProtocolError('ERR_CONNECTION_EXISTS', `already connected to ${connection.origin}`);
    }
    this.#items = [...this.#items, connection];
    await this.#save();
    return toPublic(connection);
  }

  /** Changes stored fields (token, name, state...). */
  async update(id: string, patch: Partial<Omit<StoredConnection, 'id' | 'origin'>>): Promise<Connection> {
    const current = this.require(id);
    const next = { ...current, ...patch };
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete (next as Record<string, unknown>)[key];
    }
    this.#items = this.#items.map((c) => (c.id === id ? next : c));
    await this.#save();
    return toPublic(next);
  }

  /** Records how the last call to a server went; persisted only when the state changes. */
  async markState(id: string, state: ConnectionState, error?: { code: string; message: string }): Promise<void> {
    const current = this.get(id);
    if (!current) return;
    const now = new Date().toISOString();
    const changed = current.state !== state || current.lastError?.code !== error?.code;
    const next: StoredConnection = { ...current, state, ...(state === 'ok' ? { lastSeen: now } : {}) };
    if (error) next.lastError = error;
    else delete next.lastError;
    this.#items = this.#items.map((c) => (c.id === id ? next : c));
    if (changed) await this.#save();
  }

  async remove(id: string): Promise<void> {
    this.require(id);
    this.#items = this.#items.filter((c) => c.id !== id);
    await this.#save();
  }

  #save(): Promise<void> {
    const snapshot: ConnectionsFile = { connections: this.#items };
    this.#writing = this.#writing.catch(() => {}).then(() => writeJsonFile(this.path, snapshot));
    return this.#writing;
  }
}

function toPublic(connection: StoredConnection): Connection {
  const { token, ...rest } = connection;
  return { ...rest, authenticated: token !== undefined };
}
