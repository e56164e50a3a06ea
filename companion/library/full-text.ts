/**
 * The full-text part of the library's search: MiniSearch (BM25, prefix and fuzzy matching),
 * with MiniSearch's own scores kept per index term between queries.
 *
 * MiniSearch scores a query term by walking the postings of every index term it derives from
 * it (the term itself, the terms it is a prefix of, the terms within its edit distance) and
 * adding, per document and field, `termWeight × termBoost × fieldBoost × docBoost × bm25`,
 * where `bm25` depends only on the index term, the field and the document. Building a result
 * object per match is most of the cost of a common term (tens of milliseconds at 100,000
 * assets). So this module lets MiniSearch run its query as usual (`executeQuerySpec`: same
 * expansion, same weights) but intercepts its per-index-term step (`termResults`):
 * - the first time an index term is met, MiniSearch itself computes its BM25 values (one call
 *   per field, with every weight 1, into a collector that keeps them in two typed arrays,
 *   slot and value, in MiniSearch's own order: about 12 bytes per posting);
 * - every time, the weighted sum is replayed from those arrays with MiniSearch's expression and
 *   order of operations, so scores are bit for bit those of `MiniSearch#search`, and the order
 *   in which documents are first met (which breaks ties in its stable sort) is the same.
 * Terms are then combined with AND (sum of the query terms' scores, in order, times the number
 * of distinct terms), as MiniSearch's `AND` combinator and `search` do. Once few assets are left
 * in the AND, an index term not kept yet is scored by MiniSearch for those assets only (and not
 * kept); a query term repeated in q is scored once.
 *
 * The kept values are dropped for every index term of a document whose text a write changes
 * (old and new text), so the postings are always exact; the values of other terms stay, though
 * the write moved the document count and average field lengths a little: they are computed
 * afresh after `MAX_KEPT_WRITES` text writes, so a score never drifts far from a fresh one.
 * The matches of the last few queries are remembered until the next text write.
 *
 * This relies on two undocumented methods of MiniSearch 7.2 (`executeQuerySpec`, `termResults`):
 * loading fails if they are gone, and `full-text.test.ts` compares every kind of query with
 * plain `MiniSearch#search`, bit for bit, so a change in their behaviour fails the tests.
 *
 * @example
 *   const text = new FullText<Entry>();
 *   text.addAll(entries);
 *   const { slots, scores } = text.matches('harbour at dus', capacity); // sort by score, stably
 *   text.discard(old); text.add(next); text.forget(next); // an edit of the text
 */
import MiniSearch, { type SearchOptions as MiniSearchOptions } from 'minisearch';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';

/** What the full-text index reads of an asset: its slot, file name and current metadata. */
export interface TextDocument {
  slot: number;
  filename: string;
  metadata: AssetMetadata | undefined;
}

export const TEXT_FIELDS = ['title', 'description', 'keywords', 'creator', 'creditLine', 'filename', 'headline'];
const BOOST = { title: 3, keywords: 2 };

/**
 * The last term is a prefix only from this length: 'ha' would expand to every term starting
 * with it and match a third of a large library, at MiniSearch's cost per match.
 */
export const MIN_PREFIX_LENGTH = 3;
/**
 * Below this share of the library left in the AND (fewer than 1 asset in 8), an index term
 * whose values are not kept is scored by MiniSearch for those assets only, and not kept:
 * a query of many rare or unrelated terms does not compute every term in full.
 */
const NARROW_SHARE = 8;
/** Queries whose matches are remembered until the next text write. */
const RECENT_QUERIES = 16;
/** Text writes after which kept BM25 values are computed again. */
const MAX_KEPT_WRITES = 1000;
/** Postings kept at most (12 bytes each): about 48 MB. The least recently used terms go first. */
const MAX_KEPT_POSTINGS = 4_000_000;

/** Fuzziness of a query term: terms of four letters or more allow 20 % of edits. */
export function fuzzinessOf(term: string): number | false {
  return term.length >= 4 ? 0.2 : false;
}

const tokenize = MiniSearch.getDefault('tokenize') as (text: string) => string[];

/** The terms MiniSearch makes of a query, in order (as `executeQuery` does: tokenize, process, drop empty). */
export function queryTerms(q: string): string[] {
  return tokenize(q).flatMap((term) => processTerm(term) ?? []).filter((term) => term !== '');
}

const NON_ASCII = /[^\u0000-\u007f]/;

/** Lower case with accents stripped, so 'eclat' finds 'Éclat' and 'Valparaíso' 'valparaiso'. */
export function foldTerm(term: string): string {
  const lower = term.toLowerCase();
  return NON_ASCII.test(lower) ? lower.normalize('NFD').replace(/\p{M}/gu, '') : lower;
}

/**
 * English function words, left out of the index and of queries: with terms combined by AND,
 * "harbour at dusk" must not require "at", and "the" alone would be a posting per asset.
 */
const STOP_WORDS = new Set(
  'a an and are as at be but by for from in into is it its of on or the to with'.split(' '),
);

export function processTerm(term: string): string | null {
  const folded = foldTerm(term);
  return STOP_WORDS.has(folded) ? null : folded;
}

export function textOf(value: AssetMetadata[string] | undefined): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.join(' ');
  return String(value);
}

function fieldText(doc: TextDocument, field: string): string {
  if (field === 'filename') return doc.filename;
  return textOf(doc.metadata?.[field]);
}

/** The index terms of a document, as MiniSearch makes them when it adds it. */
export function documentTerms(doc: TextDocument): Set<string> {
  const terms = new Set<string>();
  for (const field of TEXT_FIELDS) {
    for (const token of tokenize(fieldText(doc, field))) {
      const term = processTerm(token);
      if (term) terms.add(term);
    }
  }
  return terms;
}

/** MiniSearch options of the library: AND, boosts title 3 / keywords 2, prefix and fuzzy as above. */
export function newMiniSearch<D extends TextDocument>(): MiniSearch<D> {
  return new MiniSearch<D>({
    idField: 'slot',
    fields: TEXT_FIELDS,
    storeFields: [],
    processTerm,
    extractField: (doc, field) => (field === 'slot' ? doc.slot : fieldText(doc, field)),
    searchOptions: {
      combineWith: 'AND',
      boost: BOOST,
      prefix: (term, i, terms) => i === terms.length - 1 && term.length >= MIN_PREFIX_LENGTH,
      fuzzy: fuzzinessOf,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// MiniSearch 7.2 internals

/** One query term as MiniSearch's `executeQuery` makes it (`termToQuerySpec`). */
interface QuerySpec {
  term: string;
  prefix: boolean;
  fuzzy: number | false;
  termBoost: number;
}

type FieldTermData = Map<number, Map<number, number>>;

/** The part of a MiniSearch result entry that `termResults` reads and writes. */
interface RawResult {
  score: number;
  terms: string[];
  match: Record<string, { push(field: string): unknown }>;
}

interface ResultMap {
  get(docId: number): RawResult | undefined;
  set(docId: number, result: RawResult): unknown;
}

type BoostDocument = (id: unknown, term: string, storedFields?: Record<string, unknown>) => number;

type TermResults = (
  this: unknown,
  sourceTerm: string,
  derivedTerm: string,
  termWeight: number,
  termBoost: number,
  fieldTermData: FieldTermData | undefined,
  fieldBoosts: Record<string, number>,
  boostDocument: BoostDocument | undefined,
  bm25params: unknown,
  results?: ResultMap,
) => ResultMap;

const internals = MiniSearch.prototype as unknown as {
  termResults?: TermResults;
  executeQuerySpec?: (this: unknown, spec: QuerySpec, options: MiniSearchOptions) => unknown;
};
if (typeof internals.termResults !== 'function' || typeof internals.executeQuerySpec !== 'function') {
  throw new Error('minisearch: termResults/executeQuerySpec not found; full-text.ts is written for MiniSearch 7.2');
}
const termResults: TermResults = internals.termResults;
const executeQuerySpec = internals.executeQuerySpec;

/** MiniSearch's BM25 values of one index term, per field (in `TEXT_FIELDS` order). */
interface TermValues {
  slots: Array<Int32Array | undefined>;
  values: Array<Float64Array | undefined>;
  /** Postings in all fields. */
  size: number;
  /** `FullText.#textWrites` when computed. */
  madeAt: number;
}

const NOOP_MATCH = { push: () => 0 };

// ---------------------------------------------------------------------------------------------

/** Matches of a query, before filters: slots in MiniSearch's tie order, with their final scores. */
export interface TextMatches {
  slots: Int32Array;
  scores: Float64Array;
}

/** Per-slot working arrays of `matches`, reused between queries; `tag` tells stale entries apart. */
interface Scratch {
  /** Score of the current query term. */
  termScore: Float64Array;
  /** Sum over the query terms so far. */
  total: Float64Array;
  /** `tag` of the query term that last met the slot. */
  seen: Uint32Array;
  /** `tag` of the last query term the slot matched (still in the AND). */
  alive: Uint32Array;
  tag: number;
}

const NO_MATCHES: TextMatches = { slots: new Int32Array(0), scores: new Float64Array(0) };

/** The query term being scored by `FullText#matches`. */
interface CurrentTerm {
  /** Stamp of this query term in `Scratch.seen`. */
  tag: number;
  /** Whether it is the first query term (no AND yet). */
  first: boolean;
  /** Slots met, in the order MiniSearch meets them. */
  met: number[];
  /** Few assets are left in the AND: an index term not kept yet is scored live for them only. */
  narrow: boolean;
}

/** MiniSearch over the library's documents, with its BM25 values kept per index term. */
export class FullText<D extends TextDocument> {
  readonly miniSearch: MiniSearch<D> = newMiniSearch<D>();
  #kept = new Map<string, TermValues>();
  #keptPostings = 0;
  #textWrites = 0;
  /** Set while `matches` runs a query term through MiniSearch. */
  #current: CurrentTerm | undefined;
  #scratchArrays: Scratch = { termScore: new Float64Array(0), total: new Float64Array(0), seen: new Uint32Array(0), alive: new Uint32Array(0), tag: 0 };
  /** The last queries' matches, valid while no text was written (following pages, other filters). */
  #recent = new Map<string, { matches: TextMatches; textWrites: number }>();

  constructor() {
    const self = this;
    // MiniSearch calls `termResults` once per index term derived from a query term; during
    // `matches`, this instance answers from the kept values instead.
    Object.defineProperty(this.miniSearch, 'termResults', {
      value: function (this: unknown, ...args: Parameters<TermResults>): ResultMap {
        const current = self.#current;
        if (current === undefined || args[6] !== undefined) return termResults.apply(this, args);
        const [, derivedTerm, termWeight, termBoost, fieldTermData, fieldBoosts, , bm25params, results] = args;
        if (fieldTermData != null) {
          if (current.narrow && !self.#kept.has(derivedTerm)) {
            self.#scoreLive(current, args);
          } else {
            self.#replayTerm(current, derivedTerm, termWeight, termBoost, fieldTermData, fieldBoosts, bm25params);
          }
        }
        return results ?? new Map();
      },
    });
  }

  has(slot: number): boolean {
    return this.miniSearch.has(slot);
  }

  add(doc: D): void {
    this.miniSearch.add(doc);
  }

  addAll(docs: readonly D[]): void {
    this.miniSearch.addAll(docs);
  }

  /**
   * Takes a document out (lazily, as MiniSearch does) and forgets the kept values of its terms.
   * Every change of text goes through here: an edit is a `discard` then an `add`, whose terms
   * are then forgotten by `forget`.
   */
  discard(doc: D): void {
    this.miniSearch.discard(doc.slot);
    this.forget(doc);
  }

  /** Forgets the kept values of every term of this document's text (call after adding it). */
  forget(doc: TextDocument): void {
    this.#textWrites++;
    this.#recent.clear();
    if (this.#kept.size === 0) return;
    for (const term of documentTerms(doc)) this.#drop(term);
  }

  /** Forgets every kept value (the index was replaced). */
  clear(): void {
    this.#textWrites++;
    this.#recent.clear();
    this.#kept.clear();
    this.#keptPostings = 0;
  }

  /** Postings whose BM25 values are kept (for tests and reports). */
  get keptPostings(): number {
    return this.#keptPostings;
  }

  /** Plain MiniSearch search (no kept values). */
  search(q: string, options?: MiniSearchOptions): ReturnType<MiniSearch<D>['search']> {
    return this.miniSearch.search(q, options);
  }

  /**
   * The documents matching every term of q, with the scores and in the order (before sorting
   * by score) that `MiniSearch#search` gives them: sorting by descending score, stably, gives
   * its result list.
   *
   * `capacity` bounds the slots (the caller's next free slot).
   */
  matches(q: string, capacity: number): TextMatches {
    const recent = this.#recent.get(q);
    if (recent !== undefined && recent.textWrites === this.#textWrites) return recent.matches;
    const matches = this.#match(q, capacity);
    this.#recent.set(q, { matches, textWrites: this.#textWrites });
    if (this.#recent.size > RECENT_QUERIES) this.#recent.delete(this.#recent.keys().next().value as string);
    return matches;
  }

  #match(q: string, capacity: number): TextMatches {
    const terms = queryTerms(q);
    if (terms.length === 0) return NO_MATCHES;
    const scratch = this.#scratch(capacity);
    const { termScore, total, alive } = scratch;
    const documents = this.miniSearch.documentCount;
    /** Query terms met before in q (same term, same prefix option): their slots and scores. */
    const done = new Map<string, { slots: number[]; scores: number[] }>();
    let order: number[] = [];
    for (let i = 0; i < terms.length; i++) {
      const term = terms[i] as string;
      const prefix = i === terms.length - 1 && term.length >= MIN_PREFIX_LENGTH;
      const key = `${prefix ? 'p' : 'e'}${term}`;
      const tag = ++scratch.tag;
      const first = i === 0;
      const current: CurrentTerm = { tag, first, met: [], narrow: !first && order.length * NARROW_SHARE < documents };
      const again = done.get(key);
      if (again !== undefined) {
        // A repeated term scores as it did: only the assets still in the AND are taken.
        for (let k = 0; k < again.slots.length; k++) {
          const slot = again.slots[k] as number;
          if (!first && alive[slot] !== tag - 1) continue;
          termScore[slot] = again.scores[k] as number;
          current.met.push(slot);
        }
      } else {
        // One query term, as `executeQuery` makes and scores it: its own sum per document.
        this.#current = current;
        try {
          executeQuerySpec.call(this.miniSearch, { term, prefix, fuzzy: fuzzinessOf(term), termBoost: 1 }, {});
        } finally {
          this.#current = undefined;
        }
        if (terms.indexOf(term, i + 1) >= 0) done.set(key, { slots: current.met, scores: current.met.map((slot) => termScore[slot] as number) });
      }
      // AND, as MiniSearch's combinator: the sum so far plus this term's, in this term's order.
      for (const slot of current.met) {
        total[slot] = first ? (termScore[slot] as number) : (total[slot] as number) + (termScore[slot] as number);
        alive[slot] = tag;
      }
      order = current.met;
      if (order.length === 0) return NO_MATCHES;
    }
    // `search` multiplies by the number of distinct query terms matched: all of them, with AND.
    const quality = new Set(terms).size;
    const slots = Int32Array.from(order);
    const scores = new Float64Array(slots.length);
    for (let k = 0; k < slots.length; k++) scores[k] = (total[slots[k] as number] as number) * quality;
    return { slots, scores };
  }

  #scratch(capacity: number): Scratch {
    const s = this.#scratchArrays;
    if (s.termScore.length < capacity || s.tag > 0xf0000000) {
      const n = Math.max(capacity, s.termScore.length * 2, 1024);
      this.#scratchArrays = { termScore: new Float64Array(n), total: new Float64Array(n), seen: new Uint32Array(n), alive: new Uint32Array(n), tag: 0 };
    }
    return this.#scratchArrays;
  }

  /**
   * MiniSearch's own `termResults` for the assets still in the AND only (a `boostDocument` of
   * 0 skips the others before scoring), into the scratch arrays; nothing is kept. The score of
   * an asset is the same as from kept values: its `docBoost` is 1 either way.
   */
  #scoreLive(current: CurrentTerm, args: Parameters<TermResults>): void {
    const [sourceTerm, derivedTerm, termWeight, termBoost, fieldTermData, fieldBoosts, , bm25params] = args;
    const { termScore, seen, alive } = this.#scratchArrays;
    const { tag, met } = current;
    const previous = tag - 1;
    let slot = 0;
    const entry: RawResult = {
      get score() {
        return seen[slot] === tag ? (termScore[slot] as number) : 0;
      },
      set score(value: number) {
        if (seen[slot] !== tag) {
          seen[slot] = tag;
          met.push(slot);
        }
        termScore[slot] = value;
      },
      terms: [sourceTerm],
      match: { [derivedTerm]: NOOP_MATCH },
    };
    const collector: ResultMap = {
      get: () => entry,
      set: () => {
        throw new Error('unexpected');
      },
    };
    const inAnd: BoostDocument = (id) => {
      slot = id as number;
      return alive[slot] === previous ? 1 : 0;
    };
    termResults.call(this.miniSearch, sourceTerm, derivedTerm, termWeight, termBoost, fieldTermData, fieldBoosts, inAnd, bm25params, collector);
  }

  /** Replays MiniSearch's weighted sum for one index term (see `termResults`) into the scratch arrays. */
  #replayTerm(
    current: CurrentTerm,
    derivedTerm: string,
    termWeight: number,
    termBoost: number,
    fieldTermData: FieldTermData,
    fieldBoosts: Record<string, number>,
    bm25params: unknown,
  ): void {
    const kept = this.#valuesOf(derivedTerm, fieldTermData, bm25params);
    const { termScore, seen, alive } = this.#scratchArrays;
    const { tag, first, met } = current;
    const previous = tag - 1;
    for (const field of Object.keys(fieldBoosts)) {
      const f = TEXT_FIELDS.indexOf(field);
      const slots = kept.slots[f];
      const values = kept.values[f];
      if (slots === undefined || values === undefined) continue;
      // MiniSearch: termWeight * termBoost * fieldBoost * docBoost * rawScore, left to right, docBoost 1.
      const weight = termWeight * termBoost * (fieldBoosts[field] as number) * 1;
      const n = slots.length;
      for (let k = 0; k < n; k++) {
        const slot = slots[k] as number;
        if (!first && alive[slot] !== previous) continue; // already out of the AND
        const weighted = weight * (values[k] as number);
        if (seen[slot] !== tag) {
          seen[slot] = tag;
          termScore[slot] = weighted;
          met.push(slot);
        } else {
          termScore[slot] = (termScore[slot] as number) + weighted;
        }
      }
    }
  }

  /** The kept BM25 values of an index term, computed by MiniSearch when missing or old. */
  #valuesOf(term: string, fieldTermData: FieldTermData, bm25params: unknown): TermValues {
    const kept = this.#kept.get(term);
    if (kept !== undefined && this.#textWrites - kept.madeAt <= MAX_KEPT_WRITES) {
      this.#kept.delete(term);
      this.#kept.set(term, kept);
      return kept;
    }
    if (kept !== undefined) this.#drop(term);
    const values = this.#compute(term, fieldTermData, bm25params);
    this.#kept.set(term, values);
    this.#keptPostings += values.size;
    for (const [oldest, old] of this.#kept) {
      if (this.#keptPostings <= MAX_KEPT_POSTINGS || oldest === term) break;
      this.#kept.delete(oldest);
      this.#keptPostings -= old.size;
    }
    return values;
  }

  /**
   * MiniSearch's BM25 value of every posting of an index term: `termResults` for one field at
   * a time with every weight 1, into a result map that records instead of building objects.
   */
  #compute(term: string, fieldTermData: FieldTermData, bm25params: unknown): TermValues {
    let slot = 0;
    const slots: number[] = [];
    const values: number[] = [];
    const entry: RawResult = {
      get score() {
        return 0;
      },
      set score(value: number) {
        slots.push(slot);
        values.push(value);
      },
      terms: [term],
      match: { [term]: NOOP_MATCH },
    };
    const collector: ResultMap = {
      get: () => entry,
      set: () => {
        throw new Error('unexpected');
      },
    };
    const noteSlot: BoostDocument = (id) => {
      slot = id as number;
      return 1;
    };
    const kept: TermValues = { slots: [], values: [], size: 0, madeAt: this.#textWrites };
    // Postings of removed documents are taken out by `termResults` as it meets them, and the
    // documents met before in that field were scored with the old count: computed again on
    // clean postings, the values are those every later MiniSearch search gives.
    const postings = (): number => {
      let n = 0;
      for (const freqs of fieldTermData.values()) n += freqs.size;
      return n;
    };
    const before = postings();
    for (let f = 0; f < TEXT_FIELDS.length; f++) {
      slots.length = 0;
      values.length = 0;
      termResults.call(this.miniSearch, term, term, 1, 1, fieldTermData, { [TEXT_FIELDS[f] as string]: 1 }, noteSlot, bm25params, collector);
      if (slots.length === 0) continue;
      kept.slots[f] = Int32Array.from(slots);
      kept.values[f] = Float64Array.from(values);
      kept.size += slots.length;
    }
    if (postings() !== before) return this.#compute(term, fieldTermData, bm25params);
    return kept;
  }

  #drop(term: string): void {
    const kept = this.#kept.get(term);
    if (kept === undefined) return;
    this.#kept.delete(term);
    this.#keptPostings -= kept.size;
  }
}
