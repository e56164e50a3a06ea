/**
 * The agent's offline mirror (issue 9): for every connection, a store of the server's assets
 * kept current through its change feed (sync-engine.ts), a local index answering the server's
 * own query language (local-index.ts), and the grid thumbnails fetched ahead into the agent's
 * thumbnail cache (thumb-filler.ts). `services.mirror` is this object: the agent's search and
 * asset routes fall back to it when a server is unreachable; `/agent/v1/sync` reports on it.
 *
 * Scheduling: each connection syncs once the agent listens (`start()`), then every
 * `config.syncIntervalSeconds`; a failed run is retried with exponential backoff (capped at
 * ten minutes); `syncNow()` (a webhook, the panel or `imagine sync now`) runs one at once.
 * Connections added or removed are noticed within seconds; a removed one's mirror and
 * thumbnails are deleted.
 *
 * @example
 *   const mirror = await Mirror.open(services);
 *   mirror.start();
 *   const page = await mirror.search('images.example', { q: 'harbour' });
 *   mirror.status(); // [{ connection, state: 'idle', lastSync, lagSeconds, assets, bytesOnDisk }]
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isProtocolError, ProtocolError } from '../../../shared/errors.ts';
import type { Connection, ConnectionState, SyncStatus } from '../../../shared/schemas/agent.ts';
import type { Asset, SearchPage, SearchQuery } from '../../../shared/schemas/asset.ts';
import { errorNote, isUnreachable, type ErrorNote } from './errors.ts';
import { LocalIndex } from './local-index.ts';
import { MirrorStore } from './store.ts';
import { SyncEngine, type SyncReport, type SyncSource } from './sync-engine.ts';
import { ThumbFiller, type ThumbFillStatus, type ThumbsLike } from './thumb-filler.ts';

export const MIRROR_DIR = 'mirror';

export const MIRROR_DEFAULTS = Object.freeze({
  /** How often the list of connections is compared with the mirrors, ms. */
  reconcileMs: 2_000,
  /** Longest wait between two attempts after failures, ms. */
  maxBackoffMs: 10 * 60_000,
  /** First wait after a failure, ms (doubles with each failure in a row). */
  firstBackoffMs: 5_000,
  /** Longest wait for a run under way when the agent closes, ms. */
  closeWaitMs: 3_000,
});

/** What the mirror needs of the agent's services. */
export interface MirrorHost {
  /** `<data>/agent`. */
  dir: string;
  config: { syncIntervalSeconds: number; agentCacheBytes: number };
  connections: {
    list(): Connection[];
    markState?(id: string, state: ConnectionState, error?: { code: string; message: string }): Promise<void>;
  };
  client(connectionId: string): SyncSource;
  thumbs?: ThumbsLike;
}

export interface MirrorOptions {
  /** Overrides `config.syncIntervalSeconds`, ms. */
  intervalMs?: number;
  firstBackoffMs?: number;
  /** Passed to each engine (tests and benchmarks use small pages). */
  engine?: { feedLimit?: number; searchLimit?: number; fetchConcurrency?: number };
  /** Thumbnails fetched at once per connection. */
  thumbConcurrency?: number;
}

export type SyncState = SyncStatus['state'];

/** The mirror's status of one connection: the `SyncStatus` contract plus details for the panel. */
export interface MirrorStatus extends SyncStatus {
  /** `initial` while a full sync runs (first one or a resync), else `incremental`. */
  phase: 'initial' | 'incremental';
  /** During a full sync: why, and how many assets were scanned so far. */
  fullSync?: { reason: string; startedAt: string; scanned: number };
  /** Collection ids mirrored; null for everything the token can read. */
  collections: string[] | null;
  /** The metadata store alone (the rest of `bytesOnDisk` is thumbnails). */
  metadataBytes: number;
  thumbnails: ThumbFillStatus;
  resyncs: number;
  lastResync: { at: string; reason: string } | null;
  /** When the next run is due (none while one runs). */
  nextSync: string | null;
}

interface Slot {
  id: string;
  dir: string;
  ready: Promise<void>;
  store?: MirrorStore;
  index?: LocalIndex;
  engine?: SyncEngine;
  filler?: ThumbFiller;
  state: SyncState;
  lastError: ErrorNote | null;
  failures: number;
  timer?: NodeJS.Timeout;
  nextRun: number | null;
  running?: Promise<void>;
  again: boolean;
  abort: AbortController;
  removed: boolean;
  lastReport?: SyncReport;
}

/** The folder name of a connection's mirror (its id when that is a safe name, else a hash). */
export function mirrorFolderOf(connectionId: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/.test(connectionId)
    ? connectionId
    : `h-${createHash('sha256').update(connectionId).digest('hex').slice(0, 32)}`;
}

export class Mirror {
  readonly root: string;
  readonly #host: MirrorHost;
  readonly #options: MirrorOptions;
  readonly #slots = new Map<string, Slot>();
  #started = false;
  #closed = false;
  #reconciler: NodeJS.Timeout | undefined;

  private constructor(host: MirrorHost, options: MirrorOptions) {
    this.#host = host;
    this.#options = options;
    this.root = join(host.dir, MIRROR_DIR);
  }

  /** Opens the mirrors of every connection (loading in the background); nothing syncs before `start()`. */
  static async open(host: MirrorHost, options: MirrorOptions = {}): Promise<Mirror> {
    const mirror = new Mirror(host, options);
    await mkdir(mirror.root, { recursive: true, mode: 0o700 });
    mirror.#reconcile();
    await mirror.#removeStrayFolders();
    return mirror;
  }

  /** Starts syncing: every connection at once, then on its interval. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#reconcile();
    for (const slot of this.#slots.values()) this.#schedule(slot, 0);
    this.#reconciler = setInterval(() => this.#reconcile(), MIRROR_DEFAULTS.reconcileMs);
    this.#reconciler.unref();
  }

  get started(): boolean {
    return this.#started;
  }

  // --- LocalMirror -----------------------------------------------------------------------------

  /** A page answered from the mirror; undefined when this connection has no mirror yet. */
  async search(connectionId: string, query: SearchQuery): Promise<SearchPage | undefined> {
    const slot = await this.#usable(connectionId);
    return slot?.index!.search(query);
  }

  /** A mirrored asset; undefined when it is not mirrored. */
  async getAsset(connectionId: string, assetId: string): Promise<Asset | undefined> {
    const slot = await this.#usable(connectionId);
    return slot?.store!.get(assetId);
  }

  /** Whether this connection's mirror can answer (its first sync got somewhere). */
  async isAvailable(connectionId: string): Promise<boolean> {
    return (await this.#usable(connectionId)) !== undefined;
  }

  // --- control and status ----------------------------------------------------------------------

  status(): MirrorStatus[] {
    this.#reconcile();
    return [...this.#slots.values()].map((slot) => this.#statusOf(slot));
  }

  /** The status of one connection; ERR_CONNECTION_NOT_FOUND when unknown. */
  statusOf(connectionId: string): MirrorStatus {
    return this.#statusOf(this.#require(connectionId));
  }

  /** Runs a sync now (after the one under way, if any); with `wait`, resolves when it ended. */
  async syncNow(connectionId: string, options: { wait?: boolean } = {}): Promise<MirrorStatus> {
    const slot = this.#require(connectionId);
    const run = this.#trigger(slot);
    if (options.wait) await run;
    return this.#statusOf(slot);
  }

  /** Mirrors only these collections (null: everything the token can read); a full sync follows. */
  async setCollections(connectionId: string, collections: readonly string[] | null): Promise<MirrorStatus> {
    const slot = this.#require(connectionId);
    await slot.ready;
    if (!slot.engine) throw this.#unavailable(slot);
    await slot.engine.setCollections(collections);
    void this.#trigger(slot);
    return this.#statusOf(slot);
  }

  /** Resolves when the thumbnails pass of a connection is done (tests, benchmarks). */
  async thumbnailsIdle(connectionId: string): Promise<void> {
    await this.#slots.get(connectionId)?.filler?.idle();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#reconciler);
    await Promise.all([...this.#slots.values()].map((slot) => this.#stopSlot(slot)));
  }

  // -------------------------------------------------------------------------------------------

  #require(connectionId: string): Slot {
    this.#reconcile();
    const slot = this.#slots.get(connectionId);
    if (!slot) throw new ProtocolError('ERR_CONNECTION_NOT_FOUND', `no connection ${JSON.stringify(connectionId)}`);
    return slot;
  }

  async #usable(connectionId: string): Promise<Slot | undefined> {
    this.#reconcile();
    const slot = this.#slots.get(connectionId);
    if (!slot) return undefined;
    await slot.ready;
    const store = slot.store;
    if (!store || !slot.index) return undefined;
    return store.state.cursor !== null || store.size > 0 ? slot : undefined;
  }

  #unavailable(slot: Slot): ProtocolError {
    const why = slot.lastError ? `: ${slot.lastError.message}` : '';
    return new ProtocolError('ERR_MIRROR_UNAVAILABLE', `the mirror of ${slot.id} could not be opened${why}`);
  }

  /** Opens mirrors for new connections and deletes those of removed ones. */
  #reconcile(): void {
    if (this.#closed) return;
    const ids = new Set(this.#host.connections.list().map((c) => c.id));
    for (const id of ids) {
      if (!this.#slots.has(id)) {
        const slot = this.#addSlot(id);
        if (this.#started) this.#schedule(slot, 0);
      }
    }
    for (const slot of [...this.#slots.values()]) {
      if (!ids.has(slot.id)) {
        this.#slots.delete(slot.id);
        slot.removed = true;
        void this.#stopSlot(slot).then(async () => {
          await slot.store?.destroy().catch(() => undefined);
          await rm(slot.dir, { recursive: true, force: true }).catch(() => undefined);
          await this.#host.thumbs?.remove(slot.id).catch(() => undefined);
        });
      }
    }
  }

  #addSlot(id: string): Slot {
    const slot: Slot = {
      id,
      dir: join(this.root, mirrorFolderOf(id)),
      ready: Promise.resolve(),
      state: 'idle',
      lastError: null,
      failures: 0,
      nextRun: null,
      again: false,
      abort: new AbortController(),
      removed: false,
    };
    slot.ready = this.#load(slot);
    this.#slots.set(id, slot);
    return slot;
  }

  /** Opens the slot's store and what hangs off it; a failure is kept as the slot's error. */
  async #load(slot: Slot): Promise<void> {
    try {
      const store = await MirrorStore.open(slot.dir);
      if (slot.removed || this.#closed) {
        await store.close();
        return;
      }
      const { thumbs } = this.#host;
      const filler = thumbs
        ? new ThumbFiller({
            connectionId: slot.id,
            store,
            thumbs,
            maxBytes: this.#host.config.agentCacheBytes,
            concurrency: this.#options.thumbConcurrency,
          })
        : undefined;
      const engine = new SyncEngine({
        store,
        source: () => this.#host.client(slot.id),
        ...this.#options.engine,
        onAssets: (_put, deleted) => {
          if (deleted.length > 0) void filler?.forget(deleted);
        },
      });
      slot.store = store;
      slot.index = new LocalIndex(store);
      slot.engine = engine;
      slot.filler = filler;
      if (store.state.lastError) slot.lastError = store.state.lastError;
    } catch (error) {
      slot.state = 'error';
      slot.lastError = errorNote(error);
    }
  }

  #intervalMs(): number {
    return this.#options.intervalMs ?? this.#host.config.syncIntervalSeconds * 1000;
  }

  #schedule(slot: Slot, delayMs: number): void {
    if (this.#closed || slot.removed) return;
    clearTimeout(slot.timer);
    slot.nextRun = Date.now() + delayMs;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      void this.#trigger(slot);
    }, delayMs);
    slot.timer.unref();
  }

  /** Runs a sync of the slot now, or once more after the one under way. */
  #trigger(slot: Slot): Promise<void> {
    if (this.#closed || slot.removed) return Promise.resolve();
    if (slot.running) {
      slot.again = true;
      // Resolves after the follow-up run, which sees every change made until now.
      return slot.running.then(() => slot.running ?? undefined);
    }
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.nextRun = null;
    const run = this.#runOnce(slot).finally(() => {
      slot.running = undefined;
      if (this.#closed || slot.removed) return;
      if (slot.again) {
        slot.again = false;
        void this.#trigger(slot);
        return;
      }
      if (!this.#started) return;
      this.#schedule(slot, slot.failures > 0 ? this.#backoffMs(slot.failures) : this.#intervalMs());
    });
    slot.running = run;
    return run;
  }

  #backoffMs(failures: number): number {
    const first = this.#options.firstBackoffMs ?? MIRROR_DEFAULTS.firstBackoffMs;
    const cap = Math.max(this.#intervalMs(), MIRROR_DEFAULTS.maxBackoffMs);
    const base = Math.min(cap, first * 2 ** Math.min(failures - 1, 20));
    return Math.round(base * (0.9 + Math.random() * 0.2));
  }

  async #runOnce(slot: Slot): Promise<void> {
    await slot.ready;
    if (!slot.store && !slot.removed && !this.#closed) {
      // The store could not be opened (a full disk, permissions): try again.
      slot.ready = this.#load(slot);
      await slot.ready;
    }
    const engine = slot.engine;
    if (!engine) {
      slot.failures += 1;
      slot.state = 'error';
      return;
    }
    slot.state = 'syncing';
    const markState = (state: ConnectionState, error?: ErrorNote) =>
      this.#host.connections.markState?.(slot.id, state, error && { code: error.code, message: error.message }).catch(() => undefined);
    try {
      slot.lastReport = await engine.run(slot.abort.signal);
      slot.failures = 0;
      slot.state = 'idle';
      slot.lastError = null;
      await markState('ok');
      slot.filler?.wake();
    } catch (error) {
      if (this.#closed || slot.removed) return;
      slot.failures += 1;
      const note = errorNote(error);
      slot.lastError = note;
      if (isUnreachable(error)) {
        slot.state = 'offline';
        await markState('offline', note);
      } else {
        slot.state = 'error';
        if (isProtocolError(error, 'ERR_UNAUTHORIZED') || isProtocolError(error, 'ERR_TOKEN_INVALID')) {
          await markState('unauthorized', note);
        }
      }
      await engine.noteError(note);
    }
  }

  #statusOf(slot: Slot): MirrorStatus {
    const store = slot.store;
    const state = store?.state;
    const now = Date.now();
    const lastSync = state?.lastSync ?? null;
    const thumbnails = slot.filler?.status() ?? { cached: 0, bytes: 0, failed: 0, filling: false };
    const metadataBytes = store?.bytesOnDisk ?? 0;
    const status: MirrorStatus = {
      connection: slot.id,
      state: slot.state,
      lastSync,
      lagSeconds: lastSync === null ? null : Math.max(0, Math.round((now - Date.parse(lastSync)) / 100) / 10),
      assets: store?.size ?? 0,
      bytesOnDisk: metadataBytes + thumbnails.bytes,
      phase: state && state.initial === null && state.cursor !== null ? 'incremental' : 'initial',
      collections: state?.collections ?? null,
      metadataBytes,
      thumbnails,
      resyncs: state?.resyncs ?? 0,
      lastResync: state?.lastResync ?? null,
      nextSync: slot.nextRun === null || slot.running ? null : new Date(slot.nextRun).toISOString(),
    };
    if (state?.initial) {
      status.fullSync = { reason: state.initial.reason, startedAt: state.initial.startedAt, scanned: state.initial.scanned };
    }
    if (slot.lastError) status.lastError = slot.lastError;
    return status;
  }

  async #stopSlot(slot: Slot): Promise<void> {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.abort.abort();
    // A request under way ends at its own timeout; closing does not wait for more than a moment.
    let timer: NodeJS.Timeout | undefined;
    const moment = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, MIRROR_DEFAULTS.closeWaitMs);
    });
    await Promise.race([Promise.all([slot.running?.catch(() => undefined), slot.filler?.stop()]), moment]);
    clearTimeout(timer);
    await slot.ready;
    void slot.filler?.stop(); // a thumbnail still downloading ends at its own timeout
    await slot.store?.close().catch(() => undefined);
  }

  /** Mirror folders of connections that were removed while the agent was not running. */
  async #removeStrayFolders(): Promise<void> {
    const known = new Set([...this.#slots.values()].map((s) => mirrorFolderOf(s.id)));
    for (const name of await readdir(this.root).catch(() => [] as string[])) {
      if (!known.has(name)) await rm(join(this.root, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
