/**
 * The agent's services: what its routes, the checkout/push queue and the mirror share. One
 * instance per process, opened by `buildApp` for the agent and both roles, closed with the app.
 *
 * State lives in `<data>/agent/` (mode 0700): `connections.json` (tokens, 0600),
 * `pairing-token`, the thumbnail cache, checkouts and the push queue. Working files go to
 * `config.agentWorkDir` (default `<data>/checkouts`).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { ProtocolClient } from '../../shared/client.ts';
import { createDiscoveryResolver, type DiscoveryResolver } from '../../shared/discovery.ts';
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import type { AddConnectionRequest, Connection, UpdateConnectionRequest } from '../../shared/schemas/agent.ts';
import type { Asset, SearchPage, SearchQuery } from '../../shared/schemas/asset.ts';
import { connectionIdOf, ConnectionStore, originFromUserInput } from './connections.ts';
import { AgentUrlSigner } from './url-signer.ts';
import { ThumbCache } from './thumb-cache.ts';
import { AssetCache } from './asset-cache.ts';
import { Mirror } from './mirror/mirror.ts';

export const AGENT_DIR = 'agent';

export interface AgentServices {
  readonly config: Config;
  /** `<data>/agent`. */
  readonly dir: string;
  /** Where checkouts are written. */
  readonly workDir: string;
  readonly connections: ConnectionStore;
  readonly resolver: DiscoveryResolver;
  readonly fetch: typeof fetch;
  /** The agent's own origin (`http://127.0.0.1:7420`), known once it listens. */
  origin: string | undefined;
  /** A protocol client of a connection, with its token. ERR_CONNECTION_NOT_FOUND when unknown. */
  client(connectionId: string, options?: { timeoutMs?: number }): ProtocolClient;
  /** Adds a server: resolves what the user typed, checks discovery and the token, stores it. */
  connect(request: AddConnectionRequest): Promise<Connection>;
  /**
   * Changes a connection's token (checked first: a refused one leaves the old in place) and/or
   * name, keeping its caches, mirror and checkouts.
   */
  updateConnection(id: string, request: UpdateConnectionRequest): Promise<Connection>;
  /** Signs the agent's own image URLs (`/thumbs/...`, `/iiif/image`) for `<img>` tags. */
  readonly urls: AgentUrlSigner;
  /** Thumbnails and relayed IIIF images on disk (`<data>/agent/cache/`), LRU-bounded. */
  readonly thumbs: ThumbCache;
  /** Asset metadata seen through search and get, for offline browsing without the mirror. */
  readonly assetCache: AssetCache;
  /** The push queue, once its worker runs (companion/agent/queue.ts): counts for the status. */
  queue?: QueueSummary;
  /** The local mirror, once it runs (companion/agent/mirror/): answers when a server is unreachable. */
  mirror?: LocalMirror;
  /** Runs `fn` when the services close (queue workers, mirrors, caches). */
  onClose(fn: () => Promise<void> | void): void;
  close(): Promise<void>;
}

export interface QueueSummary {
  counts(): { pending: number; conflicts: number; failed: number };
}

export interface LocalMirror {
  /** A page answered from the mirror; undefined when this connection has no mirror yet. */
  search(connectionId: string, query: SearchQuery): Promise<SearchPage | undefined>;
  /** A mirrored asset; undefined when it is not mirrored. */
  getAsset(connectionId: string, assetId: string): Promise<Asset | undefined>;
}

export interface OpenAgentOptions {
  fetch?: typeof fetch;
}

export async function openAgentServices(config: Config, options: OpenAgentOptions = {}): Promise<AgentServices> {
  const dir = join(config.dataDir, AGENT_DIR);
  const workDir = config.agentWorkDir ?? join(config.dataDir, 'checkouts');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await mkdir(workDir, { recursive: true });
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
  const resolver = createDiscoveryResolver({ fetch: doFetch, timeoutMs: 10_000 });
  const connections = await ConnectionStore.open(dir);
  const closers: Array<() => Promise<void> | void> = [];
  let closed = false;
  const cacheDir = join(dir, 'cache');
  const urls = await AgentUrlSigner.open(dir);
  const assetCache = await AssetCache.open(cacheDir);

  const client = (connectionId: string, clientOptions: { timeoutMs?: number } = {}) => {
    const connection = connections.require(connectionId);
    return new ProtocolClient({
      origin: connection.origin,
      fetch: doFetch,
      token: connection.token,
      resolver,
      timeoutMs: clientOptions.timeoutMs,
    });
  };

  const thumbs = await ThumbCache.open({
    dir: cacheDir,
    maxBytes: config.agentCacheBytes,
    fetch: doFetch,
    client: (id) => client(id),
    credentials: (id) => {
      const { origin, token } = connections.require(id);
      return { origin, token };
    },
    knownAsset: (id, assetId) => assetCache.get(id, assetId),
  });
  closers.push(() => assetCache.close(), () => thumbs.close());

  const services: AgentServices = {
    config,
    dir,
    workDir,
    connections,
    resolver,
    fetch: doFetch,
    origin: undefined,
    urls,
    thumbs,
    assetCache,
    client,
    async connect(request) {
      const origin = originFromUserInput(request.url);
      if (connections.byOrigin(origin)) {
        throw new ProtocolError('ERR_CONNECTION_EXISTS', `already connected to ${origin}`);
      }
      resolver.invalidate(origin);
      const discovery = await resolver.resolve(origin);
      const probe = new ProtocolClient({ origin, fetch: doFetch, token: request.token, resolver, timeoutMs: 10_000 });
      if (request.token !== undefined) {
        // A wrong token is refused now, not at the first search.
        await probe.search({ limit: 1 });
      }
      const now = new Date().toISOString();
      return connections.add({
        id: connectionIdOf(origin),
        origin,
        domain: discovery.server.domain,
        name: request.name ?? discovery.server.name ?? discovery.server.domain,
        token: request.token,
        authenticated: request.token !== undefined,
        state: 'ok',
        lastSeen: now,
        added: now,
      });
    },
    async updateConnection(id, request) {
      const current = connections.require(id);
      if (request.token !== undefined && request.anonymous) {
        throw new ProtocolError('ERR_VALIDATION', 'give either a token or anonymous: true, not both');
      }
      if (request.token !== undefined) {
        // The new token is tried before it replaces the old one.
        const probe = new ProtocolClient({ origin: current.origin, fetch: doFetch, token: request.token, resolver, timeoutMs: 10_000 });
        await probe.search({ limit: 1 });
      }
      const tokenChanged = request.token !== undefined || request.anonymous === true;
      return connections.update(id, {
        ...(request.name !== undefined ? { name: request.name } : {}),
        ...(tokenChanged
          ? { token: request.token, authenticated: request.token !== undefined, state: 'ok', lastError: undefined, lastSeen: new Date().toISOString() }
          : {}),
      });
    },
    onClose(fn) {
      closers.push(fn);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const fn of closers.reverse()) {
        try {
          await fn();
        } catch {
          // closing goes on: one part failing to stop must not keep the others running
        }
      }
    },
  };
  // The offline mirror (issue 9): loads now, syncs once the agent listens (routes/sync.ts).
  const mirror = await Mirror.open(services);
  services.mirror = mirror;
  closers.push(() => mirror.close());
  return services;
}

/** Whether an error means the server could not be reached at all (as opposed to refusing). */
export function isUnreachable(error: unknown): boolean {
  return (
    isProtocolError(error, 'ERR_UPSTREAM_UNREACHABLE') ||
    isProtocolError(error, 'ERR_UPSTREAM_TIMEOUT') ||
    isProtocolError(error, 'ERR_DISCOVERY_UNREACHABLE') ||
    isProtocolError(error, 'ERR_DISCOVERY_TIMEOUT')
  );
}
