/**
 * The in-memory search index of the library, kept in step with every catalog write.
 *
 * Full text is MiniSearch (BM25, prefix and fuzzy matching) over the current version's title,
 * description, keywords, creator, credit line and headline plus the asset's file name. Terms
 * are combined with AND, lower-cased, stripped of accents and of English function words.
 * MiniSearch knows each asset by its slot number and stores nothing else. Its BM25 values are
 * kept per index term between queries (see `full-text.ts`), so a query costs a walk through
 * typed arrays rather than a result object per match, with the same scores and order.
 *
 * Filters, sorts and pagination use this module's own structures, laid out for 100,000 assets:
 * - one row per asset ("slot") in typed-array columns (dates, format, orientation, licence end,
 *   do-not-distribute, set of collections), so a filter reads contiguous memory;
 * - postings (value → slots) for the list facets: collection, creator, keyword;
 * - three views, the slots sorted by created, updated and title. A write only notes the slot;
 *   the next query that needs a view merges the noted slots back in (or re-sorts the view after
 *   many writes), so each view is brought up to date at most once per burst of writes;
 * - a full-text page by relevance is the best `offset + limit` of the accepted matches (a heap),
 *   not a sort of every match; by another order, the matches are picked out of the sorted view.
 * Every query counts all its matches, so `total` is exact on every page.
 *
 * Pagination is by offset inside an opaque cursor (base64url JSON `{o, h}`), where `h` is a
 * short hash of the normalised q, filters and sort: a cursor replayed with another query, or
 * one that does not decode, is rejected with `ERR_BAD_REQUEST`.
 *
 * @example
 *   const index = new SearchIndex();
 *   await index.rebuildInBackground(catalog.data.assets); // or index.rebuild(…), synchronous
 *   catalog.onCommit((_changes, touched) => touched.forEach((a) => index.upsert(a)));
 *   const page = index.search(parseSearchQuery(request.query), { canSee, byCollections: true, maxLimit: 200 });
 */
import { createHash } from 'node:crypto';
import { FullText, documentTerms, foldTerm, textOf, type TextMatches } from './full-text.ts';
import { ProtocolError } from '../../shared/errors.ts';
import {
  ORIENTATIONS,
  RIGHTS_FILTERS,
  SEARCH_SORTS as SORTS,
  type AssetMetadata,
  type Orientation,
  type RightsFilter,
  type SearchQuery,
  type SearchSort,
} from '../../shared/schemas/asset.ts';
import type { AssetRecord } from './records.ts';

export {
  ORIENTATIONS,
  RIGHTS_FILTERS,
  SEARCH_SORTS as SORTS,
  type Orientation,
  type RightsFilter,
  type SearchQuery,
  type SearchSort,
} from '../../shared/schemas/asset.ts';
export interface SearchOptions {
  /** Whether the caller may see this asset; assets it may not see count nowhere, not even in `total`. */
  canSee(asset: AssetRecord): boolean;
  /**
   * Set when `canSee` depends only on `asset.collections` (as with per-collection grants): it
   * is then asked once per distinct set of collections instead of once per asset, and a search
   * with no filter stops once its page is full. This is what keeps 100,000 assets fast.
   */
  byCollections?: boolean;
  maxLimit: number;
  /** Time used for licence expiry (ms since epoch); default `Date.now()`. */
  now?: number;
}

export interface SearchResult {
  ids: string[];
  /** Cursor of the next page, or null on the last page. */
  next: string | null;
  /** Number of matching assets the caller can see. */
  total: number;
}

export const DEFAULT_LIMIT = 50;
export const MAX_Q_LENGTH = 500;
const MAX_CURSOR_LENGTH = 200;

const FORMAT_ALIASES: Record<string, string> = { jpg: 'jpeg', pjpeg: 'jpeg', tif: 'tiff' };

/**
 * One live asset. Its number (`slot`) is its row in the columns and its id in MiniSearch; a
 * slot stays with an asset until it is removed, then is reused.
 */
interface Entry {
  slot: number;
  asset: AssetRecord;
  /**
   * What the full-text index read: the file name and the current version (versions are
   * immutable: a metadata edit adds one), so an upsert can tell when the text is unchanged
   * even though the catalog changes asset records in place.
   */
  filename: string;
  version: AssetRecord['versions'][number] | undefined;
  metadata: AssetMetadata | undefined;
  /** List facet values, lower-cased: the keys of its postings. */
  collections: string[];
  creators: string[];
  keywords: string[];
}

type SortKey = 'created' | 'updated' | 'title';
type ListFacet = 'collection' | 'creator' | 'keyword';

const ORIENTATION_CODES = { landscape: 1, portrait: 2, square: 3 } as const;

/**
 * What filters and sorts read, one row per slot, in typed arrays: a query over 100,000 assets
 * reads a few contiguous arrays instead of chasing 100,000 objects around the heap.
 */
class Columns {
  capacity = 0;
  alive = new Uint8Array(0);
  created = new Float64Array(0);
  updated = new Float64Array(0);
  /** ms since epoch from which the licence is over; Infinity when there is no end date. */
  licenseEnd = new Float64Array(0);
  /** Interned format (see `SearchIndex.#formats`). */
  format = new Int32Array(0);
  /** Interned set of collections (see `CollectionSets`). */
  collectionSet = new Int32Array(0);
  /** 0 unknown, else `ORIENTATION_CODES`. */
  orientation = new Uint8Array(0);
  doNotDistribute = new Uint8Array(0);
  /** Position in each sorted view, valid while that view is clean. */
  ranks: Record<SortKey, Int32Array> = { created: new Int32Array(0), updated: new Int32Array(0), title: new Int32Array(0) };
  ids: string[] = [];
  /** Sort key of the title (the file name when untitled): accents stripped, lower case. */
  titles: string[] = [];

  ensure(size: number): void {
    if (size <= this.capacity) return;
    const n = Math.max(size, this.capacity * 2, 1024);
    const grow = <T extends Uint8Array | Int32Array | Float64Array>(old: T, make: new (n: number) => T): T => {
      const next = new make(n);
      next.set(old);
      return next;
    };
    this.alive = grow(this.alive, Uint8Array);
    this.created = grow(this.created, Float64Array);
    this.updated = grow(this.updated, Float64Array);
    this.licenseEnd = grow(this.licenseEnd, Float64Array);
    this.format = grow(this.format, Int32Array);
    this.collectionSet = grow(this.collectionSet, Int32Array);
    this.orientation = grow(this.orientation, Uint8Array);
    this.doNotDistribute = grow(this.doNotDistribute, Uint8Array);
    this.ranks = {
      created: grow(this.ranks.created, Int32Array),
      updated: grow(this.ranks.updated, Int32Array),
      title: grow(this.ranks.title, Int32Array),
    };
    this.capacity = n;
  }
}

/**
 * Distinct sets of collections, numbered. When visibility depends only on collections
 * (`SearchOptions.byCollections`), `canSee` is asked once per set, not once per asset.
 */
class CollectionSets {
  #ids = new Map<string, number>();
  /** An asset with that set, to ask `canSee` about. */
  representative: AssetRecord[] = [];
  /** Live assets with that set. */
  count: number[] = [];

  add(asset: AssetRecord): number {
    const key = [...asset.collections].sort().join('\u0000');
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.representative.length;
      this.#ids.set(key, id);
      this.count.push(0);
    }
    this.representative[id] = asset;
    this.count[id] = (this.count[id] ?? 0) + 1;
    return id;
  }

  release(id: number): void {
    this.count[id] = (this.count[id] ?? 1) - 1;
  }
}

interface SortedView {
  /** Slots in ascending order of the key (ties by id), as of the last sort. */
  items: number[];
  /** Slots written or removed since the last sort (repeats allowed). */
  changed: number[];
  /** Set after a rebuild: `items` is in no order at all. */
  unsorted: boolean;
}

/** Assets given to MiniSearch per slice when the text index is built in the background. */
const BACKGROUND_CHUNK = 500;
/**
 * After a background build, the BM25 values of the terms in at least this share of the library
 * (and at least `WARM_MIN_DOCUMENTS` assets) are computed ahead of their first query.
 */
const WARM_SHARE = 1 / 100;
const WARM_MIN_DOCUMENTS = 500;
/** Up to this many slots changed, a view is mended one slot at a time. */
const MOVE_ONE_BY_ONE = 8;
/** Below this share of the library, a list filter's assets are sorted rather than a view walked. */
const CANDIDATE_SHARE = 1 / 8;

export class SearchIndex {
  #slotOf = new Map<string, number>();
  #entries: Array<Entry | undefined> = [];
  #free: number[] = [];
  #nextSlot = 0;
  #columns = new Columns();
  #sets = new CollectionSets();
  #formats = new Map<string, number>();
  #postings: Record<ListFacet, Map<string, Set<number>>> = { collection: new Map(), creator: new Map(), keyword: new Map() };
  #text = new FullText<Entry>();
  /** Entries not yet given to MiniSearch (a background build is under way). */
  #textBacklog: Entry[] = [];
  #views: Record<SortKey, SortedView> = { created: emptyView(), updated: emptyView(), title: emptyView() };

  /** Number of live (not deleted) assets in the index. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Postings whose BM25 values the full-text index keeps (reports and tests). */
  get keptPostings(): number {
    return this.#text.keptPostings;
  }

  /** Replaces the whole index with these assets (tombstones are skipped). */
  rebuild(assets: Iterable<AssetRecord>): void {
    const live = this.#reset(assets);
    this.#text.addAll(live);
  }

  /**
   * Like `rebuild`, but fills the full-text index in slices between other work, so that a
   * large catalog is searchable by filters at once. A full-text search that comes before the
   * end finishes the build first. Resolves when the full-text index is complete.
   */
  async rebuildInBackground(assets: Iterable<AssetRecord>): Promise<void> {
    this.#textBacklog = this.#reset(assets);
    const text = this.#text;
    while (this.#textBacklog.length > 0 && text === this.#text) {
      await new Promise((resolve) => setImmediate(resolve));
      this.#drainText(BACKGROUND_CHUNK);
    }
    if (text === this.#text) this.warming = this.#warmCommonTerms(text);
  }

  /**
   * Set once a background build is complete: resolves when the common terms are warm (their
   * BM25 values kept, see `#warmCommonTerms`), or when a rebuild made that moot.
   */
  warming: Promise<void> = Promise.resolve();

  /**
   * Computes the kept BM25 values of the library's common terms now, one term per turn of the
   * event loop, instead of at the first query of each (a common word costs MiniSearch about
   * 1 µs per matching asset: tens of milliseconds at 100,000 assets). Each term is queried as a
   * user would type it alone (prefix and fuzzy variants included), so its neighbours warm too.
   * Stops when the index is rebuilt; kept values stay bounded by `FullText`'s budget.
   */
  async #warmCommonTerms(text: FullText<Entry>): Promise<void> {
    const pause = () => new Promise((resolve) => setImmediate(resolve));
    const counts = new Map<string, number>();
    let seen = 0;
    for (const entry of this.#entries) {
      if (entry === undefined) continue;
      for (const term of documentTerms(entry)) counts.set(term, (counts.get(term) ?? 0) + 1);
      if (++seen % BACKGROUND_CHUNK === 0) {
        await pause();
        if (text !== this.#text) return;
      }
    }
    const least = Math.max(WARM_MIN_DOCUMENTS, this.size * WARM_SHARE);
    const common = [...counts].filter(([, n]) => n >= least).sort((a, b) => b[1] - a[1]);
    for (const [term] of common) {
      await pause();
      if (text !== this.#text) return;
      text.matches(term, this.#nextSlot);
    }
  }

  /** Empties the index and fills everything but the full-text index; returns the live entries. */
  #reset(assets: Iterable<AssetRecord>): Entry[] {
    this.#slotOf = new Map();
    this.#entries = [];
    this.#free = [];
    this.#nextSlot = 0;
    this.#columns = new Columns();
    this.#sets = new CollectionSets();
    this.#formats = new Map();
    this.#postings = { collection: new Map(), creator: new Map(), keyword: new Map() };
    for (const asset of assets) {
      if (!asset.deleted) this.#place(asset);
    }
    const live = this.#entries.filter((e): e is Entry => e !== undefined);
    this.#text = new FullText<Entry>();
    this.#textBacklog = [];
    const slots = live.map((e) => e.slot);
    this.#views = {
      created: { items: slots, changed: [], unsorted: true },
      updated: { items: [...slots], changed: [], unsorted: true },
      title: { items: [...slots], changed: [], unsorted: true },
    };
    return live;
  }

  /** Gives MiniSearch up to `count` entries of the backlog (those still current). */
  #drainText(count = Infinity): void {
    const batch = this.#textBacklog.splice(0, count).filter((e) => this.#entries[e.slot] === e && !this.#text.has(e.slot));
    if (batch.length === 0) return;
    this.#text.addAll(batch);
    this.#text.clear(); // (nothing is kept before the build ends: a full-text search drains it first)
  }

  /** Adds or replaces an asset; a deleted asset (a tombstone) is removed. */
  upsert(asset: AssetRecord): void {
    if (asset.deleted) {
      this.remove(asset.id);
      return;
    }
    const known = this.#slotOf.get(asset.id);
    const previous = known === undefined ? undefined : this.#entries[known];
    const entry = this.#place(asset);
    // A write that leaves every text field as it was (collections, dates, rights...) leaves
    // the document MiniSearch holds as it was too: it keeps it, and its statistics with it.
    const sameText =
      previous !== undefined &&
      this.#text.has(entry.slot) &&
      previous.filename === entry.filename &&
      previous.version === entry.version &&
      previous.metadata === entry.metadata;
    if (!sameText) {
      if (previous !== undefined && this.#text.has(entry.slot)) this.#text.discard(previous);
      this.#text.add(entry);
      this.#text.forget(entry);
    }
    for (const view of Object.values(this.#views)) view.changed.push(entry.slot);
  }

  remove(id: string): void {
    const slot = this.#slotOf.get(id);
    if (slot === undefined) return;
    const entry = this.#entries[slot] as Entry;
    this.#unplace(slot);
    this.#slotOf.delete(id);
    this.#entries[slot] = undefined;
    this.#free.push(slot);
    if (this.#text.has(slot)) this.#text.discard(entry);
    for (const view of Object.values(this.#views)) view.changed.push(slot);
  }

  search(query: SearchQuery, options: SearchOptions): SearchResult {
    const normal = normalizeQuery(query);
    const offset = query.cursor === undefined ? 0 : decodeCursor(query.cursor, normal.hash);
    const limit = clampLimit(query.limit, options.maxLimit);
    const nothing = page([], offset, 0, normal.hash);

    // List facets (collection, creator, keyword) are answered by their postings.
    const lists: Array<Set<number>> = [];
    for (const facet of ['collection', 'creator', 'keyword'] as const) {
      const value = normal[facet];
      if (value === undefined) continue;
      const slots = this.#postings[facet].get(value);
      if (!slots) return nothing;
      lists.push(slots);
    }
    const format = normal.format === undefined ? undefined : this.#formats.get(normal.format);
    if (normal.format !== undefined && format === undefined) return nothing;
    const columns = columnFilter(normal, this.#columns, format, options.now ?? Date.now());
    const visibility = this.#visibility(options);

    if (normal.q !== undefined) {
      const accept = acceptor(columns, lists.map((l) => this.#marks(l)), visibility.slot);
      return this.#textPage(normal.q, normal.sort, accept, offset, limit, normal.hash);
    }

    const sort = normal.sort === 'relevance' ? '-updated' : normal.sort;
    const key = sort.replace('-', '') as SortKey;
    const descending = sort.startsWith('-');
    const items = this.#sorted(key);

    // A selective list filter: sort its few assets by their rank instead of walking the view.
    const smallest = lists.reduce<Set<number> | undefined>((a, b) => (a && a.size <= b.size ? a : b), undefined);
    if (smallest && smallest.size < items.length * CANDIDATE_SHARE) {
      const others = lists.filter((l) => l !== smallest).map((l) => this.#marks(l));
      const accept = acceptor(columns, others, visibility.slot);
      const ranks = this.#columns.ranks[key];
      const found: number[] = [];
      for (const slot of smallest) if (accept(slot)) found.push(slot);
      found.sort(descending ? (a, b) => (ranks[b] as number) - (ranks[a] as number) : (a, b) => (ranks[a] as number) - (ranks[b] as number));
      return this.#collect(found, false, () => true, offset, limit, normal.hash);
    }

    // No filter at all and visibility by collections: the total is known without a walk,
    // so stop once the page is full.
    if (lists.length === 0 && columns === undefined && visibility.count) {
      const total = visibility.count();
      const ids: string[] = [];
      const { ids: idOf } = this.#columns;
      let seen = 0;
      const n = items.length;
      for (let k = 0; k < n && ids.length < limit; k++) {
        const slot = items[descending ? n - 1 - k : k] as number;
        if (!visibility.slot(slot)) continue;
        if (seen++ >= offset) ids.push(idOf[slot] as string);
      }
      return page(ids, offset, total, normal.hash);
    }

    const accept = acceptor(columns, lists.map((l) => this.#marks(l)), visibility.slot);
    return this.#collect(items, descending, accept, offset, limit, normal.hash);
  }

  /** Walks slots in order (or backwards), counting every accepted one and keeping the page. */
  #collect(items: number[], descending: boolean, accept: (slot: number) => boolean, offset: number, limit: number, hash: string): SearchResult {
    const { ids: idOf } = this.#columns;
    const ids: string[] = [];
    const end = offset + limit;
    let total = 0;
    const n = items.length;
    for (let k = 0; k < n; k++) {
      const slot = items[descending ? n - 1 - k : k] as number;
      if (!accept(slot)) continue;
      if (total >= offset && total < end) ids.push(idOf[slot] as string);
      total++;
    }
    return page(ids, offset, total, hash);
  }

  /** A byte per slot, set for the slots in `slots`. */
  #marks(slots: Set<number>): Uint8Array {
    const marks = new Uint8Array(this.#nextSlot);
    for (const slot of slots) marks[slot] = 1;
    return marks;
  }

  /**
   * Whether the caller sees a slot; with `byCollections`, also how many live assets it sees
   * in all (from the count per set of collections).
   */
  #visibility(options: SearchOptions): { slot: (slot: number) => boolean; count?: () => number } {
    const { canSee } = options;
    if (!options.byCollections) {
      const entries = this.#entries;
      return { slot: (slot) => canSee((entries[slot] as Entry).asset) };
    }
    const { representative, count } = this.#sets;
    const known = new Int8Array(representative.length).fill(-1);
    const setVisible = (set: number): boolean => {
      let v = known[set] as number;
      if (v < 0) {
        v = canSee(representative[set] as AssetRecord) ? 1 : 0;
        known[set] = v;
      }
      return v === 1;
    };
    const sets = this.#columns.collectionSet;
    return {
      slot: (slot) => setVisible(sets[slot] as number),
      count: () => {
        let total = 0;
        for (let set = 0; set < count.length; set++) {
          const n = count[set] as number;
          if (n > 0 && setVisible(set)) total += n;
        }
        return total;
      },
    };
  }

  /**
   * A page of the full-text matches of q that `accept` takes, in `sort` order, with their count.
   * By relevance, the order is MiniSearch's (descending score, ties in the order it meets the
   * assets); by another key, the view's.
   */
  #textPage(q: string, sort: SearchSort, accept: (slot: number) => boolean, offset: number, limit: number, hash: string): SearchResult {
    if (this.#textBacklog.length > 0) this.#drainText();
    const matches = this.#text.matches(q, this.#nextSlot);
    if (sort === 'relevance') return this.#bestPage(matches, accept, offset, limit, hash);
    const key = sort.replace('-', '') as SortKey;
    const descending = sort.startsWith('-');
    const view = this.#sorted(key); // also brings the ranks up to date
    const { slots } = matches;
    if (slots.length * 16 <= view.length) {
      // Few matches: sorting them by rank beats a walk through the view.
      const ranks = this.#columns.ranks[key];
      const found: number[] = [];
      for (const slot of slots) if (accept(slot)) found.push(slot);
      found.sort(descending ? (a, b) => (ranks[b] as number) - (ranks[a] as number) : (a, b) => (ranks[a] as number) - (ranks[b] as number));
      return this.#collect(found, false, () => true, offset, limit, hash);
    }
    const marked = new Uint8Array(this.#nextSlot);
    for (const slot of slots) marked[slot] = 1;
    return this.#collect(view, descending, (slot) => marked[slot] === 1 && accept(slot), offset, limit, hash);
  }

  /**
   * The page `[offset, offset + limit)` of the accepted matches by descending score (ties in
   * match order, as MiniSearch's stable sort leaves them), with their count: the best
   * `offset + limit` are kept in a heap, so a page costs a walk, not a sort of every match.
   */
  #bestPage(matches: TextMatches, accept: (slot: number) => boolean, offset: number, limit: number, hash: string): SearchResult {
    const { slots, scores } = matches;
    const keep = offset + limit;
    // Position a ranks before position b.
    const before = (a: number, b: number): boolean => {
      const x = scores[a] as number;
      const y = scores[b] as number;
      return x > y || (x === y && a < b);
    };
    const heap: number[] = []; // the worst kept position at the root
    let total = 0;
    const n = slots.length;
    for (let k = 0; k < n; k++) {
      if (!accept(slots[k] as number)) continue;
      total++;
      if (heap.length < keep) {
        let i = heap.length;
        heap.push(k);
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (!before(heap[parent] as number, k)) break;
          heap[i] = heap[parent] as number;
          i = parent;
        }
        heap[i] = k;
      } else if (keep > 0 && before(k, heap[0] as number)) {
        let i = 0;
        const size = heap.length;
        for (;;) {
          const left = 2 * i + 1;
          if (left >= size) break;
          const right = left + 1;
          const worse = right < size && before(heap[left] as number, heap[right] as number) ? right : left;
          if (!before(k, heap[worse] as number)) break;
          heap[i] = heap[worse] as number;
          i = worse;
        }
        heap[i] = k;
      }
    }
    heap.sort((a, b) => (before(a, b) ? -1 : 1));
    const { ids: idOf } = this.#columns;
    const ids: string[] = [];
    for (let r = offset; r < heap.length; r++) ids.push(idOf[slots[heap[r] as number] as number] as string);
    return page(ids, offset, total, hash);
  }

  /**
   * The view sorted by `key`, brought up to date first if writes changed it: a handful of
   * changed slots are moved one by one (binary search), more are taken out, sorted and merged
   * back in (linear); many, or a rebuild, mean a full sort.
   */
  #sorted(key: SortKey): number[] {
    const view = this.#views[key];
    if (!view.unsorted && view.changed.length === 0) return view.items;
    const { alive } = this.#columns;
    const compare = this.#comparator(key);
    const ranks = this.#columns.ranks[key];
    if (!view.unsorted && view.changed.length <= MOVE_ONE_BY_ONE) {
      for (const slot of new Set(view.changed)) this.#move(view.items, ranks, slot, compare);
      view.changed = [];
      return view.items;
    }
    let items: number[];
    if (view.unsorted || view.changed.length > view.items.length / 32) {
      // A removed asset's slot may have been reused, so a slot can be listed twice.
      const seen = new Uint8Array(this.#nextSlot);
      items = [];
      for (const list of [view.items, view.changed]) {
        for (const slot of list) {
          if (alive[slot] && !seen[slot]) {
            seen[slot] = 1;
            items.push(slot);
          }
        }
      }
      items.sort(compare);
    } else {
      const moved = new Uint8Array(this.#nextSlot);
      for (const slot of view.changed) moved[slot] = 1;
      const changed = [...new Set(view.changed)].filter((slot) => alive[slot]).sort(compare);
      items = [];
      let c = 0;
      for (const slot of view.items) {
        if (moved[slot]) continue;
        while (c < changed.length && compare(changed[c] as number, slot) < 0) items.push(changed[c++] as number);
        items.push(slot);
      }
      while (c < changed.length) items.push(changed[c++] as number);
    }
    for (let i = 0; i < items.length; i++) ranks[items[i] as number] = i;
    view.items = items;
    view.changed = [];
    view.unsorted = false;
    return items;
  }

  /**
   * Takes a slot out of a sorted view (if its rank says it is there: a new slot is not, a
   * reused one still sits where its previous asset was) and puts it back in its place if alive.
   * Ranks are kept exact for every slot in the view.
   */
  #move(items: number[], ranks: Int32Array, slot: number, compare: (a: number, b: number) => number): void {
    const old = ranks[slot] as number;
    if (items[old] === slot) {
      items.splice(old, 1);
      for (let i = old; i < items.length; i++) ranks[items[i] as number] = i;
    }
    if (!this.#columns.alive[slot]) return;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(items[mid] as number, slot) < 0) lo = mid + 1;
      else hi = mid;
    }
    items.splice(lo, 0, slot);
    for (let i = lo; i < items.length; i++) ranks[items[i] as number] = i;
  }

  /** Ascending by the key, then by id, so every order is total and pages are stable. */
  #comparator(key: SortKey): (a: number, b: number) => number {
    const { ids, titles } = this.#columns;
    const byId = (a: number, b: number): number => {
      const x = ids[a] as string;
      const y = ids[b] as string;
      return x < y ? -1 : x > y ? 1 : 0;
    };
    if (key === 'title') {
      return (a, b) => {
        const x = titles[a] as string;
        const y = titles[b] as string;
        return x < y ? -1 : x > y ? 1 : byId(a, b);
      };
    }
    const values = this.#columns[key];
    return (a, b) => (values[a] as number) - (values[b] as number) || byId(a, b);
  }

  /** Gives the asset a slot (its own if it has one) and fills its row and postings. */
  #place(asset: AssetRecord): Entry {
    let slot = this.#slotOf.get(asset.id);
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#nextSlot++;
      this.#columns.ensure(this.#nextSlot);
      this.#slotOf.set(asset.id, slot);
    } else {
      this.#unplace(slot);
    }
    const version = asset.versions[asset.versions.length - 1];
    const metadata = version?.metadata ?? {};
    const entry: Entry = {
      slot,
      asset,
      filename: asset.filename,
      version,
      metadata: version?.metadata,
      collections: asset.collections.map((c) => c.toLowerCase()),
      creators: listOf(metadata.creator),
      keywords: listOf(metadata.keywords),
    };
    this.#entries[slot] = entry;
    this.#post('collection', entry.collections, slot);
    this.#post('creator', entry.creators, slot);
    this.#post('keyword', entry.keywords, slot);

    const c = this.#columns;
    c.alive[slot] = 1;
    c.ids[slot] = asset.id;
    c.titles[slot] = sortKeyOf(textOf(metadata.title) || asset.filename);
    c.created[slot] = Date.parse(asset.created) || 0;
    c.updated[slot] = Date.parse(asset.updated) || 0;
    c.licenseEnd[slot] = licenseEndOf(metadata.licenseEndDate);
    c.doNotDistribute[slot] = textOf(metadata.usageTerms).toLowerCase().includes('do not distribute') ? 1 : 0;
    c.orientation[slot] = orientationCodeOf(version?.width, version?.height);
    c.collectionSet[slot] = this.#sets.add(asset);
    const format = version ? formatOf(version.mediaType) : '';
    let formatId = this.#formats.get(format);
    if (formatId === undefined) {
      formatId = this.#formats.size;
      this.#formats.set(format, formatId);
    }
    c.format[slot] = formatId;
    return entry;
  }

  /** Takes a slot out of the postings and set counts (its row is overwritten or left dead). */
  #unplace(slot: number): void {
    const entry = this.#entries[slot];
    if (!entry) return;
    this.#unpost('collection', entry.collections, slot);
    this.#unpost('creator', entry.creators, slot);
    this.#unpost('keyword', entry.keywords, slot);
    this.#sets.release(this.#columns.collectionSet[slot] as number);
    this.#columns.alive[slot] = 0;
  }

  #post(facet: ListFacet, values: string[], slot: number): void {
    const postings = this.#postings[facet];
    for (const value of values) {
      let slots = postings.get(value);
      if (!slots) {
        slots = new Set();
        postings.set(value, slots);
      }
      slots.add(slot);
    }
  }

  #unpost(facet: ListFacet, values: string[], slot: number): void {
    const postings = this.#postings[facet];
    for (const value of values) {
      const slots = postings.get(value);
      if (!slots) continue;
      slots.delete(slot);
      if (slots.size === 0) postings.delete(value);
    }
  }
}

/** Every condition on one slot, cheapest first. */
function acceptor(columns: ((slot: number) => boolean) | undefined, marks: Uint8Array[], visible: (slot: number) => boolean): (slot: number) => boolean {
  const m = marks.length;
  return (slot) => {
    if (columns !== undefined && !columns(slot)) return false;
    for (let i = 0; i < m; i++) if ((marks[i] as Uint8Array)[slot] === 0) return false;
    return visible(slot);
  };
}

/**
 * The filters answered by columns, or undefined when there are none. Without `now`, the
 * rights filter is left out.
 */
function columnFilter(query: NormalQuery, c: Columns, format: number | undefined, now: number | undefined): ((slot: number) => boolean) | undefined {
  const { createdAfter, createdBefore } = query;
  const rights = now === undefined ? undefined : query.rights;
  const orientation = query.orientation === undefined ? 0 : ORIENTATION_CODES[query.orientation];
  if (format === undefined && createdAfter === undefined && createdBefore === undefined && orientation === 0 && rights === undefined) {
    return undefined;
  }
  const { format: formats, created, orientation: orientations, licenseEnd, doNotDistribute } = c;
  return (slot) => {
    if (format !== undefined && formats[slot] !== format) return false;
    if (createdAfter !== undefined && (created[slot] as number) < createdAfter) return false;
    if (createdBefore !== undefined && (created[slot] as number) >= createdBefore) return false;
    if (orientation !== 0 && orientations[slot] !== orientation) return false;
    if (rights !== undefined) {
      const expired = (licenseEnd[slot] as number) <= (now as number);
      if (rights === 'expired') return expired;
      const restricted = expired || doNotDistribute[slot] === 1;
      return rights === 'restricted' ? restricted : !restricted;
    }
    return true;
  };
}

function emptyView(): SortedView {
  return { items: [], changed: [], unsorted: false };
}

function page(ids: string[], offset: number, total: number, hash: string): SearchResult {
  const nextOffset = offset + ids.length;
  const next = ids.length > 0 && nextOffset < total ? encodeCursor(nextOffset, hash) : null;
  return { ids, next, total };
}

function clampLimit(limit: number | undefined, maxLimit: number): number {
  const max = Math.max(1, Math.floor(maxLimit));
  if (limit === undefined || !Number.isFinite(limit)) return Math.min(DEFAULT_LIMIT, max);
  return Math.min(Math.max(Math.floor(limit), 1), max);
}

// ---------------------------------------------------------------------------------------------
// Entries

function metadataOf(asset: AssetRecord): AssetMetadata {
  return asset.versions[asset.versions.length - 1]?.metadata ?? {};
}

function listOf(value: AssetMetadata[string] | undefined): string[] {
  if (Array.isArray(value)) return value.map((v) => v.toLowerCase());
  if (typeof value === 'string' && value !== '') return [value.toLowerCase()];
  return [];
}

/** 'image/jpeg; q=1' → 'jpeg'; aliases folded ('jpg' → 'jpeg', 'tif' → 'tiff'). */
export function formatOf(mediaTypeOrFormat: string): string {
  const subtype = (mediaTypeOrFormat.split(';')[0] ?? '').split('/').pop() ?? '';
  const format = subtype.trim().toLowerCase();
  return FORMAT_ALIASES[format] ?? format;
}

function orientationCodeOf(width: number | undefined, height: number | undefined): number {
  if (!width || !height) return 0;
  return ORIENTATION_CODES[width > height ? 'landscape' : width < height ? 'portrait' : 'square'];
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/**
 * When the licence is over, in ms: a date-only end date ('2025-06-30') covers that whole day
 * (UTC), so the licence ends at the following midnight. Infinity when absent or unreadable.
 */
function licenseEndOf(value: AssetMetadata[string] | undefined): number {
  if (typeof value !== 'string') return Infinity;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return Infinity;
  return DATE_ONLY.test(value) ? ms + DAY_MS : ms;
}

function sortKeyOf(title: string): string {
  return foldTerm(title.trim());
}

// ---------------------------------------------------------------------------------------------
// Queries

interface NormalQuery {
  q: string | undefined;
  collection: string | undefined;
  creator: string | undefined;
  keyword: string | undefined;
  format: string | undefined;
  createdAfter: number | undefined;
  createdBefore: number | undefined;
  orientation: Orientation | undefined;
  rights: RightsFilter | undefined;
  sort: SearchSort;
  /** Short hash of everything above: what a cursor is bound to. */
  hash: string;
}

function lowerOrUndefined(value: string | undefined): string | undefined {
  const v = value?.trim().toLowerCase();
  return v ? v : undefined;
}

/** Folds case, accents and spaces, checks what the type alone cannot, and hashes the result. */
function normalizeQuery(query: SearchQuery): NormalQuery {
  const q = foldTerm(query.q?.trim().replace(/\s+/g, ' ') ?? '') || undefined;
  const check = <T extends string>(name: string, value: T | undefined, allowed: readonly T[]): T | undefined => {
    if (value !== undefined && !allowed.includes(value)) throw invalid(name, `one of ${allowed.join(', ')}`);
    return value;
  };
  const dateOf = (name: 'createdAfter' | 'createdBefore'): number | undefined => {
    const value = query[name];
    if (value === undefined || value === '') return undefined;
    const ms = parseIsoDate(value);
    if (ms === undefined) throw invalid(name, 'an ISO 8601 date or date-time');
    return ms;
  };
  const format = lowerOrUndefined(query.format);
  const fields = {
    q,
    collection: lowerOrUndefined(query.collection),
    creator: lowerOrUndefined(query.creator),
    keyword: lowerOrUndefined(query.keyword),
    format: format === undefined ? undefined : formatOf(format),
    createdAfter: dateOf('createdAfter'),
    createdBefore: dateOf('createdBefore'),
    orientation: check('orientation', query.orientation, ORIENTATIONS),
    rights: check('rights', query.rights, RIGHTS_FILTERS),
    sort: check('sort', query.sort, SORTS) ?? (q === undefined ? '-updated' : 'relevance'),
  };
  const hash = createHash('sha256').update(JSON.stringify(fields)).digest('base64url').slice(0, 10);
  return { ...fields, hash };
}

// ---------------------------------------------------------------------------------------------
// Cursors: base64url(JSON {o: offset, h: query hash})

function encodeCursor(offset: number, hash: string): string {
  return Buffer.from(JSON.stringify({ o: offset, h: hash })).toString('base64url');
}

function decodeCursor(cursor: string, hash: string): number {
  let decoded: unknown;
  try {
    if (cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (cause) {
    throw new ProtocolError('ERR_BAD_REQUEST', 'malformed cursor', { cause });
  }
  const { o, h } = (typeof decoded === 'object' && decoded !== null ? decoded : {}) as Record<string, unknown>;
  if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0 || typeof h !== 'string') {
    throw new ProtocolError('ERR_BAD_REQUEST', 'malformed cursor');
  }
  if (h !== hash) {
    throw new ProtocolError('ERR_BAD_REQUEST', 'cursor belongs to another query (q, filters and sort must not change)');
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Query-string input

/**
 * `YYYY-MM-DD`, or an RFC 3339 date-time with a `Z` or ±hh:mm offset (a date-time without
 * one would depend on the server's time zone).
 */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;

function parseIsoDate(value: string): number | undefined {
  if (!ISO_DATE.test(value)) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return undefined;
  // Date.parse rolls 2024-02-30 over to March; a real date round-trips.
  if (new Date(Date.parse(value.slice(0, 10))).toISOString().slice(0, 10) !== value.slice(0, 10)) return undefined;
  return ms;
}

function invalid(name: string, expected: string): ProtocolError {
  return new ProtocolError('ERR_VALIDATION', `invalid query parameter "${name}": expected ${expected}`, {
    extensions: { parameter: name },
  });
}

const MAX_FILTER_LENGTH = 500;

/**
 * Validates search parameters from a query string. Every value must be a string (a repeated
 * parameter is an error); empty values count as absent; unknown parameters are ignored so
 * the route can read its own.
 *
 * @example
 *   parseSearchQuery({ q: 'harbour', format: 'jpg', sort: '-created', limit: '20' });
 */
export function parseSearchQuery(raw: Record<string, unknown>): SearchQuery {
  const text = (name: string, maxLength: number): string | undefined => {
    const value = raw[name];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw invalid(name, 'a single string');
    if (value.length > maxLength) throw invalid(name, `at most ${maxLength} characters`);
    return value;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const value = text(name, 50);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) throw invalid(name, `one of ${allowed.join(', ')}`);
    return value as T;
  };
  const date = (name: string): string | undefined => {
    const value = text(name, 40);
    if (value !== undefined && parseIsoDate(value) === undefined) throw invalid(name, 'an ISO 8601 date or date-time');
    return value;
  };

  const query: SearchQuery = {};
  const set = <K extends keyof SearchQuery>(key: K, value: SearchQuery[K] | undefined): void => {
    if (value !== undefined) query[key] = value;
  };
  set('q', text('q', MAX_Q_LENGTH));
  set('collection', text('collection', MAX_FILTER_LENGTH));
  set('creator', text('creator', MAX_FILTER_LENGTH));
  set('keyword', text('keyword', MAX_FILTER_LENGTH));
  const format = text('format', 50);
  if (format !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.+-]*$/.test(format)) throw invalid('format', 'a media subtype such as jpeg');
  set('format', format);
  set('createdAfter', date('createdAfter'));
  set('createdBefore', date('createdBefore'));
  set('orientation', oneOf('orientation', ORIENTATIONS));
  set('rights', oneOf('rights', RIGHTS_FILTERS));
  set('sort', oneOf('sort', SORTS));
  const limit = raw.limit;
  if (typeof limit === 'number') {
    if (!Number.isSafeInteger(limit)) throw invalid('limit', 'an integer');
    query.limit = limit;
  } else {
    const value = text('limit', 12);
    if (value !== undefined) {
      if (!/^-?\d+$/.test(value)) throw invalid('limit', 'an integer');
      query.limit = Number(value);
    }
  }
  set('cursor', text('cursor', 1000));
  return query;
}
