/**
 * Fills the agent's thumbnail cache (companion/agent/thumb-cache.ts) with the grid-size
 * thumbnails of one connection's mirrored assets, after their metadata, so the grid browses
 * offline. Low priority: a couple of downloads at a time, newest assets first, and it stops
 * while the cache is nearly full, so it never evicts what the user looked at just now (the
 * cache's LRU does the evicting; this only decides what to fetch ahead).
 *
 * A thumbnail that fails (the server cannot render it, a bad image) is noted and not asked
 * for again for an hour; an unreachable server ends the pass (the next sync starts another).
 */
import type { Asset } from '../../../shared/schemas/asset.ts';
import { errorNote, isUnreachable } from './errors.ts';
import type { MirrorStore } from './store.ts';

/** What the filler needs of the thumbnail cache (`ThumbCache` is one). */
export interface ThumbsLike {
  ensure(connectionId: string, assetId: string, version: string): Promise<unknown>;
  has(connectionId: string, assetId: string, version: string): boolean;
  remove(connectionId: string, assetId?: string): Promise<void>;
  stats(connectionId?: string): { bytes: number; count: number };
}

export const THUMB_FILL_DEFAULTS = Object.freeze({
  concurrency: 2,
  /** Stop filling once the whole cache holds this share of its bound. */
  fillRatio: 0.9,
  /** A failed thumbnail is tried again after this long, ms. */
  retryFailedMs: 60 * 60_000,
});

export interface ThumbFillerOptions {
  connectionId: string;
  store: MirrorStore;
  thumbs: ThumbsLike;
  /** The cache's bound, bytes. */
  maxBytes: number;
  concurrency?: number;
  fillRatio?: number;
  now?: () => number;
}

export interface ThumbFillStatus {
  /** Thumbnails of this connection in the cache. */
  cached: number;
  bytes: number;
  /** Thumbnails that failed (not tried again for a while). */
  failed: number;
  /** Whether a pass is running. */
  filling: boolean;
  /** Why the last pass stopped early, if it did. */
  stopped?: string;
  lastError?: { code: string; message: string; at: string };
}

function hasThumbnail(asset: Asset): boolean {
  return !asset.deleted && (asset.thumbnail !== null || asset.iiif !== null);
}

export class ThumbFiller {
  readonly #options: ThumbFillerOptions;
  /** `asset\nversion` → when it failed (ms). */
  readonly #failed = new Map<string, number>();
  #pass: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #stoppedWhy: string | undefined;
  #lastError: ThumbFillStatus['lastError'];

  constructor(options: ThumbFillerOptions) {
    this.#options = options;
  }

  /** Starts a pass (or another one after the current), filling what is missing. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#pass) {
      this.#again = true;
      return;
    }
    this.#pass = this.#run().finally(() => {
      this.#pass = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.wake();
      }
    });
  }

  /** Resolves when no pass is running (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.#pass) await this.#pass;
  }

  /** Removes the thumbnails of assets no longer mirrored. */
  async forget(ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.#options.thumbs.remove(this.#options.connectionId, id).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#pass?.catch(() => undefined);
  }

  status(): ThumbFillStatus {
    this.#dropStaleFailures();
    const { bytes, count } = this.#options.thumbs.stats(this.#options.connectionId);
    const status: ThumbFillStatus = { cached: count, bytes, failed: this.#failed.size, filling: this.#pass !== undefined };
    if (this.#stoppedWhy) status.stopped = this.#stoppedWhy;
    if (this.#lastError) status.lastError = this.#lastError;
    return status;
  }

  /** Failures of versions no longer current (the asset changed, was deleted, or a resync replaced it) no longer count. */
  #dropStaleFailures(): void {
    for (const key of this.#failed.keys()) {
      const [id, version] = key.split('\n') as [string, string];
      if (this.#options.store.get(id)?.currentVersion !== version) this.#failed.delete(key);
    }
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  /** Missing thumbnails, newest asset first. */
  #missing(): Array<{ id: string; version: string }> {
    const { connectionId, store, thumbs } = this.#options;
    const now = this.#now();
    const wanted: Array<{ id: string; version: string; updated: string }> = [];
    for (const asset of store.assets()) {
      if (!hasThumbnail(asset) || thumbs.has(connectionId, asset.id, asset.currentVersion)) continue;
      const failedAt = this.#failed.get(`${asset.id}\n${asset.currentVersion}`);
      if (failedAt !== undefined && now - failedAt < THUMB_FILL_DEFAULTS.retryFailedMs) continue;
      wanted.push({ id: asset.id, version: asset.currentVersion, updated: asset.updated });
    }
    wanted.sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
    return wanted;
  }

  #full(): boolean {
    const { thumbs, maxBytes } = this.#options;
    return thumbs.stats().bytes >= maxBytes * (this.#options.fillRatio ?? THUMB_FILL_DEFAULTS.fillRatio);
  }

  async #run(): Promise<void> {
    const { connectionId, store, thumbs } = this.#options;
    this.#stoppedWhy = undefined;
    const queue = this.#missing();
    let next = 0;
    let halt: string | undefined;
    const worker = async () => {
      while (next < queue.length && halt === undefined && !this.#stopped) {
        if (this.#full()) {
          halt = 'the thumbnail cache is nearly full (raise agentCacheBytes to keep more offline)';
          break;
        }
        const { id, version } = queue[next++]!;
        // The asset may have changed or gone since the pass began.
        if (store.get(id)?.currentVersion !== version) continue;
        try {
          await thumbs.ensure(connectionId, id, version);
          this.#failed.delete(`${id}\n${version}`);
        } catch (error) {
          // Gone or changed while it was being fetched: its 404 is no failure to report.
          if (store.get(id)?.currentVersion !== version) continue;
          this.#lastError = errorNote(error, new Date(this.#now()));
          if (isUnreachable(error)) {
            halt = 'the server is unreachable';
          } else {
            this.#failed.set(`${id}\n${version}`, this.#now());
          }
        }
      }
    };
    const concurrency = this.#options.concurrency ?? THUMB_FILL_DEFAULTS.concurrency;
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, worker));
    this.#stoppedWhy = halt;
  }
}
