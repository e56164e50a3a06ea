/**
 * `npm run bench:panel`: the panel's size and speed, measured on this machine.
 *
 *  1. The bundle (plugin/build/bundle.ts, minified, what UXP and the preview load): index.js
 *     and index.css, raw and gzip, and the time esbuild takes.
 *  2. Time to first thumbnails: the browser preview (`/panel/`) in headless Chromium against
 *     `imagine serve --demo` (agent and library in one process) over a library of
 *     BENCH_IMAGES (default 60) photos, so the first page holds 50 results. Measured from
 *     navigation start (page, bundle, status, search, thumbnails all included) until 50
 *     thumbnails have loaded. "First visit" is the first browser visit after the server
 *     started (the agent may or may not have cached thumbnails yet: it fills its cache in the
 *     background); "revisit" opens a fresh browser context (nothing in the browser's cache,
 *     thumbnails cached by the agent). Target: first thumbnails under 1 s against a local server.
 *
 * Results are printed and written into docs/benchmarks.md between the bench:panel markers
 * (BENCH_WRITE=0 to only print). Options: BENCH_IMAGES, BENCH_RUNS (default 5); BENCH_SMOKE=1
 * runs it small and writes nothing, to check the script itself.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import { bundlePanel } from '../../plugin/build/bundle.ts';
import { killChildren, noiseImage, ROOT, runCli, startCli, stopChild, type Started } from '../helpers/integration.ts';
import { writeBenchSection } from './bench-doc.ts';

/** BENCH_SMOKE=1: small pictures, one run, nothing written (checks the script works). */
const SMOKE = process.env.BENCH_SMOKE === '1';
const IMAGES = Number(process.env.BENCH_IMAGES ?? (SMOKE ? 52 : 60));
const RUNS = Number(process.env.BENCH_RUNS ?? (SMOKE ? 1 : 5));
const WRITE = process.env.BENCH_WRITE !== '0' && !SMOKE;
const SCALE = SMOKE ? 0.1 : 1;
const TARGET_MS = 1000;
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
  .filter((p): p is string => !!p)
  .find((p) => existsSync(p));

const rows: Array<{ section: string; measure: string; value: string; target: string }> = [];
function record(section: string, measure: string, value: string, target = '', ok: boolean | null = null) {
  const mark = ok === null ? '' : ok ? ' ✓' : ' ✗';
  rows.push({ section, measure, value, target: target ? `${target}${mark}` : '' });
  console.log(`${section.padEnd(12)} ${measure.padEnd(58)} ${value.padStart(12)}  ${target}${mark}`);
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const loadBefore = loadavg()[0]!;

// ---- 1. the bundle --------------------------------------------------------------------------
{
  const started = performance.now();
  const result = await bundlePanel({ outdir: join(tmpdir(), 'imagine-bench-panel'), write: false, minify: true });
  const ms = performance.now() - started;
  for (const file of result.outputFiles ?? []) {
    const name = basename(file.path);
    if (!/\.(js|css)$/.test(name)) continue;
    record('bundle', `${name} (minified)`, kib(file.contents.length));
    record('bundle', `${name} (gzip)`, kib(gzipSync(file.contents, { level: 9 }).length));
  }
  record('bundle', 'esbuild time', `${ms.toFixed(0)} ms`);
}

// ---- 2. time to first thumbnails -------------------------------------------------------------
if (!CHROMIUM) {
  console.log('Chromium is not installed: the thumbnail measure is skipped');
} else {
  const root = await mkdtemp(join(tmpdir(), 'imagine-bench-panel-'));
  let server: (Started & { url: string }) | undefined;
  let browser: Browser | undefined;
  try {
    const pictures = join(root, 'pictures');
    const data = join(root, 'data');
    await mkdir(pictures, { recursive: true });
    for (let i = 0; i < IMAGES; i++) {
      const landscape = i % 3 !== 0;
      await noiseImage(Math.round((landscape ? 2400 : 1600) * SCALE), Math.round((landscape ? 1600 : 2400) * SCALE), 500 + i).jpeg({ quality: 85 }).toFile(join(pictures, `photo-${String(i).padStart(3, '0')}.jpg`));
    }
    const ingest = await runCli(['ingest', '--data', data, '--collection', 'Bench', '--public', '--json', pictures], { timeoutMs: 600_000 });
    if (ingest.code !== 0) throw new Error(`ingest failed: ${ingest.stderr}`);
    const started = startCli(['serve', '--demo', '--data', data, '--host', '127.0.0.1', '--port', '0', '--json']);
    const line = await new Promise<string>((resolve, reject) => {
      const check = () => {
        const out = started.stdout();
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      };
      started.child.stdout!.on('data', check);
      started.exited.then(() => reject(new Error(`serve exited: ${started.stderr()}`)), reject);
    });
    server = { ...started, url: (JSON.parse(line) as { url: string }).url };
    // The page and its bundle are built on first use: build them before measuring.
    await fetch(`${server.url}/panel/`).then((r) => r.text());
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });

    const visit = async () => {
      const context = await browser!.newContext({ viewport: { width: 1400, height: 1000 } });
      const page = await context.newPage();
      await page.goto(`${server!.url}/panel/`, { waitUntil: 'commit' });
      const times = await page.waitForFunction(
        () => {
          const w = globalThis as unknown as { __benchFirst?: number };
          const loaded = [...document.querySelectorAll('[data-testid=results] img[data-testid=thumb]')].filter(
            (i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0,
          ).length;
          if (loaded >= 1 && w.__benchFirst === undefined) w.__benchFirst = performance.now();
          if (loaded < 50) return false;
          const search = performance.getEntriesByType('resource').find((e) => e.name.includes('/agent/v1/search')) as PerformanceResourceTiming | undefined;
          return { first: w.__benchFirst!, fifty: performance.now(), search: search ? search.responseEnd - search.startTime : NaN };
        },
        null,
        { polling: 'raf', timeout: 60_000 },
      );
      const value = (await times.jsonValue()) as { first: number; fifty: number; search: number };
      await context.close();
      return value;
    };

    const first = await visit();
    record('thumbnails', 'first visit: first thumbnail shown', `${first.first.toFixed(0)} ms`);
    record('thumbnails', 'first visit: 50 thumbnails loaded', `${first.fifty.toFixed(0)} ms`, `< ${TARGET_MS} ms`, first.fifty < TARGET_MS);
    const again: Array<{ first: number; fifty: number; search: number }> = [];
    for (let i = 0; i < RUNS; i++) again.push(await visit());
    record('thumbnails', `revisit (median of ${RUNS}): first thumbnail shown`, `${median(again.map((r) => r.first)).toFixed(0)} ms`);
    const fifty = median(again.map((r) => r.fifty));
    record('thumbnails', `revisit (median of ${RUNS}): 50 thumbnails loaded`, `${fifty.toFixed(0)} ms`, `< ${TARGET_MS} ms`, fifty < TARGET_MS);
    record('thumbnails', `revisit (median of ${RUNS}): search through the agent (50 results)`, `${median(again.map((r) => r.search)).toFixed(0)} ms`);
  } finally {
    await browser?.close();
    if (server) await stopChild(server);
    killChildren();
    await rm(root, { recursive: true, force: true });
  }
}

// ---- write docs/benchmarks.md -----------------------------------------------------------------
const loadAfter = loadavg()[0]!;
const section = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, node ${process.version}, Chromium headless (${CHROMIUM ?? 'absent'}); command \`npm run bench:panel\`. Library: ${IMAGES} generated photos (${2400 * SCALE}x${1600 * SCALE} and ${1600 * SCALE}x${2400 * SCALE} JPEGs) served by \`imagine serve --demo\` (agent and library in one process); the panel's first page asks for 50 results. Times are from navigation start (page, bundle, agent status, search, thumbnails). Load average (1 min) ${loadBefore.toFixed(1)} before the run and ${loadAfter.toFixed(1)} after it.`,
  '',
  '| section | measure | result | target |',
  '| --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.section} | ${r.measure} | ${r.value} | ${r.target} |`),
].join('\n');
if (WRITE) {
  await writeBenchSection('panel', 'Panel', section);
  console.log('\nwritten to docs/benchmarks.md');
} else {
  console.log(`\n${section}`);
}
