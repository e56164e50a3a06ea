/**
 * Benchmark of the library search index at 100,000 assets.
 *
 *   node --import tsx test/bench/search.bench.ts [assetCount]
 *
 * Measures, on synthetic but deterministic data (seeded generator, word lists):
 * (c) catalog load as at start: JSON.parse of a catalog file of that size (written to the temp
 *     directory, deleted after) and (a) the index built from it, both synchronously and with
 *     the full-text part in the background (`rebuildInBackground`);
 * (b) p50/p95/p99 of 500 varied searches after a warm-up: text, text + filter, prefix, typos,
 *     filter-only, sorts, deep pages through cursors; half as an admin, half as a member with
 *     grants on 4 collections in 5 (both `byCollections`), with one untimed edit every 20
 *     searches; then 100 more as that member without `byCollections`, reported apart.
 * Wall time and CPU time are both reported: on a busy machine the second is the one to trust.
 * The live heap is read after a full garbage collection (after the searches, and at the end).
 * Prints tables and one `BENCH {...}` JSON line.
 */
import { performance } from 'node:perf_hooks';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AssetRecord, CatalogData } from '../../companion/library/records.ts';
import { SearchIndex, type SearchOptions, type SearchQuery } from '../../companion/library/search-index.ts';
import { ADJECTIVES, COLLECTIONS, EXTRA_KEYWORDS, SETTINGS, SUBJECTS, generateAssets, mulberry32 } from './synthetic-assets.ts';

const ASSETS = Number(process.argv[2] ?? 100_000);
const SEARCHES = 500;
const WARMUP = 100;
const GENERIC_SEARCHES = 100;
const MAX_LIMIT = 200;

// A full garbage collection before each heap reading, so that it counts what is live, not what
// happens to be uncollected (outside the timed searches).
setFlagsFromString('--expose-gc');
const gc = (global.gc ?? runInNewContext('gc')) as () => void;
function heapMbNow(): number {
  gc();
  return Math.round(process.memoryUsage().heapUsed / 1e6);
}

// ---------------------------------------------------------------------------------------------
// Queries

type Kind = 'text' | 'text-2' | 'prefix' | 'fuzzy' | 'filter' | 'filter-2' | 'text+filter' | 'sort' | 'text+sort' | 'deep' | 'list';

interface Probe {
  kind: Kind;
  query: SearchQuery;
  /** Follow this many cursors, timing each page. */
  pages?: number;
  /** admin sees all; member has grants on 4 collections in 5; member-generic is member without `byCollections` (measured apart). */
  viewer: 'admin' | 'member' | 'member-generic';
}

function probes(count: number, seed: number, assets: AssetRecord[], genericViewer = false): Probe[] {
  const random = mulberry32(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  const creatorOf = () => String((pick(assets).versions.at(-1)?.metadata.creator as string[])[0]);
  const word = () => pick([...SUBJECTS, ...EXTRA_KEYWORDS, ...SETTINGS, ...ADJECTIVES]);
  const typo = (w: string) => {
    const k = 1 + int(w.length - 2);
    return w.slice(0, k) + w.slice(k + 1);
  };
  const date = () => new Date(Date.parse('2015-01-01') + int(10 * 365) * 86_400_000).toISOString().slice(0, 10);
  const filter = (): SearchQuery =>
    pick<() => SearchQuery>([
      () => ({ collection: pick(COLLECTIONS) }),
      () => ({ creator: creatorOf() }),
      () => ({ keyword: pick(EXTRA_KEYWORDS) }),
      () => ({ format: pick(['jpg', 'png', 'tif', 'webp']) }),
      () => ({ orientation: pick(['landscape', 'portrait', 'square'] as const) }),
      () => ({ rights: pick(['unrestricted', 'restricted', 'expired'] as const) }),
      () => ({ createdAfter: date() }),
      () => ({ createdAfter: '2018-01-01', createdBefore: date() }),
    ])();
  const sort = () => pick(['created', '-created', 'updated', '-updated', 'title', '-title'] as const);
  const list: Probe[] = [];
  for (let i = 0; i < count; i++) {
    const viewer = genericViewer ? 'member-generic' : random() < 0.5 ? 'admin' : 'member';
    // Deep probes time ten pages each, so they are drawn less often.
    const kind = random() < 0.05 ? 'deep' : pick<Kind>(['text', 'text-2', 'prefix', 'fuzzy', 'filter', 'filter-2', 'text+filter', 'sort', 'text+sort', 'list']);
    const limit = pick([20, 50, 50, 100]);
    const make: Record<Kind, () => Omit<Probe, 'viewer'>> = {
      text: () => ({ kind, query: { q: word(), limit } }),
      'text-2': () => ({ kind, query: { q: `${word()} ${word()}`, limit } }),
      prefix: () => ({ kind, query: { q: word().slice(0, 2 + int(3)), limit } }),
      fuzzy: () => ({ kind, query: { q: typo(pick(SUBJECTS.filter((w) => w.length >= 5))), limit } }),
      filter: () => ({ kind, query: { ...filter(), limit } }),
      'filter-2': () => ({ kind, query: { ...filter(), ...filter(), sort: sort(), limit } }),
      'text+filter': () => ({ kind, query: { q: word(), ...filter(), limit } }),
      sort: () => ({ kind, query: { sort: sort(), limit } }),
      'text+sort': () => ({ kind, query: { q: word(), sort: sort(), limit } }),
      deep: () => ({ kind, query: random() < 0.5 ? { q: word(), limit: 100 } : { ...filter(), sort: sort(), limit: 100 }, pages: 10 }),
      list: () => ({ kind, query: { limit } }),
    };
    list.push({ ...make[kind](), viewer });
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Run

const ms = (n: number) => Math.round(n * 100) / 100;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const value = fn();
  return [value, performance.now() - t0];
}

const [generated, generateMs] = time(() => generateAssets(ASSETS));

// (c) Catalog load, as at start: write a catalog file, drop everything, parse it and build the
// index from it. This index then serves the searches.
const file = join(tmpdir(), `imagine-search-bench-${process.pid}.json`);
let fileBytes = 0;
try {
  const catalog: CatalogData = { schemaVersion: 1, assets: generated, collections: [], users: [], tokens: [], changes: [], nextSeq: 1 };
  const text = JSON.stringify(catalog);
  fileBytes = Buffer.byteLength(text);
  writeFileSync(file, text);
} finally {
  generated.length = 0;
}
global.gc?.();
let parseMs = 0;
let buildMs = 0;
let assets: AssetRecord[] = [];
const index = new SearchIndex();
try {
  const raw = readFileSync(file, 'utf8');
  const [parsed, took] = time(() => JSON.parse(raw) as CatalogData);
  parseMs = took;
  assets = parsed.assets;
  // (a) Build the index.
  [, buildMs] = time(() => index.rebuild(assets));
} finally {
  rmSync(file, { force: true });
}
const [, firstSortMs] = time(() => index.search({ sort: 'title', limit: 1 }, { canSee: () => true, maxLimit: MAX_LIMIT }));
for (const sort of ['created', 'updated'] as const) index.search({ sort, limit: 1 }, { canSee: () => true, maxLimit: MAX_LIMIT });

// Visibility as the companion computes it: per-collection grants (an admin sees everything).
const granted = new Set(COLLECTIONS.filter((_, i) => i % 5 !== 0));
const admin: SearchOptions = { canSee: () => true, byCollections: true, maxLimit: MAX_LIMIT };
const member: SearchOptions = { canSee: (a) => a.collections.some((c) => granted.has(c)), byCollections: true, maxLimit: MAX_LIMIT };
const memberGeneric: SearchOptions = { ...member, byCollections: false };

interface Sample {
  kind: Kind;
  viewer: Probe['viewer'];
  ms: number;
  /** CPU time of the process during the search: wall time minus waiting for a busy machine. */
  cpuMs: number;
  total: number;
}

function runProbe(probe: Probe, samples: Sample[]): void {
  const options = probe.viewer === 'admin' ? admin : probe.viewer === 'member' ? member : memberGeneric;
  let cursor: string | undefined;
  for (let p = 0; p < (probe.pages ?? 1); p++) {
    const cpu = process.cpuUsage();
    const [result, took] = time(() => index.search({ ...probe.query, ...(cursor ? { cursor } : {}) }, options));
    const used = process.cpuUsage(cpu);
    samples.push({ kind: probe.kind, viewer: probe.viewer, ms: took, cpuMs: (used.user + used.system) / 1000, total: result.total });
    if (!result.next) break;
    cursor = result.next;
  }
}

// (b) Searches, with an edit every WRITE_EVERY searches (untimed): each one clears the cached
// full-text results and makes the sorted views re-sort on the next query that needs them.
const WRITE_EVERY = 20;
const writer = mulberry32(99);
function edit(): void {
  const asset = assets[Math.floor(writer() * assets.length)] as AssetRecord;
  index.upsert({ ...asset, updated: new Date(Date.parse('2025-06-01') + Math.floor(writer() * 1e9)).toISOString() });
}
for (const probe of probes(WARMUP, 7, assets)) runProbe(probe, []);
const samples: Sample[] = [];
let sinceWrite = 0;
for (const probe of probes(SEARCHES, 1234, assets)) {
  const before = samples.length;
  runProbe(probe, samples);
  sinceWrite += samples.length - before;
  if (sinceWrite >= WRITE_EVERY) {
    edit();
    sinceWrite = 0;
  }
  if (samples.length >= SEARCHES) break;
}
samples.length = Math.min(samples.length, SEARCHES);

// The same kinds of searches without `byCollections`: canSee asked of every candidate asset.
const genericSamples: Sample[] = [];
for (const probe of probes(GENERIC_SEARCHES, 4321, assets, true)) {
  runProbe(probe, genericSamples);
  if (genericSamples.length >= GENERIC_SEARCHES) break;
}

// The cost of the lazy re-sort: the first sorted query after a burst of writes.
const edited = assets.slice(0, 100).map((a) => ({ ...a, updated: new Date().toISOString() }));
const [, upsertMs] = time(() => edited.forEach((a) => index.upsert(a)));
const [, resortMs] = time(() => index.search({ sort: '-updated' }, admin));

// Live heap with the library, its index and whatever the searches left in it (kept BM25 values),
// read after every timed search and before the index is rebuilt below.
const heapAfterSearchesMb = heapMbNow();

// Catalog load with the full-text index built in the background: time until filter searches
// are served, and until the full-text index is complete.
const [backgroundDone, backgroundReadyMs] = time(() => index.rebuildInBackground(assets));
const backgroundStart = performance.now() - backgroundReadyMs;
await backgroundDone;
const backgroundCompleteMs = performance.now() - backgroundStart;
// Then the server warms the common terms (their BM25 values, one term per turn of the event
// loop); the same searches once more, as a server that has finished starting answers them.
await index.warming;
const warmCompleteMs = performance.now() - backgroundStart;
const warmSamples: Sample[] = [];
sinceWrite = 0;
for (const probe of probes(SEARCHES, 1234, assets)) {
  const before = warmSamples.length;
  runProbe(probe, warmSamples);
  sinceWrite += warmSamples.length - before;
  if (sinceWrite >= WRITE_EVERY) {
    edit();
    sinceWrite = 0;
  }
  if (warmSamples.length >= SEARCHES) break;
}
warmSamples.length = Math.min(warmSamples.length, SEARCHES);

// ---------------------------------------------------------------------------------------------
// Report

function stats(list: Sample[]) {
  const sorted = list.map((s) => s.ms).sort((a, b) => a - b);
  const cpu = list.map((s) => s.cpuMs).sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: ms(quantile(sorted, 0.5)),
    p95: ms(quantile(sorted, 0.95)),
    p99: ms(quantile(sorted, 0.99)),
    max: ms(sorted.at(-1) ?? NaN),
    cpuP95: ms(quantile(cpu, 0.95)),
  };
}

const overall = stats(samples);
const byKind = Object.fromEntries(
  [...new Set(samples.map((s) => s.kind))].sort().map((kind) => [kind, stats(samples.filter((s) => s.kind === kind))]),
);
const textKinds = new Set<Kind>(['text', 'text-2', 'prefix', 'fuzzy', 'text+filter', 'text+sort']);
const byGroup = {
  'full text': stats(samples.filter((s) => textKinds.has(s.kind))),
  'no text': stats(samples.filter((s) => !textKinds.has(s.kind) && s.kind !== 'deep')),
  'deep pages': stats(samples.filter((s) => s.kind === 'deep')),
};
const byViewer = {
  admin: stats(samples.filter((s) => s.viewer === 'admin')),
  member: stats(samples.filter((s) => s.viewer === 'member')),
  'member without byCollections': stats(genericSamples),
};
const heapMb = heapMbNow();

console.log(`search index benchmark: ${ASSETS} assets (${index.size} live), ${samples.length} timed searches, node ${process.version}`);
console.table({
  'generate data': { ms: ms(generateMs) },
  'catalog JSON.parse': { ms: ms(parseMs), MB: Math.round(fileBytes / 1e6) },
  'build index': { ms: ms(buildMs) },
  'catalog load (parse + build)': { ms: ms(parseMs + buildMs) },
  'first title sort': { ms: ms(firstSortMs) },
  'background: filters served': { ms: ms(parseMs + backgroundReadyMs) },
  'background: full text ready': { ms: ms(parseMs + backgroundCompleteMs) },
  'background: common terms warm': { ms: ms(parseMs + warmCompleteMs) },
  '100 upserts': { ms: ms(upsertMs) },
  'next query (re-sort)': { ms: ms(resortMs) },
});
console.log(`live heap after a full GC: ${heapAfterSearchesMb} MB after the searches, ${heapMb} MB at the end (index rebuilt)`);
console.table({ all: overall, ...byKind });
const warm = stats(warmSamples);
console.log(`after start-up warming (${index.keptPostings} postings kept), the same ${warmSamples.length} searches:`);
console.table({ all: warm, ...Object.fromEntries([...new Set(warmSamples.map((s) => s.kind))].sort().map((kind) => [kind, stats(warmSamples.filter((s) => s.kind === kind))])) });
console.table(byViewer);
console.table(byGroup);
console.log(
  'BENCH ' +
    JSON.stringify({
      assets: ASSETS,
      searches: samples.length,
      buildMs: ms(buildMs),
      search: overall,
      searchWarm: warm,
      byKind,
      byViewer,
      byGroup,
      catalog: {
        mb: Math.round(fileBytes / 1e6),
        parseMs: ms(parseMs),
        loadMs: ms(parseMs + buildMs),
        backgroundServingMs: ms(parseMs + backgroundReadyMs),
        backgroundCompleteMs: ms(parseMs + backgroundCompleteMs),
        warmCompleteMs: ms(parseMs + warmCompleteMs),
      },
      upsert100Ms: ms(upsertMs),
      resortMs: ms(resortMs),
      heapMb,
      heapAfterSearchesMb,
    }),
);
