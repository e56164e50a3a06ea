/**
 * `npm run bench:mirror`: the offline mirror's targets (issue 9), measured on this machine.
 *
 *  1. initial sync: a library server (`imagine serve --role library`, a child process) with
 *     BENCH_MIRROR_ASSETS (default 2,000) small ingested JPEGs; the agent's mirror (in this
 *     process) syncs it: assets/s for the metadata, and with the grid thumbnails fetched;
 *  2. 100 changes (50 metadata edits, 25 deletions, 25 uploads) made through the API: the time
 *     one sync run takes to apply them, and the time from the last change until the mirror
 *     matches the server with the scheduler polling every second;
 *  3. local search at 100,000 mirrored assets (synthetic records in a mirror store, no server):
 *     the store's load time, the index build, and p50/p95/p99 of 500 varied searches (text,
 *     prefix, typos, filters, sorts, deep pages) — target p95 <= 20 ms.
 *
 * Results are printed and written into docs/benchmarks.md between the mirror markers.
 * Options: BENCH_SKIP=sync,search to skip sections; BENCH_MIRROR_ASSETS; BENCH_MIRROR_SEARCH_ASSETS.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ProtocolClient } from '../../shared/client.ts';
import type { Asset, SearchQuery } from '../../shared/schemas/asset.ts';
import { loadConfig } from '../../companion/config.ts';
import { endExiftool } from '../../companion/metadata/exiftool.ts';
import { ingestFiles, listFiles } from '../../companion/library/ingest.ts';
import { libraryServicesOptions, openLibraryServices } from '../../companion/library/services.ts';
import { presentAsset } from '../../companion/library/present.ts';
import { openAgentServices } from '../../companion/agent/services.ts';
import { Mirror } from '../../companion/agent/mirror/mirror.ts';
import { MirrorStore } from '../../companion/agent/mirror/store.ts';
import { LocalIndex } from '../../companion/agent/mirror/local-index.ts';
import { ADJECTIVES, COLLECTIONS, EXTRA_KEYWORDS, SETTINGS, SUBJECTS, generateAssets, mulberry32 } from './synthetic-assets.ts';
import { writeBenchSection } from './bench-doc.ts';
import { startLibraryProcess } from './library-process.ts';

const skip = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));
const SYNC_ASSETS = Number(process.env.BENCH_MIRROR_ASSETS ?? 2000);
const SEARCH_ASSETS = Number(process.env.BENCH_MIRROR_SEARCH_ASSETS ?? 100_000);
const results: Array<{ section: string; metric: string; value: string; target: string; ok: boolean | null }> = [];

function record(section: string, metric: string, value: string, target = '', ok: boolean | null = null) {
  results.push({ section, metric, value, target, ok });
  console.log(`${section.padEnd(8)} ${metric.padEnd(62)} ${value.padStart(16)}  ${target}${ok === null ? '' : ok ? '  ✓' : '  ✗'}`);
}

const work = await mkdtemp(join(tmpdir(), 'imagine-mirror-bench-'));
const loadBefore = loadavg()[0]!;
const children: ChildProcess[] = [];

async function startLibraryServer(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const server = await startLibraryProcess(dataDir);
  children.push(server.child);
  return server;
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function benchSync() {
  // A library of small JPEGs (thumbnails are made at ingest, as in real use).
  const images = join(work, 'images');
  await mkdir(images, { recursive: true });
  for (let i = 0; i < SYNC_ASSETS; i++) {
    const background = { r: i % 256, g: (i * 7) % 256, b: ((i >> 8) * 53) % 256 };
    await sharp({ create: { width: 64, height: 48, channels: 3, background } }).jpeg({ quality: 80 }).toFile(join(images, `${SUBJECTS[i % SUBJECTS.length]}-${i}.jpg`));
  }
  const libDir = join(work, 'library');
  const libConfig = loadConfig({ flags: { dataDir: libDir }, readFile: false });
  const services = await openLibraryServices(libraryServicesOptions(libConfig, 'mirror bench'));
  let token: string;
  try {
    const summary = await ingestFiles(services.library, await listFiles([images]), { concurrency: 2 });
    if (summary.failed > 0) throw new Error(`${summary.failed} files failed to ingest`);
    await services.auth.addUser({ name: 'admin', admin: true });
    token = (await services.auth.createToken('admin')).token;
  } finally {
    await services.close();
    await endExiftool();
  }
  const server = await startLibraryServer(libDir);
  const client = new ProtocolClient({ origin: server.url, fetch, token });
  const live = (await client.search({ limit: 1 })).total ?? 0;

  const agentDir = join(work, 'agent');
  const agentConfig = loadConfig({ flags: { dataDir: agentDir, role: 'agent', port: 0 }, readFile: false });
  const agent = await openAgentServices(agentConfig);
  try {
    const mirror = agent.mirror as Mirror;
    const connection = await agent.connect({ url: server.url, token });
    const t0 = performance.now();
    const status = await mirror.syncNow(connection.id, { wait: true });
    const metadataSeconds = (performance.now() - t0) / 1000;
    if (status.assets !== live) throw new Error(`mirrored ${status.assets} of ${live} assets: ${JSON.stringify(status.lastError)}`);
    await mirror.thumbnailsIdle(connection.id);
    const totalSeconds = (performance.now() - t0) / 1000;
    const thumbs = mirror.statusOf(connection.id).thumbnails;
    record('sync', `initial sync, metadata only (${live} assets, loopback)`, `${(live / metadataSeconds).toFixed(0)} assets/s`);
    record('sync', `initial sync with grid thumbnails (${thumbs.cached} fetched)`, `${(live / totalSeconds).toFixed(0)} assets/s`);

    // 100 changes while the agent is idle, then one sync run.
    const assets = [...(await client.search({ limit: 200, sort: 'created' })).items];
    const makeChanges = async (offset: number) => {
      for (const asset of assets.slice(offset, offset + 50)) {
        await client.editMetadata(asset.id, { title: `Edited ${asset.filename}` }, { baseVersion: asset.currentVersion });
      }
      for (const asset of assets.slice(offset + 50, offset + 75)) await client.deleteAsset(asset.id);
      for (let i = 0; i < 25; i++) {
        const body = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: offset, g: i, b: 7 } } }).jpeg().toBuffer();
        await client.createAsset(body, { filename: `new-${offset}-${i}.jpg`, contentType: 'image/jpeg' });
      }
    };
    await makeChanges(0);
    const t1 = performance.now();
    await mirror.syncNow(connection.id, { wait: true });
    record('changes', '100 changes applied by one sync run (feed + re-fetch)', `${(performance.now() - t1).toFixed(0)} ms`);

    // The same, with the scheduler polling every second: from the last change to convergence.
    await agent.close();
    const polled = await openAgentServices(loadConfig({ flags: { dataDir: agentDir, role: 'agent', port: 0, syncIntervalSeconds: 1 }, readFile: false }));
    try {
      const pollMirror = polled.mirror as Mirror;
      pollMirror.start();
      await pollMirror.syncNow(connection.id, { wait: true });
      const second = [...(await client.search({ limit: 200, sort: 'created' })).items];
      assets.splice(0, assets.length, ...second);
      await makeChanges(0);
      const t2 = performance.now();
      const expected = new Map([...(await serverIds(client))].map((a) => [a.id, a.currentVersion]));
      await until(async () => {
        const page = await pollMirror.search(connection.id, { limit: 1 });
        if (page?.total !== expected.size) return false;
        for (const [id, version] of expected) if ((await pollMirror.getAsset(connection.id, id))?.currentVersion !== version) return false;
        return true;
      }, 60_000);
      const lastChangeToMirror = performance.now() - t2;
      record('changes', '100 changes: last change → mirror converged (polling every 1 s)', `${lastChangeToMirror.toFixed(0)} ms`, '<= poll interval + one run');
    } finally {
      await polled.close();
    }
  } finally {
    await agent.close().catch(() => undefined);
    server.child.kill('SIGTERM');
  }
}

async function serverIds(client: ProtocolClient): Promise<Asset[]> {
  const out: Asset[] = [];
  for await (const asset of client.searchAll({ limit: 200 })) out.push(asset);
  return out;
}

// --- local search at 100,000 -------------------------------------------------------------------

function probes(count: number, seed: number, assets: Asset[]): Array<{ query: SearchQuery; pages: number }> {
  const random = mulberry32(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  const word = () => pick([...SUBJECTS, ...EXTRA_KEYWORDS, ...SETTINGS, ...ADJECTIVES]);
  const typo = (w: string) => {
    const k = 1 + int(w.length - 2);
    return w.slice(0, k) + w.slice(k + 1);
  };
  const date = () => new Date(Date.parse('2015-01-01') + int(10 * 365) * 86_400_000).toISOString().slice(0, 10);
  const filter = (): SearchQuery =>
    pick<() => SearchQuery>([
      () => ({ collection: pick(COLLECTIONS) }),
      () => ({ creator: String((pick(assets).metadata.creator as string[])[0]) }),
      () => ({ keyword: pick(EXTRA_KEYWORDS) }),
      () => ({ format: pick(['jpg', 'png', 'tif', 'webp']) }),
      () => ({ orientation: pick(['landscape', 'portrait', 'square'] as const) }),
      () => ({ rights: pick(['unrestricted', 'restricted', 'expired'] as const) }),
      () => ({ createdAfter: date() }),
    ])();
  const sort = () => pick(['created', '-created', 'updated', '-updated', 'title', '-title'] as const);
  const out: Array<{ query: SearchQuery; pages: number }> = [];
  for (let i = 0; i < count; i++) {
    const limit = pick([20, 50, 50, 100]);
    const kind = random() < 0.05 ? 'deep' : pick(['text', 'text-2', 'prefix', 'fuzzy', 'filter', 'text+filter', 'sort', 'text+sort', 'list']);
    const query: SearchQuery = {
      text: { q: word(), limit },
      'text-2': { q: `${word()} ${word()}`, limit },
      prefix: { q: word().slice(0, 2 + int(3)), limit },
      fuzzy: { q: typo(pick(SUBJECTS.filter((w) => w.length >= 5))), limit },
      filter: { ...filter(), sort: sort(), limit },
      'text+filter': { q: word(), ...filter(), limit },
      sort: { sort: sort(), limit },
      'text+sort': { q: word(), sort: sort(), limit },
      list: { limit },
      deep: random() < 0.5 ? { q: word(), limit: 100 } : { ...filter(), sort: sort(), limit: 100 },
    }[kind as 'text']!;
    out.push({ query, pages: kind === 'deep' ? 10 : 1 });
  }
  return out;
}

async function benchLocalSearch() {
  const origin = 'https://images.example';
  const ctx = { origin, apiBase: `${origin}/api/v1`, iiifBase: `${origin}/iiif` };
  const dir = join(work, 'search-store');
  {
    const store = await MirrorStore.open(dir);
    const records = generateAssets(SEARCH_ASSETS).filter((a) => !a.deleted);
    for (let i = 0; i < records.length; i += 5000) {
      const batch = records.slice(i, i + 5000).map((r) => presentAsset(r, ctx));
      await store.apply({ put: batch, state: { ...store.state, cursor: String(i), lastSync: new Date().toISOString() } });
    }
    await store.compact();
    await store.close();
  }
  const t0 = performance.now();
  const store = await MirrorStore.open(dir);
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  const index = new LocalIndex(store);
  const filtersMs = performance.now() - t1;
  await index.ready;
  const fullMs = performance.now() - t1;
  record('search', `mirror store load, ${store.size} assets (${(store.bytesOnDisk / 1024 ** 2).toFixed(0)} MiB)`, `${(loadMs / 1000).toFixed(2)} s`);
  record('search', 'local index: filters ready / full text complete', `${(filtersMs / 1000).toFixed(2)} / ${(fullMs / 1000).toFixed(2)} s`);

  const assets = [...store.assets()];
  const run = (list: ReturnType<typeof probes>, samples: number[] | undefined) => {
    for (const { query, pages } of list) {
      let cursor: string | undefined;
      for (let p = 0; p < pages; p++) {
        const t = performance.now();
        const page = index.search({ ...query, cursor });
        samples?.push(performance.now() - t);
        if (!page.next) break;
        cursor = page.next;
      }
    }
  };
  run(probes(100, 7, assets), undefined);
  const samples: number[] = [];
  run(probes(500, 42, assets), samples);
  samples.sort((a, b) => a - b);
  const q = (x: number) => samples[Math.min(samples.length - 1, Math.floor(x * samples.length))]!;
  record('search', `p50 / p99 over ${samples.length} varied local searches at ${store.size} assets`, `${q(0.5).toFixed(2)} / ${q(0.99).toFixed(2)} ms`);
  record('search', `p95 at ${store.size} mirrored assets`, `${q(0.95).toFixed(2)} ms`, '<= 20 ms', q(0.95) <= 20);
  await store.close();
}

try {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, node ${process.version}`);
  if (!skip.has('sync')) await benchSync();
  if (!skip.has('search')) await benchLocalSearch();
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await endExiftool();
  await rm(work, { recursive: true, force: true });
}

const date = new Date().toISOString().slice(0, 10);
const table = [
  `Measured ${date} on ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, node ${process.version}; command \`npm run bench:mirror\`. ` +
    `Library server: \`imagine serve --role library\` as a child process on loopback; agent mirror in the bench process. ` +
    `Load average (1 min) ${loadBefore.toFixed(1)} before the run and ${loadavg()[0]!.toFixed(1)} after it.`,
  '',
  '| section | measure | result | target |',
  '| --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.section} | ${r.metric} | ${r.value} | ${r.target}${r.ok === null ? '' : r.ok ? ' ✓' : ' ✗'} |`),
].join('\n');
if (skip.size === 0) {
  await writeBenchSection('mirror', 'Offline mirror', table);
  console.log('\nwritten to docs/benchmarks.md');
} else {
  console.log(`\n${table}`);
}
