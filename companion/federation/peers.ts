/**
 * Trusted peers: `<data>/federation/peers.json`. Incoming entries are servers that asked this
 * one to trust them (pending until an administrator approves, with scopes); outgoing entries
 * are servers this one asked. The running server and `imagine peers` share the file: every
 * change is a read-modify-write under a lock file, and readers reload when the file changes,
 * so an approval or a revocation takes effect on the next request.
 */
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import { readJsonFile, writeJsonFile } from '../agent/json-file.ts';
import { FEDERATION_DIR } from './keys.ts';

export const PEER_SCOPES = ['search', 'view', 'import', 'sync'] as const;
export type PeerScope = (typeof PEER_SCOPES)[number];

export type PeerState = 'pending' | 'approved' | 'revoked' | 'requested' | 'accepted' | 'refused';

export interface Peer {
  origin: string;
  /** `host[:port]` of the origin: what administrators type. */
  domain: string;
  /** incoming: it asked us; outgoing: we asked it. */
  direction: 'incoming' | 'outgoing';
  state: PeerState;
  scopes: PeerScope[];
  requested: string;
  decided?: string;
}

interface PeersFile {
  peers: Peer[];
}

const LOCK_WAIT_MS = 5_000;
const STALE_LOCK_MS = 15_000;

export function domainOf(origin: string): string {
  return origin.slice(origin.indexOf('://') + 3);
}

export function parseScopes(input: string | readonly string[] | undefined): PeerScope[] {
  if (input === undefined) return [...PEER_SCOPES];
  const list = typeof input === 'string' ? input.split(',').map((s) => s.trim()).filter(Boolean) : [...input];
  for (const scope of list) {
    if (!(PEER_SCOPES as readonly string[]).includes(scope)) {
      throw new ProtocolError('ERR_VALIDATION', `unknown scope ${JSON.stringify(scope)} (scopes: ${PEER_SCOPES.join(', ')})`);
    }
  }
  return [...new Set(list)] as PeerScope[];
}

export class PeerStore {
  readonly path: string;
  #peers: Peer[] = [];
  #mtimeMs = -1;

  constructor(dataDir: string) {
    this.path = join(dataDir, FEDERATION_DIR, 'peers.json');
  }

  /** Every peer, reloaded from disk when the file changed. */
  async list(): Promise<Peer[]> {
    await this.#reload();
    return this.#peers.map((p) => ({ ...p, scopes: [...p.scopes] }));
  }

  /** The approved incoming peer with this origin, or undefined (unknown, pending or revoked). */
  async trusted(origin: string): Promise<Peer | undefined> {
    await this.#reload();
    return this.#peers.find((p) => p.direction === 'incoming' && p.origin === origin && p.state === 'approved');
  }

  async find(direction: Peer['direction'], origin: string): Promise<Peer | undefined> {
    await this.#reload();
    return this.#peers.find((p) => p.direction === direction && p.origin === origin);
  }

  /** Records that `origin` asked to be trusted; an approved or revoked entry is left as it is. */
  async recordRequest(origin: string, scopes: PeerScope[]): Promise<Peer> {
    return this.#change((peers) => {
      const existing = peers.find((p) => p.direction === 'incoming' && p.origin === origin);
      if (existing) {
        if (existing.state === 'pending') existing.scopes = scopes;
        return existing;
      }
      const peer: Peer = {
        origin,
        domain: domainOf(origin),
        direction: 'incoming',
        state: 'pending',
        scopes,
        requested: new Date().toISOString(),
      };
      peers.push(peer);
      return peer;
    });
  }

  /** Approves an incoming peer by domain (or origin), optionally narrowing its scopes. */
  async approve(domainOrOrigin: string, scopes?: PeerScope[]): Promise<Peer> {
    return this.#decide(domainOrOrigin, 'approved', scopes);
  }

  /** Revokes an incoming peer: its next request is refused. */
  async revoke(domainOrOrigin: string): Promise<Peer> {
    return this.#decide(domainOrOrigin, 'revoked');
  }

  /** Records (or updates) a server this one asked to trust it. */
  async recordOutgoing(origin: string, state: PeerState, scopes: PeerScope[]): Promise<Peer> {
    return this.#change((peers) => {
      let peer = peers.find((p) => p.direction === 'outgoing' && p.origin === origin);
      if (!peer) {
        peer = { origin, domain: domainOf(origin), direction: 'outgoing', state, scopes, requested: new Date().toISOString() };
        peers.push(peer);
      } else {
        peer.state = state;
        peer.scopes = scopes;
        peer.decided = new Date().toISOString();
      }
      return peer;
    });
  }

  async #decide(domainOrOrigin: string, state: 'approved' | 'revoked', scopes?: PeerScope[]): Promise<Peer> {
    const wanted = domainOrOrigin.toLowerCase().replace(/\/+$/, '');
    return this.#change((peers) => {
      const peer = peers.find(
        (p) => p.direction === 'incoming' && (p.domain === wanted || p.origin === wanted),
      );
      if (!peer) {
        throw new ProtocolError('ERR_PEER_UNKNOWN', `no trust request from ${domainOrOrigin} (see imagine peers list)`);
      }
      peer.state = state;
      if (scopes) peer.scopes = scopes;
      peer.decided = new Date().toISOString();
      return peer;
    });
  }

  async #reload(): Promise<void> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.path)).mtimeMs;
    } catch {
      this.#peers = [];
      this.#mtimeMs = -1;
      return;
    }
    if (mtimeMs === this.#mtimeMs) return;
    const file = await readJsonFile<PeersFile>(this.path, { peers: [] });
    this.#peers = Array.isArray(file.peers) ? file.peers : [];
    this.#mtimeMs = mtimeMs;
  }

  /** Read-modify-write under the lock file; `change` mutates the list and returns a result. */
  async #change<T extends Peer>(change: (peers: Peer[]) => T): Promise<T> {
    const release = await this.#lock();
    try {
      this.#mtimeMs = -1;
      await this.#reload();
      const peers = this.#peers.map((p) => ({ ...p, scopes: [...p.scopes] }));
      const result = change(peers);
      await writeJsonFile(this.path, { peers });
      this.#peers = peers;
      this.#mtimeMs = -1; // reload next time: another process may write right after us
      return { ...result, scopes: [...result.scopes] };
    } finally {
      await release();
    }
  }

  async #lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.path}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    for (;;) {
      try {
        const handle = await open(lockPath, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => rm(lockPath, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const age = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > STALE_LOCK_MS) await rm(lockPath, { force: true });
        else if (Date.now() > deadline) {
          throw new ProtocolError('ERR_CATALOG_LOCKED', `${lockPath} is held by another process`);
        } else await new Promise((r) => setTimeout(r, 25));
      }
    }
  }
}
