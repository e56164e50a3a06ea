/**
 * One collection mirror: a peer's collection copied into a local collection and kept equal
 * (the backup / live-copy case). The peer must trust this server with the `search`, `view`,
 * `import` and `sync` scopes; every request to it is signed.
 *
 * - **Full scan** (the initial copy; again when the peer no longer knows the cursor or its feed
 *   went backwards): read the peer's change feed to its end (the head), then page through its
 *   search `collection=ID` and apply each asset; remote assets the map holds that the scan did
 *   not see are fetched one by one; then the feed is followed from the head.
 * - **Catch-up**: read the feed from the cursor; every asset a page names is fetched again
 *   (events are thin, so order and losses do not matter) and applied.
 * - **Apply** an asset as the peer shows it now: in the collection with rights that allow
 *   distribution → its current version's original is copied verbatim (sha256 verified against
 *   the ticket), as a new local asset (provenance: `derivedFrom` = the remote
 *   `imagine://...@version`) or a new version of the local one; deleted, gone, out of the
 *   collection, or rights that now forbid distribution (do-not-distribute, expired licence, or
 *   the peer refusing the original) → the local copy is deleted (a tombstone).
 *
 * Every step is idempotent (a re-copy of bytes already there is recognised by sha256 and
 * provenance), and the map and the cursor are stored after each applied step, so a crash
 * resumes where it stopped. A run that fails (peer unreachable, garbage, trust revoked) leaves
 * the local copies as they are and records the error.
 */
import { rm } from 'node:fs/promises';
import type { Static, TSchema } from 'typebox';
import Type from 'typebox';
import { fromProblem, isProtocolError, ProtocolError } from '../../shared/errors.ts';
import { Asset, Collection, DownloadTicket, SearchPage } from '../../shared/schemas/asset.ts';
import { ChangesPage } from '../../shared/schemas/changes.ts';
import { formatUri, uriAuthorityFromOrigin } from '../../shared/uri.ts';
import { checkSchema } from '../../shared/validate.ts';
import { FeedRewound, isUnknownCursor, readChangesPage } from '../agent/mirror/feed.ts';
import type { Library } from '../library/library.ts';
import { currentVersion } from '../library/records.ts';
import { downloadVerified } from './import.ts';
import type { FeedPosition, MirrorDeclaration, MirrorItem, MirrorRunRecord, MirrorStateFile } from './mirror-store.ts';
import type { FederationServices } from './services.ts';

export const MIRROR_EVENTS = [
  'asset.created',
  'asset.updated',
  'asset.deleted',
  'rights.changed',
  'collection.items_added',
  'collection.items_removed',
] as const;

const FEED_LIMIT = 500;
const SCAN_LIMIT = 100;
/** Full scans one run may start before it gives up (a peer whose feed keeps rewinding). */
const MAX_SCANS_PER_RUN = 2;

export interface MirrorLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CollectionMirrorOptions {
  declaration: MirrorDeclaration;
  store: MirrorStateFile;
  federation: FederationServices;
  library: Library;
  /** Largest original copied, bytes. */
  maxBytes: number;
  log: MirrorLog;
  timeoutMs?: number;
}

class NeedsScan extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

type Outcome = 'created' | 'updated' | 'removed' | 'same' | 'skipped';

export class CollectionMirror {
  readonly declaration: MirrorDeclaration;
  readonly store: MirrorStateFile;
  readonly #o: CollectionMirrorOptions;
  #api = '';
  #authority = '';
  #report: MirrorRunRecord | undefined;
  /** Whether this run confirmed the remote collection is still readable (before removing as gone). */
  #collectionChecked = false;

  constructor(options: CollectionMirrorOptions) {
    this.#o = options;
    this.declaration = options.declaration;
    this.store = options.store;
    this.#authority = uriAuthorityFromOrigin(options.declaration.peer);
  }

  /** One run: the initial copy or a re-scan when due, then the feed read to its end. */
  async run(trigger: string): Promise<MirrorRunRecord> {
    const started = new Date().toISOString();
    const report: MirrorRunRecord = { trigger, started, finished: started, created: 0, updated: 0, removed: 0, pages: 0 };
    this.#report = report;
    this.#collectionChecked = false;
    const state = this.store.state;
    state.counters.runs++;
    try {
      await this.#checkPeer();
      let scans = 0;
      let reason: string | undefined =
        state.scan?.reason ?? (state.position === null ? 'initial copy' : undefined);
      for (;;) {
        try {
          if (reason !== undefined) {
            if (scans++ >= MAX_SCANS_PER_RUN) {
              throw new ProtocolError('ERR_UPSTREAM_INVALID', `the mirror did not converge after ${MAX_SCANS_PER_RUN} full scans (${reason})`);
            }
            report.fullScan = reason;
            await this.#fullScan(reason);
            reason = undefined;
          }
          await this.#catchUp();
          break;
        } catch (error) {
          if (!(error instanceof NeedsScan)) throw error;
          reason = error.reason;
          this.#o.log.warn({ mirror: this.declaration.id, reason }, 'collection mirror: full re-scan');
        }
      }
      report.finished = new Date().toISOString();
      state.lastRun = report;
      state.lastError = null;
      await this.store.save(state);
      return report;
    } catch (error) {
      const problem = isProtocolError(error) ? error : new ProtocolError('ERR_INTERNAL', (error as Error).message, { cause: error });
      report.finished = new Date().toISOString();
      state.lastRun = report;
      state.lastError = { code: problem.code, message: problem.message, at: report.finished };
      await this.store.save(state).catch(() => undefined);
      this.#o.log.warn({ mirror: this.declaration.id, code: problem.code, detail: problem.message }, 'collection mirror run failed');
      throw problem;
    } finally {
      this.#report = undefined;
    }
  }

  /**
   * Asks the peer to send its events for the collection to `url` (signed, `sync` scope), with
   * this mirror's secret. Hints only: nothing depends on them arriving.
   */
  async subscribe(url: string): Promise<void> {
    const state = this.store.state;
    await this.#checkPeer();
    const body = JSON.stringify({ url, secret: state.hookSecret, collection: this.declaration.collection, events: MIRROR_EVENTS });
    const answer = await this.#call(`${this.#api}/federation/subscriptions`, Type.Object({ id: Type.String() }), { method: 'POST', body });
    state.subscription = { id: answer.id, url, created: new Date().toISOString() };
    state.subscriptionError = null;
    await this.store.save(state);
  }

  /** Ends the peer's subscription (best effort; the peer also ends it on its own when hooks fail for days). */
  async unsubscribe(): Promise<void> {
    const sub = this.store.state.subscription;
    if (!sub) return;
    await this.#checkPeer();
    const response = await this.#fetch(`${this.#api}/federation/subscriptions/${encodeURIComponent(sub.id)}`, { method: 'DELETE' });
    if (!response.ok && response.status !== 404) throw fromProblem(await response.json().catch(() => undefined), response.status);
    this.store.state.subscription = null;
    await this.store.save(this.store.state);
  }

  // ---- the peer ----------------------------------------------------------------------------

  async #checkPeer(): Promise<void> {
    const { federation } = this.#o;
    const peer = await federation.peers.find('outgoing', this.declaration.peer);
    if (!peer || (peer.state !== 'requested' && peer.state !== 'accepted')) {
      throw new ProtocolError('ERR_PEER_UNKNOWN', `${this.declaration.peer} is not a peer: ask it to trust this server first (imagine peers request)`);
    }
    if (!this.#api) {
      const discovery = await federation.resolver.resolve(this.declaration.peer);
      this.#api = new URL(discovery.endpoints.api, this.declaration.peer).href.replace(/\/+$/, '');
    }
  }

  async #fetch(url: string, init: { method?: string; body?: string } = {}): Promise<Response> {
    try {
      return await this.#o.federation.signedFetch(this.declaration.localOrigin, url, {
        ...init,
        subject: this.declaration.subject,
        timeoutMs: this.#o.timeoutMs ?? 15_000,
      });
    } catch (error) {
      if (isProtocolError(error)) throw error;
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new ProtocolError(
        timedOut ? 'ERR_UPSTREAM_TIMEOUT' : 'ERR_UPSTREAM_UNREACHABLE',
        `${this.declaration.peer} ${timedOut ? 'took too long' : 'could not be reached'}`,
        { cause: error },
      );
    }
  }

  async #call<S extends TSchema>(url: string, schema: S, init: { method?: string; body?: string } = {}): Promise<Static<S>> {
    const response = await this.#fetch(url, init);
    const text = await response.text().catch(() => '');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!response.ok) throw fromProblem(body, response.status);
    const checked = checkSchema(schema, body, 3);
    if (!checked.ok) throw new ProtocolError('ERR_UPSTREAM_INVALID', `${this.declaration.peer} answered with something unexpected (${new URL(url).pathname})`);
    return checked.value;
  }

  #changes(since: string | undefined, limit: number): Promise<ChangesPage> {
    const query = new URLSearchParams({ limit: String(limit) });
    if (since !== undefined) query.set('since', since);
    return this.#call(`${this.#api}/changes?${query}`, ChangesPage);
  }

  #getAsset(id: string): Promise<Asset> {
    return this.#call(`${this.#api}/assets/${encodeURIComponent(id)}`, Asset);
  }

  #remoteUri(id: string, version?: string): string {
    return formatUri({ authority: this.#authority, type: 'images', id, ...(version ? { version } : {}) });
  }

  // ---- scan and feed -----------------------------------------------------------------------

  async #readHead(): Promise<FeedPosition> {
    let since: string | undefined;
    let lastSeq = 0;
    let lastEvent: FeedPosition['lastEvent'] = null;
    for (;;) {
      const page = await this.#changes(since, FEED_LIMIT);
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
      }
      since = page.next;
      if (!page.hasMore) return { cursor: since, lastSeq, lastEvent };
    }
  }

  async #fullScan(reason: string): Promise<void> {
    const { library } = this.#o;
    const state = this.store.state;
    if (!state.scan) {
      const remote = await this.#call(`${this.#api}/collections/${encodeURIComponent(this.declaration.collection)}`, Collection);
      const head = await this.#readHead();
      state.remoteName = remote.name;
      state.scan = { reason, started: new Date().toISOString(), head, page: null, seen: [] };
      state.counters.fullScans++;
      await this.store.save(state);
    }
    if (state.localCollection === null || !library.findCollection(state.localCollection)) {
      const name = `${state.remoteName ?? this.declaration.collection} (mirror of ${this.#authority})`;
      const created = await library.createCollection({ name, public: false, user: this.declaration.createdBy });
      state.localCollection = created.id;
      await this.store.save(state);
      this.#o.log.info({ mirror: this.declaration.id, collection: created.id, name }, 'collection mirror: local collection created');
    }
    const scan = state.scan!;
    const seen = new Set(scan.seen);
    for (;;) {
      const query = new URLSearchParams({ collection: this.declaration.collection, sort: 'created', limit: String(SCAN_LIMIT) });
      if (scan.page) query.set('cursor', scan.page);
      const page = await this.#call(`${this.#api}/assets?${query}`, SearchPage);
      if (page.next !== null && page.next === scan.page) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `${this.declaration.peer}: search answered the same cursor twice`);
      }
      for (const asset of page.items) {
        await this.#apply(asset);
        seen.add(asset.id);
      }
      scan.seen = [...seen];
      scan.page = page.next;
      this.#report!.pages++;
      await this.store.save(state);
      if (page.next === null) break;
    }
    // What the map holds and the scan did not see: deleted, moved out, or skipped by paging.
    for (const id of Object.keys(state.items)) if (!seen.has(id)) await this.#refresh(id);
    state.position = scan.head;
    state.scan = null;
    await this.store.save(state);
  }

  async #catchUp(): Promise<void> {
    const state = this.store.state;
    if (!state.position) return;
    await this.#probeRewind(state.position);
    for (;;) {
      const position: FeedPosition = state.position!;
      let page: ChangesPage;
      try {
        page = await this.#changes(position.cursor, FEED_LIMIT);
      } catch (error) {
        if (isUnknownCursor(error) && (await this.#changes(undefined, 1).then(() => true, () => false))) {
          throw new NeedsScan(`the peer no longer knows the cursor ${position.cursor}`);
        }
        throw error;
      }
      let effects;
      try {
        effects = readChangesPage(page, position.lastSeq, position.cursor);
      } catch (error) {
        if (error instanceof FeedRewound) throw new NeedsScan(`the peer's feed went backwards (${error.message})`);
        throw error;
      }
      for (const id of effects.deleted) if (state.items[id]) await this.#remove(id, 'deleted on the peer');
      for (const id of effects.refetch) await this.#refresh(id);
      const last = effects.last;
      state.position = {
        cursor: page.next,
        lastSeq: last ? last.seq : position.lastSeq,
        lastEvent: last ? { seq: last.seq, id: last.id, time: last.time } : position.lastEvent,
      };
      this.#report!.pages++;
      await this.store.save(state);
      if (!page.hasMore) return;
    }
  }

  /** A numeric cursor past the feed's end, or another event at the last applied `seq`: the peer lost events. */
  async #probeRewind(position: FeedPosition): Promise<void> {
    if (!/^\d{1,15}$/.test(position.cursor) || Number(position.cursor) < 1) return;
    const at = Number(position.cursor);
    let probe: ChangesPage;
    try {
      probe = await this.#changes(String(at - 1), 1);
    } catch (error) {
      if (isUnknownCursor(error)) return;
      throw error;
    }
    const end = /^\d{1,15}$/.test(probe.next) ? Number(probe.next) : undefined;
    if (end !== undefined && end < at) throw new NeedsScan(`the peer's feed ends at ${end}, the mirror had read up to ${at}`);
    const event = probe.events[0];
    const known = position.lastEvent;
    if (event && known && event.seq === known.seq && (event.id !== known.id || event.time !== known.time)) {
      throw new NeedsScan(`event ${known.seq} on the peer is not the one the mirror applied`);
    }
  }

  // ---- applying one asset ------------------------------------------------------------------

  /** Fetches a remote asset again and applies what it says now. */
  async #refresh(id: string): Promise<Outcome> {
    let asset: Asset;
    try {
      asset = await this.#getAsset(id);
    } catch (error) {
      if (isProtocolError(error, 'ERR_ASSET_NOT_FOUND') || isProtocolError(error, 'ERR_ASSET_GONE')) {
        if (!this.store.state.items[id]) return 'skipped';
        // Not found may also mean the whole collection became unreadable: then keep everything.
        await this.#checkCollectionReadable();
        return this.#remove(id, isProtocolError(error, 'ERR_ASSET_GONE') ? 'deleted on the peer' : 'no longer on the peer');
      }
      throw error;
    }
    if (asset.id !== id) throw new ProtocolError('ERR_UPSTREAM_INVALID', `asked ${this.declaration.peer} for asset ${id}, got ${asset.id}`);
    return this.#apply(asset);
  }

  async #checkCollectionReadable(): Promise<void> {
    if (this.#collectionChecked) return;
    await this.#call(`${this.#api}/collections/${encodeURIComponent(this.declaration.collection)}`, Collection);
    this.#collectionChecked = true;
  }

  async #apply(asset: Asset): Promise<Outcome> {
    const state = this.store.state;
    const item = state.items[asset.id];
    if (asset.deleted) return item ? this.#remove(asset.id, 'deleted on the peer') : 'skipped';
    if (!asset.collections.includes(this.declaration.collection)) return item ? this.#remove(asset.id, 'left the collection') : 'skipped';
    if (asset.rights.doNotDistribute || asset.rights.expired) {
      return item ? this.#remove(asset.id, 'its rights now forbid distribution') : 'skipped';
    }
    const local = item ? this.#o.library.catalog.asset(item.local) : undefined;
    const liveLocal = local && !local.deleted ? local : undefined;
    if (liveLocal && !liveLocal.collections.includes(state.localCollection!)) {
      await this.#o.library.addToCollection(state.localCollection!, [liveLocal.id]);
    }
    if (item && liveLocal && item.remoteVersion === asset.currentVersion) return 'same';

    let ticket: DownloadTicket;
    try {
      ticket = await this.#call(
        `${this.#api}/assets/${encodeURIComponent(asset.id)}/download?rendition=original&version=${encodeURIComponent(asset.currentVersion)}`,
        DownloadTicket,
      );
    } catch (error) {
      if (isProtocolError(error, 'ERR_DISTRIBUTION_FORBIDDEN')) {
        return item ? this.#remove(asset.id, 'the peer refuses to distribute its original') : 'skipped';
      }
      if (isProtocolError(error, 'ERR_ASSET_GONE') || isProtocolError(error, 'ERR_ASSET_NOT_FOUND')) return this.#refresh(asset.id);
      throw error;
    }
    if (ticket.size > this.#o.maxBytes) {
      throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `${this.#remoteUri(asset.id)} is ${ticket.size} bytes, over this library's limit`);
    }
    if (new URL(ticket.url).origin !== this.declaration.peer) {
      throw new ProtocolError('ERR_UPSTREAM_INVALID', `${this.declaration.peer} handed out a download URL on another origin`);
    }
    const source = this.#remoteUri(asset.id, ticket.version);

    // An owned local copy: a new version (or nothing, when its bytes are already current).
    if (item && item.owned && liveLocal) {
      const current = currentVersion(liveLocal);
      if (current.sha256 !== ticket.sha256) {
        await this.#withDownload(ticket, (tmp) =>
          this.#o.library.pushVersionFromTemp(liveLocal.id, tmp, {
            ifMatch: current.id,
            filename: asset.filename,
            comment: `Mirrored from ${source}`,
          }),
        );
        state.counters.updated++;
        this.#report!.updated++;
      }
      state.items[asset.id] = { ...item, remoteVersion: ticket.version, sha256: ticket.sha256 };
      await this.store.save(state);
      this.#o.log.info({ mirror: this.declaration.id, remote: source, local: liveLocal.id }, 'collection mirror: updated');
      return 'updated';
    }
    // A copy that is not ours (same bytes as another asset here) or gone: take it out, copy anew.
    if (item) await this.#remove(asset.id, 'replaced', { count: false });

    const created = await this.#withDownload(ticket, (tmp) =>
      this.#o.library.createAssetFromTemp(tmp, {
        filename: asset.filename,
        collection: state.localCollection!,
        comment: `Mirrored from ${source}`,
        derivedFrom: source,
      }),
    );
    // A duplicate made by this mirror before a crash carries its provenance: it is ours.
    const owned = !created.duplicate || !!created.asset.versions[0]?.derivedFrom?.startsWith(`${this.#remoteUri(asset.id)}@`);
    if (!created.asset.collections.includes(state.localCollection!)) {
      await this.#o.library.addToCollection(state.localCollection!, [created.asset.id]);
    }
    const mapped: MirrorItem = { local: created.asset.id, remoteVersion: ticket.version, sha256: ticket.sha256, owned };
    state.items[asset.id] = mapped;
    state.counters.created++;
    this.#report!.created++;
    this.#report!.appliedAt = Date.now();
    await this.store.save(state);
    this.#o.log.info({ mirror: this.declaration.id, remote: source, local: created.asset.id, owned }, 'collection mirror: copied');
    return 'created';
  }

  async #withDownload<T>(ticket: DownloadTicket, use: (tmp: { path: string; sha256: string; size: number }) => Promise<T>): Promise<T> {
    const tmp = this.#o.library.blobs.tempPath();
    try {
      await downloadVerified(ticket.url, tmp, ticket.size, ticket.sha256, this.#o.timeoutMs ?? 120_000);
      const result = await use({ path: tmp, sha256: ticket.sha256, size: ticket.size });
      this.#report!.appliedAt = Date.now();
      return result;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Deletes the local copy (a tombstone) or, when it is not ours, takes it out of the collection. */
  async #remove(remoteId: string, why: string, options: { count?: boolean } = {}): Promise<'removed'> {
    const state = this.store.state;
    const item = state.items[remoteId];
    if (!item) return 'removed';
    const { library } = this.#o;
    const local = library.catalog.asset(item.local);
    if (local && !local.deleted) {
      if (item.owned) {
        await library.deleteAsset(item.local);
      } else if (state.localCollection && local.collections.includes(state.localCollection)) {
        await library.removeFromCollection(state.localCollection, item.local);
      }
    }
    delete state.items[remoteId];
    if (options.count !== false) {
      state.counters.removed++;
      this.#report!.removed++;
      this.#report!.appliedAt = Date.now();
    }
    await this.store.save(state);
    this.#o.log.info({ mirror: this.declaration.id, remote: this.#remoteUri(remoteId), local: item.local, why }, 'collection mirror: removed');
    return 'removed';
  }
}
