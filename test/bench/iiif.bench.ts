/**
 * `npm run bench:iiif`: the IIIF image service on a 6000x4000 JPEG, measured over HTTP
 * against `imagine serve` running as a child process (keep-alive client in this process).
 *
 * A fixed list of tile, thumbnail and random-region requests, at concurrency 1 and 4,
 * uncached and cached; requests/s and p50/p95/p99 latency. Targets (2-core machine):
 *
 *  - advertised tiles right after ingest >= 300 req/s at concurrency 4;
 *  - random regions within 1.25x of the same sharp pipeline without HTTP (in this process);
 *  - repeated (cached) tiles >= 3,000 req/s;
 *  - info.json >= 5,000 req/s.
 *
 * Server A has the defaults (pyramid + pre-rendered advertised tiles after ingest); server B
 * has pre-rendering off (tiles rendered on demand from the pyramid); server C has no pyramid
 * (tiles cut from the JPEG), for comparison. The JPEG is generated here (resized noise).
 * Results are printed and written into docs/benchmarks.md between the bench:iiif markers.
 * BENCH_ONLY=a (or b, c, or a list) runs those servers only and writes nothing.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { endExiftool } from '../../companion/metadata/exiftool.ts';
import { parseIiifPath } from '../../companion/iiif/parse.ts';
import { buildPyramid, chooseLevel, readPyramidLevels } from '../../companion/iiif/pyramid.ts';
import { renderImage } from '../../companion/iiif/render.ts';
import { planKey, resolveImageRequest, type ImageLimits } from '../../companion/iiif/resolve.ts';
import { IiifService } from '../../companion/iiif/service.ts';
import { defaults } from '../../companion/config.ts';
import { killChildren, lastLine, listTree, readCatalog, runCli, startServer, stopChild, type Server } from '../helpers/integration.ts';
import { writeBenchSection } from './bench-doc.ts';
import { seededRandom } from '../../shared/seeded-random.ts';

const WIDTH = 6000;
const HEIGHT = 4000;
const TILE = defaults.iiifTileSize;
const LIMITS: ImageLimits = { maxWidth: defaults.iiifMaxWidth, maxHeight: defaults.iiifMaxHeight, maxArea: defaults.iiifMaxArea };

interface Row {
  section: string;
  measure: string;
  concurrency: number | '';
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  target: string;
  ok: boolean | null;
}
const rows: Row[] = [];


function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Runs `targets` (each once, in order) with `concurrency` workers; latencies in ms. */
async function measure(run: (target: string) => Promise<void>, targets: string[], concurrency: number) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < targets.length) {
        const target = targets[next++]!;
        const t0 = performance.now();
        await run(target);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { requests: targets.length, rps: targets.length / seconds, p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) };
}

function record(section: string, measureName: string, concurrency: number | '', result: Awaited<ReturnType<typeof measure>>, target = '', ok: boolean | null = null) {
  const row: Row = { section, measure: measureName, concurrency, ...result, target, ok };
  rows.push(row);
  console.log(
    `${section.padEnd(12)} ${measureName.padEnd(52)} c${String(concurrency).padEnd(2)} ${String(result.requests).padStart(6)} req ` +
      `${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50.toFixed(1).padStart(6)}  p95 ${result.p95.toFixed(1).padStart(6)}  p99 ${result.p99.toFixed(1).padStart(6)} ms  ${target}${ok === null ? '' : ok ? ' ✓' : ' ✗'}`,
  );
}

function client(server: Server, concurrency: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const get = (target: string) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.port, path: target, agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`${res.statusCode} for ${target}`));
        res.resume();
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

async function run(server: Server, targets: string[], concurrency: number) {
  const c = client(server, concurrency);
  try {
    // One request first, so connection set-up is not measured.
    return await measure(c.get, targets, concurrency);
  } finally {
    c.close();
  }
}

/** The advertised tiles, as a viewer asks for them (3.0: w,h sizes), overview levels first. */
function tilePaths(id: string): string[] {
  const paths: string[] = [];
  const service = new IiifService({ ...serviceOptions(), library: null as never });
  for (const plan of service.advertisedPlans({ width: WIDTH, height: HEIGHT })) {
    const r = plan.region;
    paths.push(`/iiif/3/${id}/${r.x},${r.y},${r.w},${r.h}/${plan.width},${plan.height}/0/default.jpg`);
  }
  return paths;
}

function serviceOptions() {
  return {
    dir: '/nonexistent',
    cacheBytes: defaults.iiifCacheBytes,
    pyramidBytes: defaults.iiifPyramidCacheBytes,
    memoryBytes: defaults.iiifMemoryCacheBytes,
    pyramidThreshold: defaults.iiifPyramidThreshold,
    concurrency: 0,
    queue: defaults.iiifQueue,
    tileSize: TILE,
    limits: LIMITS,
    prerender: true,
    timeoutSeconds: 30,
  };
}

function advertisedCount(): number {
  const service = new IiifService({ ...serviceOptions(), library: null as never });
  return new Set(service.advertisedPlans({ width: WIDTH, height: HEIGHT }).map(planKey)).size;
}

/** Random regions with a bounded output size: `{x,y,w,h}/{w'},/0/default.jpg`. */
function randomRegions(seed: number, count: number): string[] {
  const rnd = seededRandom(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const w = 200 + Math.floor(rnd() * 2800);
    const h = 200 + Math.floor(rnd() * 2800);
    const x = Math.floor(rnd() * (WIDTH - w));
    const y = Math.floor(rnd() * (HEIGHT - h));
    const size = Math.min(w, 256 + Math.floor(rnd() * 768));
    out.push(`${x},${y},${w},${h}/${size},/0/default.jpg`);
  }
  return out;
}

function thumbnails(seed: number, count: number): string[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: count }, () => `full/!${96 + Math.floor(rnd() * 600)},${96 + Math.floor(rnd() * 600)}/0/default.jpg`);
}

interface Library {
  data: string;
  server: Server;
  id: string;
}

/** A data folder with an admin token and a public collection, a server on it, the JPEG uploaded. */
async function startLibrary(work: string, name: string, jpeg: Buffer, config: Record<string, unknown>): Promise<Library & { uploadedAt: number }> {
  const data = join(work, name);
  const seed = join(work, `${name}-seed`);
  await mkdir(seed, { recursive: true });
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'config.json'), JSON.stringify({ logLevel: 'warn', ...config }));
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } }).png().toFile(join(seed, 'seed.png'));
  const ingest = await runCli(['ingest', '--data', data, '--collection', 'Bench', '--public', '--json', seed]);
  if (ingest.code !== 0) throw new Error(ingest.stderr);
  await runCli(['users', 'add', 'bench', '--admin', '--data', data]);
  const token = JSON.parse(lastLine((await runCli(['tokens', 'create', '--user', 'bench', '--data', data, '--json'])).stdout)).token as string;
  const collection = (await readCatalog(data)).collections[0]!.id;
  const server = await startServer(data);
  const uploadedAt = performance.now();
  const asset = await new Promise<{ id: string }>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/api/v1/assets',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'image/jpeg',
          'content-length': jpeg.length,
          'imagine-filename': 'bench-6000x4000.jpg',
          'imagine-collection': collection,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(Buffer.concat(chunks).toString())) : reject(new Error(Buffer.concat(chunks).toString()))));
      },
    );
    req.on('error', reject);
    req.end(jpeg);
  });
  return { data, server, id: asset.id, uploadedAt };
}

async function cachedImages(data: string): Promise<number> {
  return (await listTree(join(data, 'cache', 'iiif', 'images'))).filter((p) => !p.startsWith('tmp')).length;
}

const loadBefore = loadavg()[0]!;
const only = new Set((process.env.BENCH_ONLY ?? 'a,b,c').split(',').map((x) => x.trim()));
const work = await mkdtemp(join(tmpdir(), 'imagine-bench-iiif-'));
let a: (Library & { uploadedAt: number }) | undefined;
let b: (Library & { uploadedAt: number }) | undefined;
let c: (Library & { uploadedAt: number }) | undefined;
try {
  // 6000x4000 with photographic-like detail: noise resized up (soft blobs), JPEG quality 85.
  const noise = await sharp({
    create: { width: 1500, height: 1000, channels: 3, background: { r: 128, g: 128, b: 128 }, noise: { type: 'gaussian', mean: 128, sigma: 50 } },
  })
    .png()
    .toBuffer();
  const jpeg = await sharp(noise).resize(WIDTH, HEIGHT, { kernel: 'cubic' }).jpeg({ quality: 85 }).toBuffer();
  const jpegPath = join(work, 'source.jpg');
  await writeFile(jpegPath, jpeg);
  console.log(`source: ${WIDTH}x${HEIGHT} JPEG, ${(jpeg.length / 1024 / 1024).toFixed(1)} MiB; ${cpus().length} CPUs\n`);

  // --- A: defaults (pyramid and advertised tiles prepared after ingest) -------------------------
  if (only.has('a')) {
  a = await startLibrary(work, 'a', jpeg, {});
  const expected = advertisedCount();
  while ((await cachedImages(a.data)) < expected) await new Promise((r) => setTimeout(r, 100));
  const prepared = (performance.now() - a.uploadedAt) / 1000;
  console.log(`A: upload + ingest + pyramid + ${expected} advertised tiles and sizes prepared in ${prepared.toFixed(1)} s`);
  const tiles = tilePaths(a.id);
  const info = Array.from({ length: 20_000 }, () => `/iiif/3/${a!.id}/info.json`);
  await run(a.server, info.slice(0, 2000), 4); // warm-up
  record('info.json', 'info.json', 1, await run(a.server, info.slice(0, 5000), 1));
  const infoRate = await run(a.server, info, 4);
  record('info.json', 'info.json', 4, infoRate, '>= 5,000 req/s', infoRate.rps >= 5000);
  const firstHalf = tiles.filter((_, i) => i % 2 === 0);
  const secondHalf = tiles.filter((_, i) => i % 2 === 1);
  record('tiles', 'advertised tiles, first request after ingest', 1, await run(a.server, firstHalf, 1));
  const after = await run(a.server, secondHalf, 4);
  record('tiles', 'advertised tiles, first request after ingest', 4, after, '>= 300 req/s', after.rps >= 300);
  const repeated = Array.from({ length: 30 }, () => tiles).flat();
  record('tiles', 'repeated tiles (cached)', 1, await run(a.server, repeated.slice(0, 3000), 1));
  const cached = await run(a.server, repeated, 4);
  record('tiles', 'repeated tiles (cached)', 4, cached, '>= 3,000 req/s', cached.rps >= 3000);
  await stopChild(a.server);
  }

  // --- B: pre-rendering off: tiles, thumbnails and regions rendered on demand from the pyramid --
  if (only.has('b')) {
  b = await startLibrary(work, 'b', jpeg, { iiifPrerender: false });
  const bTiles = tilePaths(b.id);
  // The pyramid is made by the first image request (or in the background after info.json).
  const t0 = performance.now();
  await run(b.server, [`/iiif/3/${b.id}/full/64,/0/default.jpg`], 1);
  console.log(`B: pyramid made on first request in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  record('tiles', 'tiles rendered on demand from the pyramid', 1, await run(b.server, bTiles.filter((_, i) => i % 2 === 0), 1));
  record('tiles', 'tiles rendered on demand from the pyramid', 4, await run(b.server, bTiles.filter((_, i) => i % 2 === 1), 4));
  const thumbs1 = thumbnails(1, 40).map((p) => `/iiif/3/${b!.id}/${p}`);
  const thumbs4 = thumbnails(2, 80).map((p) => `/iiif/3/${b!.id}/${p}`);
  record('thumbnails', 'full/!w,h thumbnails (uncached)', 1, await run(b.server, thumbs1, 1));
  record('thumbnails', 'full/!w,h thumbnails (uncached)', 4, await run(b.server, thumbs4, 4));
  record('thumbnails', 'full/!w,h thumbnails (cached)', 4, await run(b.server, Array.from({ length: 40 }, () => thumbs4).flat(), 4));
  const regions1 = randomRegions(11, 60);
  const regions4 = randomRegions(12, 120);
  const http1 = await run(b.server, regions1.map((p) => `/iiif/3/${b!.id}/${p}`), 1);
  const http4 = await run(b.server, regions4.map((p) => `/iiif/3/${b!.id}/${p}`), 4);

  // The same sharp pipeline in this process, no HTTP: same pyramid format, same plans.
  const pyramid = join(work, 'pyramid.tif');
  await buildPyramid(jpeg, pyramid, { tileSize: TILE });
  const levels = await readPyramidLevels(pyramid);
  const renderDirect = async (path: string) => {
    const request = parseIiifPath(3, `x/${path}`);
    if (request.kind !== 'image') throw new Error(path);
    const plan = resolveImageRequest(request, { width: WIDTH, height: HEIGHT }, LIMITS);
    if (!plan.ok) throw new Error(plan.error.message);
    const page = chooseLevel(levels, WIDTH, Math.min(plan.value.width / plan.value.region.w, plan.value.height / plan.value.region.h));
    const result = await renderImage({ input: pyramid, page, ...levels[page]!, fullWidth: WIDTH, fullHeight: HEIGHT, autoOrient: false }, plan.value);
    if (!result.ok) throw new Error(result.error.message);
  };
  const direct1 = await measure(renderDirect, regions1, 1);
  const direct4 = await measure(renderDirect, regions4, 4);
  record('regions', 'random regions, sharp pipeline alone (no HTTP)', 1, direct1);
  record('regions', 'random regions over HTTP (uncached)', 1, http1, 'within 1.25x of sharp alone', http1.rps * 1.25 >= direct1.rps);
  record('regions', 'random regions, sharp pipeline alone (no HTTP)', 4, direct4);
  record('regions', 'random regions over HTTP (uncached)', 4, http4, 'within 1.25x of sharp alone', http4.rps * 1.25 >= direct4.rps);
  record('regions', 'random regions over HTTP (cached)', 4, await run(b.server, Array.from({ length: 20 }, () => regions4.map((p) => `/iiif/3/${b!.id}/${p}`)).flat(), 4));
  await stopChild(b.server);
  }

  // --- C: no pyramid: tiles cut from the JPEG itself ----------------------------------------------
  if (only.has('c')) {
  c = await startLibrary(work, 'c', jpeg, { iiifPyramidThreshold: 100_000_000, iiifPrerender: false });
  const cTiles = Array.from({ length: 24 }, (_, i) => `/iiif/3/${c!.id}/${(i % 11) * TILE},${(i % 7) * TILE},${TILE},${TILE}/${TILE},${TILE}/0/default.jpg`);
  record('tiles', 'full-resolution tiles cut from the JPEG (no pyramid)', 4, await run(c.server, cTiles, 4));
  await stopChild(c.server);
  }
} finally {
  killChildren();
  await endExiftool();
  await rm(work, { recursive: true, force: true });
}

const date = new Date().toISOString().slice(0, 10);
const table = [
  `Measured ${date} on ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, node ${process.version}, ` +
    `sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}; command \`npm run bench:iiif\`. Source: a generated ${WIDTH}x${HEIGHT} JPEG ` +
    `(quality 85), tiles ${TILE}px. Server: \`imagine serve\` as a child process with the default IIIF settings (A; B with ` +
    '`iiifPrerender: false`; C without a pyramid); client: keep-alive HTTP in the bench process on the same 2 CPUs. "First request ' +
    'after ingest" tiles were pre-rendered in the background right after the upload; "on demand" tiles are decoded from the pyramid per request. ' +
    `Load average (1 min) ${loadBefore.toFixed(1)} before the run and ${loadavg()[0]!.toFixed(1)} after it: other work on the machine competes for the 2 CPUs.`,
  '',
  '| section | measure | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | target |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.section} | ${r.measure} | ${r.concurrency} | ${r.requests} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.target}${r.ok === null ? '' : r.ok ? ' ✓' : ' ✗'} |`,
  ),
].join('\n');
if (process.env.BENCH_ONLY) {
  console.log('\nBENCH_ONLY: nothing written');
  process.exit(0);
}
await writeBenchSection('iiif', 'IIIF image service', table);
console.log('\nwritten to docs/benchmarks.md');
