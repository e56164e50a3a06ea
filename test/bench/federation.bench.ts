/**
 * `npm run bench:federation`: federated search with two healthy peers against a local search
 * and one loopback round trip, measured in one run on this machine.
 *
 * Three library servers in this process, each on its own loopback port and data folder, each
 * with the same number of small pictures named from a word list (searchable by file name).
 * A asked B and C to trust it; they approved. Then, after a warm-up, for the same queries:
 *   local      GET A{api}/assets?q=...                 (A's own index)
 *   round trip GET B/.well-known/imagine                (one loopback request, tiny answer)
 *   federated  GET A{api}/assets?q=...&scope=federated (A + signed requests to B and C)
 * Target: federated p95 < 2 x local p95 + round-trip p95.
 *
 * Options: BENCH_ASSETS per server (default 300), BENCH_SEARCHES (default 300).
 * Results are printed and written into docs/benchmarks.md between the federation markers.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startTestLibrary, type TestLibrary } from '../helpers/test-library.ts';
import { ADJECTIVES, SUBJECTS, mulberry32 } from './synthetic-assets.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ASSETS = Number(process.env.BENCH_ASSETS ?? 300);
const SEARCHES = Number(process.env.BENCH_SEARCHES ?? 300);

async function fill(library: TestLibrary, seed: number): Promise<void> {
  const random = mulberry32(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  const dir = await mkdtemp(join(tmpdir(), 'imagine-bench-fed-src-'));
  const collection = await library.services.library.createCollection({ name: 'Open', public: true });
  for (let i = 0; i < ASSETS; i++) {
    const path = join(dir, `${pick(ADJECTIVES)}-${pick(SUBJECTS)}-${seed}-${i}.jpg`);
    await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: (i * 7) % 256, g: seed * 60, b: (i * 13) % 256 } } })
      .jpeg()
      .toFile(path);
    await library.services.library.ingestFile(path, { filename: path.split('/').pop()!, collection: collection.id });
  }
  await rm(dir, { recursive: true, force: true });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function time(url: string): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(url);
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return performance.now() - t0;
}

const [a, b, c] = await Promise.all(['bench-fed-a', 'bench-fed-b', 'bench-fed-c'].map((name) => startTestLibrary({ name })));
try {
  console.log(`filling three libraries with ${ASSETS} pictures each...`);
  await fill(a!, 1);
  await fill(b!, 2);
  await fill(c!, 3);
  for (const peer of [b!, c!]) {
    const federation = peer.app.federation!;
    await federation.peers.recordRequest(a!.origin, ['search', 'view']);
    await federation.peers.approve(a!.origin);
    await a!.app.federation!.peers.recordOutgoing(peer.origin, 'accepted', ['search', 'view']);
  }
  const random = mulberry32(7);
  const queries = Array.from({ length: SEARCHES }, () => SUBJECTS[Math.floor(random() * SUBJECTS.length)]!);
  const api = `${a!.origin}/api/v1/assets?limit=20&q=`;
  // Warm-up: discovery caches, JWKS caches, JIT.
  for (const q of queries.slice(0, 30)) {
    await time(`${api}${q}`);
    await time(`${api}${q}&scope=federated`);
    await time(`${b!.origin}/.well-known/imagine`);
  }
  const local: number[] = [];
  const federated: number[] = [];
  const roundTrip: number[] = [];
  for (const q of queries) {
    // Interleaved, so machine noise falls on all three alike.
    local.push(await time(`${api}${q}`));
    roundTrip.push(await time(`${b!.origin}/.well-known/imagine`));
    federated.push(await time(`${api}${q}&scope=federated`));
  }
  const check = (await (await fetch(`${api}harbour&scope=federated`)).json()) as { sources: { state: string }[] };
  if (check.sources.length !== 3 || check.sources.some((s) => s.state !== 'ok')) throw new Error(`a peer was not healthy: ${JSON.stringify(check.sources)}`);

  const row = (name: string, v: number[]) =>
    `| ${name} | ${percentile(v, 50).toFixed(1)} | ${percentile(v, 95).toFixed(1)} | ${percentile(v, 99).toFixed(1)} |`;
  const target = 2 * percentile(local, 95) + percentile(roundTrip, 95);
  const p95 = percentile(federated, 95);
  const verdict = p95 < target ? 'met' : 'missed';
  const machine = `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
  const block = [
    '<!-- bench:federation -->',
    `Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npm run bench:federation\` (${ASSETS} pictures per server, ${SEARCHES} searches each, limit 20, interleaved).`,
    '',
    '| request | p50 ms | p95 ms | p99 ms |',
    '| --- | --- | --- | --- |',
    row('local search on A', local),
    row('loopback round trip (B discovery)', roundTrip),
    row('federated search on A (B and C healthy)', federated),
    '',
    `Target: federated p95 < 2 x local p95 + round-trip p95 = ${target.toFixed(1)} ms; measured ${p95.toFixed(1)} ms: **${verdict}**.`,
    '<!-- /bench:federation -->',
  ].join('\n');
  console.log(block);
  const docPath = join(root, 'docs/benchmarks.md');
  const doc = await readFile(docPath, 'utf8');
  const updated = doc.includes('<!-- bench:federation -->')
    ? doc.replace(/<!-- bench:federation -->[\s\S]*?<!-- \/bench:federation -->/, block)
    : `${doc.trimEnd()}\n\n## Federation\n\n${block}\n`;
  await writeFile(docPath, updated);
  console.log(`BENCH ${JSON.stringify({ localP95: percentile(local, 95), roundTripP95: percentile(roundTrip, 95), federatedP95: p95, target, verdict })}`);
} finally {
  await Promise.all([a, b, c].map((lib) => lib?.close()));
}
