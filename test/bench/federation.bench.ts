/**
 * `npm run bench:federation`: federated search with two healthy peers against a local search
 * and one loopback round trip, measured in one run on this machine.
 *
 * Three library servers, each its own `imagine serve` process (as peers are separate machines,
 * so B and C work in parallel while A waits) on its own loopback port and data folder, each
 * with the same number of small pictures named from a word list (searchable by file name),
 * ingested before start. A asked B and C to trust it (`imagine peers request`); they approved
 * (`imagine peers approve`). Then, after a warm-up, for the same queries:
 *   local      GET A{api}/assets?q=...                 (A's own index)
 *   round trip GET B/.well-known/imagine                (one loopback request, tiny answer)
 *   federated  GET A{api}/assets?q=...&scope=federated (A + signed requests to B and C)
 * Target: federated p95 < 2 x local p95 + round-trip p95.
 *
 * Options: BENCH_ASSETS per server (default 300), BENCH_SEARCHES (default 300).
 * Results are printed and written into docs/benchmarks.md between the federation markers.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { killChildren, runCli, startServer, stopChild, type Server } from '../helpers/integration.ts';
import { ADJECTIVES, SUBJECTS, mulberry32 } from './synthetic-assets.ts';
import { writeBenchSection } from './bench-doc.ts';

const ASSETS = Number(process.env.BENCH_ASSETS ?? 300);
const SEARCHES = Number(process.env.BENCH_SEARCHES ?? 300);

async function cli(args: string[]): Promise<void> {
  const result = await runCli(args, { timeoutMs: 600_000 });
  if (result.code !== 0) throw new Error(`imagine ${args.join(' ')}: ${result.stderr}`);
}

/** A data folder with ASSETS small pictures in a public collection. */
async function fill(dataDir: string, seed: number): Promise<void> {
  const random = mulberry32(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  const src = join(dataDir, '..', `src-${seed}`);
  await mkdir(src, { recursive: true });
  for (let i = 0; i < ASSETS; i++) {
    await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: (i * 7) % 256, g: seed * 60, b: (i * 13) % 256 } } })
      .jpeg()
      .toFile(join(src, `${pick(ADJECTIVES)}-${pick(SUBJECTS)}-${seed}-${i}.jpg`));
  }
  await cli(['ingest', '--data', dataDir, '--collection', 'Open', '--public', '--json', src]);
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

const work = await mkdtemp(join(tmpdir(), 'imagine-bench-fed-'));
const data = { a: join(work, 'a'), b: join(work, 'b'), c: join(work, 'c') };
let a: Server | undefined;
let b: Server | undefined;
let c: Server | undefined;
try {
  console.log(`filling three libraries with ${ASSETS} pictures each...`);
  await Promise.all([fill(data.a, 1), fill(data.b, 2), fill(data.c, 3)]);
  [a, b, c] = await Promise.all([startServer(data.a), startServer(data.b), startServer(data.c)]);
  for (const [peer, dir] of [[b, data.b], [c, data.c]] as const) {
    await cli(['peers', 'request', peer.url, '--scopes', 'search,view', '--data', data.a]);
    await cli(['peers', 'approve', new URL(a.url).host, '--data', dir]);
  }
  const random = mulberry32(7);
  const queries = Array.from({ length: SEARCHES }, () => SUBJECTS[Math.floor(random() * SUBJECTS.length)]!);
  const api = `${a.url}/api/v1/assets?limit=20&q=`;
  // Warm-up: discovery caches, JWKS caches, JIT.
  for (const q of queries.slice(0, 30)) {
    await time(`${api}${q}`);
    await time(`${api}${q}&scope=federated`);
    await time(`${b.url}/.well-known/imagine`);
  }
  const local: number[] = [];
  const federated: number[] = [];
  const roundTrip: number[] = [];
  for (const q of queries) {
    // Interleaved, so machine noise falls on all three alike.
    local.push(await time(`${api}${q}`));
    roundTrip.push(await time(`${b.url}/.well-known/imagine`));
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
    `Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npm run bench:federation\` (three \`imagine serve\` processes, ${ASSETS} pictures each, ${SEARCHES} searches, limit 20, interleaved).`,
    '',
    '| request | p50 ms | p95 ms | p99 ms |',
    '| --- | --- | --- | --- |',
    row('local search on A', local),
    row('loopback round trip (B discovery)', roundTrip),
    row('federated search on A (B and C healthy)', federated),
    '',
    `Target: federated p95 < 2 x local p95 + round-trip p95 = ${target.toFixed(1)} ms; measured ${p95.toFixed(1)} ms: **${verdict}**.`,
  ].join('\n');
  console.log(block);
  await writeBenchSection('federation', 'Federation', block);
  console.log(`BENCH ${JSON.stringify({ localP95: percentile(local, 95), roundTripP95: percentile(roundTrip, 95), federatedP95: p95, target, verdict })}`);
} finally {
  await Promise.all([a, b, c].map((server) => (server ? stopChild(server) : undefined)));
  killChildren();
  await rm(work, { recursive: true, force: true });
}
