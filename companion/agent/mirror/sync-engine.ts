/**
 * The sync engine of one connection: brings its mirror store to the server's state.
 *
 * The change feed is the truth, its events are thin (URIs), and `since` absent reads it from
 * the beginning. So:
 *
 * - **Full sync** (first sync, unknown cursor, restored server, scope change): take the feed's
 *   head (read it to its end, or reuse a cursor known to be good), then scan the assets page by
 *   page (`GET {api}/assets?sort=created`, whole assets, 200 at a time), marking each with this
 *   scan's number, then remove what the scan did not see, and set the cursor to the head.
 *   The scan's position is stored with every page, so a crash or a cut resumes it. Changes made
 *   during the scan are after the head: the catch-up below applies them. A scan by `created`
 *   can skip an asset when an earlier one is deleted meanwhile, so the number of assets is
 *   compared with the server's `total` after a full sync, and a mismatch scans once more.
 * - **Catch-up**: read the feed from the cursor, fetch every asset a page names (bounded
 *   concurrency; gone, deleted or no longer readable ones are removed), and store each page's
 *   assets with its cursor in one durable batch.
 *
 * Trust: a page that cannot be right (ERR_UPSTREAM_INVALID) stops the run with the mirror as it
 * was. A cursor the server refuses (while the feed answers without one) means a full sync. A
 * server restored from a backup is caught two ways: an event numbered at or below the last one
 * applied, and, where the server's cursors are its `seq` numbers, a probe of the event at the
 * cursor (`since = cursor - 1`): a feed that ends before it, or a different event there.
 */
import { isProtocolError, ProtocolError } from '../../../shared/errors.ts';
import type { Asset, SearchPage, SearchQuery } from '../../../shared/schemas/asset.ts';
import type { ChangesPage } from '../../../shared/schemas/changes.ts';
import { FeedRewound, isUnknownCursor, readChangesPage } from './feed.ts';
import type { InitialSync, MirrorState, MirrorStore } from './store.ts';

/** What the engine needs of a server (a `ProtocolClient` is one). */
export interface SyncSource {
  changes(since?: string, limit?: number): Promise<ChangesPage>;
  search(query: SearchQuery): Promise<SearchPage>;
  getAsset(id: string): Promise<{ asset: Asset; etag: string }>;
}

export const SYNC_DEFAULTS = Object.freeze({
  feedLimit: 1000, // events per change-feed page (the reference server's maximum)
  searchLimit: 200, // assets per scan page (the reference server's default maximum)
  fetchConcurrency: 8, // assets fetched at once during catch-up
  maxResyncsPerRun: 2, // full syncs one run may start before it gives up with an error
});

export interface SyncEngineOptions {
  store: MirrorStore;
  /** A client of the server (asked for at each run, so a new token is used at once). */
  source: () => SyncSource;
  feedLimit?: number;
  searchLimit?: number;
  fetchConcurrency?: number;
  now?: () => Date;
  /** Told of every asset written or removed (thumbnails follow). */
  onAssets?: (put: readonly Asset[], deleted: readonly string[]) => void;
}

export interface SyncReport {
  /** Full syncs this run made, with their reasons. */
  fullSyncs: string[];
  /** Assets written (scanned or fetched) and removed. */
  written: number;
  removed: number;
  /** Change-feed pages applied. */
  pages: number;
}

/** A full sync is needed, for this reason. */
class NeedsResync extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export class SyncEngine {
  readonly store: MirrorStore;
  readonly #options: SyncEngineOptions;
  readonly #feedLimit: number;
  readonly #searchLimit: number;
  readonly #concurrency: number;

  constructor(options: SyncEngineOptions) {
    this.store = options.store;
    this.#options = options;
    this.#feedLimit = options.feedLimit ?? SYNC_DEFAULTS.feedLimit;
    this.#searchLimit = options.searchLimit ?? SYNC_DEFAULTS.searchLimit;
    this.#concurrency = options.fetchConcurrency ?? SYNC_DEFAULTS.fetchConcurrency;
  }

  /**
   * One run: a full sync when one is due, then the feed read to its end. Throws a
   * ProtocolError when the server cannot be reached or answers nonsense (the mirror keeps what
   * it had; the next run resumes), ERR_DISK_FULL when the store cannot write.
   */
  async run(signal?: AbortSignal): Promise<SyncReport> {
    const report: SyncReport = { fullSyncs: [], written: 0, removed: 0, pages: 0 };
    const source = this.#options.source();
    let resync: { reason: string; head?: Head } | undefined;
    let countChecked = false;
    for (;;) {
      const state = this.store.state;
      if (!resync) {
        if (state.initial) resync = { reason: state.initial.reason };
        else if (state.cursor === null) resync = { reason: 'first sync' };
        else if (state.pendingResync) resync = { reason: state.pendingResync, head: headOf(state) };
      }
      try {
        if (resync) {
          if (report.fullSyncs.length > SYNC_DEFAULTS.maxResyncsPerRun) {
            throw new ProtocolError(
              'ERR_UPSTREAM_INVALID',
              `the mirror did not converge after ${report.fullSyncs.length} full syncs (last reason: ${resync.reason})`,
            );
          }
          report.fullSyncs.push(resync.reason);
          await this.#fullSync(source, resync.reason, resync.head, report, signal);
          resync = undefined;
        }
        await this.#catchUp(source, report, signal);
        // Only a scan can miss an asset (an earlier one deleted meanwhile shifts the pages): count
        // once after a full sync, and scan once more if the numbers differ.
        if (report.fullSyncs.length > 0 && !countChecked) {
          countChecked = true;
          const mismatch = await this.#countMismatch(source, signal);
          if (mismatch) {
            // Changes may have landed between the catch-up and the count: read the feed once more.
            await this.#catchUp(source, report, signal);
            const again = await this.#countMismatch(source, signal);
            if (again) {
              resync = { reason: `${again} after a full sync: scanning again`, head: headOf(this.store.state) };
              continue;
            }
          }
        }
        await this.store.apply({ state: { ...this.store.state, lastSync: this.#now().toISOString(), lastError: null } });
        return report;
      } catch (error) {
        if (error instanceof NeedsResync) {
          resync = { reason: error.reason };
          continue;
        }
        throw error;
      }
    }
  }

  /** Changes the mirrored collections (null: everything); the next run re-scans. */
  async setCollections(collections: readonly string[] | null): Promise<void> {
    const next = collections === null ? null : [...new Set(collections)].sort();
    const state = this.store.state;
    if (JSON.stringify(next) === JSON.stringify(state.collections)) return;
    await this.store.apply({
      state: { ...state, collections: next, pendingResync: 'the mirrored collections changed', initial: null },
    });
  }

  /** Records an error in the durable state (best effort: a full disk keeps it in memory only). */
  async noteError(error: { code: string; message: string }): Promise<void> {
    const lastError = { code: error.code, message: error.message, at: this.#now().toISOString() };
    await this.store.apply({ state: { ...this.store.state, lastError } }).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  async #fullSync(source: SyncSource, reason: string, knownHead: Head | undefined, report: SyncReport, signal?: AbortSignal) {
    let state = this.store.state;
    let init = state.initial;
    if (!init) {
      const head = knownHead ?? (await this.#readHead(source, signal));
      const isResync = state.cursor !== null || state.lastSync !== null;
      init = {
        reason,
        startedAt: this.#now().toISOString(),
        head: head.cursor,
        headSeq: head.lastSeq,
        headEvent: head.lastEvent,
        scanGen: this.#nextScanGen(),
        scope: 0,
        page: null,
        scanned: 0,
      };
      state = {
        ...state,
        initial: init,
        pendingResync: null,
        seqCursors: head.seqCursors ?? state.seqCursors,
        ...(isResync ? { resyncs: state.resyncs + 1, lastResync: { at: init.startedAt, reason } } : {}),
      };
      await this.store.apply({ state });
    }

    const scopes: Array<string | undefined> = state.collections ?? [undefined];
    let restarted = false;
    while (init.scope < scopes.length) {
      checkAborted(signal);
      const collection = scopes[init.scope];
      let page: SearchPage;
      try {
        page = await source.search({ collection, sort: 'created', limit: this.#searchLimit, cursor: init.page ?? undefined });
      } catch (error) {
        // A scan cursor from before a crash that the server no longer takes: scan this scope again.
        if (init.page !== null && !restarted && (isProtocolError(error, 'ERR_BAD_REQUEST') || isProtocolError(error, 'ERR_VALIDATION'))) {
          restarted = true;
          init = { ...init, page: null };
          continue;
        }
        if (collection !== undefined && isProtocolError(error, 'ERR_COLLECTION_NOT_FOUND')) {
          page = { items: [], next: null };
        } else {
          throw error;
        }
      }
      if (page.next !== null && page.next === init.page) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `search answered the same cursor twice: ${page.next}`);
      }
      const items = page.items.filter((a) => !a.deleted && inScope(a, state.collections));
      init = page.next
        ? { ...init, page: page.next, scanned: init.scanned + items.length }
        : { ...init, scope: init.scope + 1, page: null, scanned: init.scanned + items.length };
      await this.store.apply({ put: items, scanGen: init.scanGen, state: { ...this.store.state, initial: init } });
      report.written += items.length;
      this.#options.onAssets?.(items, []);
    }

    const scanGen = init.scanGen;
    const stale = this.store.ids().filter((id) => this.store.scanGenOf(id) !== scanGen);
    await this.store.apply({
      delete: stale,
      state: {
        ...this.store.state,
        initial: null,
        cursor: init.head,
        lastSeq: init.headSeq,
        lastEvent: init.headEvent,
      },
    });
    report.removed += stale.length;
    if (stale.length > 0) this.#options.onAssets?.([], stale);
  }

  #nextScanGen(): number {
    let max = 0;
    for (const id of this.store.ids()) max = Math.max(max, this.store.scanGenOf(id) ?? 0);
    return max + 1;
  }

  /** Reads the whole feed (thin events) to find its end. */
  async #readHead(source: SyncSource, signal?: AbortSignal): Promise<Head> {
    let since: string | undefined;
    let lastSeq = 0;
    let lastEvent: Head['lastEvent'] = null;
    let seqCursors: boolean | undefined;
    for (;;) {
      checkAborted(signal);
      const page = await source.changes(since, this.#feedLimit);
      let effects;
      try {
        effects = readChangesPage(page, lastSeq, since);
      } catch (error) {
        if (error instanceof FeedRewound) throw new ProtocolError('ERR_UPSTREAM_INVALID', error.message);
        throw error;
      }
      if (effects.last) {
        lastSeq = effects.last.seq;
        lastEvent = { seq: effects.last.seq, id: effects.last.id, time: effects.last.time };
        if (effects.seqCursor) seqCursors = true;
      }
      since = page.next;
      if (!page.hasMore) return { cursor: since, lastSeq, lastEvent, seqCursors };
    }
  }

  async #catchUp(source: SyncSource, report: SyncReport, signal?: AbortSignal): Promise<void> {
    const start = this.store.state;
    if (start.cursor === null) return;
    if (start.seqCursors) await this.#probeRestore(source, start);
    let since = start.cursor;
    for (;;) {
      checkAborted(signal);
      const state = this.store.state;
      let page: ChangesPage;
      try {
        page = await source.changes(since, this.#feedLimit);
      } catch (error) {
        if (isUnknownCursor(error) && (await this.#feedAnswersWithoutCursor(source))) {
          throw new NeedsResync(`the server no longer knows the mirror's cursor (${(error as Error).message})`);
        }
        throw error;
      }
      let effects;
      try {
        effects = readChangesPage(page, state.lastSeq, since);
      } catch (error) {
        if (error instanceof FeedRewound) throw new NeedsResync(`the server was restored from a backup (${error.message})`);
        throw error;
      }
      const { put, gone } = await this.#fetchAll(source, effects.refetch, state.collections, signal);
      const removed = [...effects.deleted, ...gone].filter((id) => this.store.has(id));
      const last = effects.last;
      await this.store.apply({
        put,
        delete: removed,
        state: {
          ...state,
          cursor: page.next,
          lastSeq: last ? last.seq : state.lastSeq,
          lastEvent: last ? { seq: last.seq, id: last.id, time: last.time } : state.lastEvent,
          seqCursors: /^\d+$/.test(page.next) ? state.seqCursors || effects.seqCursor : false,
        },
      });
      report.pages += 1;
      report.written += put.length;
      report.removed += removed.length;
      if (put.length > 0 || removed.length > 0) this.#options.onAssets?.(put, removed);
      if (!page.hasMore) return;
      since = page.next;
    }
  }

  /**
   * Asks for the event at the cursor (`since = cursor - 1`, one event): a feed that ends before
   * it, or another event under the `seq` applied last, means the server lost events.
   */
  async #probeRestore(source: SyncSource, state: MirrorState): Promise<void> {
    const cursor = state.cursor ?? '';
    if (!/^\d{1,15}$/.test(cursor) || Number(cursor) < 1) return;
    const at = Number(cursor);
    let probe: ChangesPage;
    try {
      probe = await source.changes(String(at - 1), 1);
    } catch (error) {
      // The feed may have been pruned up to the cursor: no evidence either way; reading from
      // the cursor itself (next) tells whether the server still knows it.
      if (isUnknownCursor(error)) return;
      throw error;
    }
    const end = /^\d{1,15}$/.test(probe.next) ? Number(probe.next) : undefined;
    if (end !== undefined && end < at) {
      throw new NeedsResync(`the server was restored from a backup (its change feed ends at ${end}, the mirror had read up to ${at})`);
    }
    const event = probe.events[0];
    const known = state.lastEvent;
    if (event && known && event.seq === known.seq && (event.id !== known.id || event.time !== known.time)) {
      throw new NeedsResync(`the server was restored from a backup (event ${known.seq} is not the one the mirror applied)`);
    }
  }

  /** Whether the feed answers without a cursor (so a refused cursor is the cursor's fault). */
  async #feedAnswersWithoutCursor(source: SyncSource): Promise<boolean> {
    try {
      await source.changes(undefined, this.#feedLimit);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Fetches assets (bounded concurrency). Gone, deleted, unreadable or out-of-scope ones are
   * `gone`; any other failure fails the whole page (nothing is applied).
   */
  async #fetchAll(
    source: SyncSource,
    ids: readonly string[],
    collections: readonly string[] | null,
    signal?: AbortSignal,
  ): Promise<{ put: Asset[]; gone: string[] }> {
    const put: Asset[] = [];
    const gone: string[] = [];
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < ids.length && failure === undefined) {
        const id = ids[next++]!;
        try {
          checkAborted(signal);
          const { asset } = await source.getAsset(id);
          if (asset.id !== id) {
            throw new ProtocolError('ERR_UPSTREAM_INVALID', `asked for asset ${JSON.stringify(id)}, got ${JSON.stringify(asset.id)}`);
          }
          if (asset.deleted || !inScope(asset, collections)) gone.push(id);
          else put.push(asset);
        } catch (error) {
          if (isGone(error)) gone.push(id);
          else failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, ids.length) }, worker));
    if (failure !== undefined) throw failure;
    return { put, gone };
  }

  /**
   * A reason to scan again when the mirror does not hold as many assets as the server reports
   * for its scope (whole library or one collection; several collections may overlap, so they
   * are not counted). Undefined when they agree or the server gives no total.
   */
  async #countMismatch(source: SyncSource, signal?: AbortSignal): Promise<string | undefined> {
    checkAborted(signal);
    const collections = this.store.state.collections;
    if (collections !== null && collections.length !== 1) return undefined;
    const page = await source.search({ collection: collections?.[0], limit: 1 });
    if (page.total === undefined) return undefined;
    const local = this.store.size;
    return page.total === local ? undefined : `the mirror holds ${local} assets, the server ${page.total}`;
  }
}

interface Head {
  cursor: string | null;
  lastSeq: number;
  lastEvent: MirrorState['lastEvent'];
  seqCursors?: boolean;
}

function headOf(state: MirrorState): Head {
  return { cursor: state.cursor, lastSeq: state.lastSeq, lastEvent: state.lastEvent };
}

export function inScope(asset: Asset, collections: readonly string[] | null): boolean {
  return collections === null || asset.collections.some((c) => collections.includes(c));
}

function isGone(error: unknown): boolean {
  return (
    isProtocolError(error, 'ERR_ASSET_NOT_FOUND') ||
    isProtocolError(error, 'ERR_ASSET_GONE') ||
    isProtocolError(error, 'ERR_FORBIDDEN')
  );
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'sync stopped: the agent is closing');
}

export type { InitialSync };
