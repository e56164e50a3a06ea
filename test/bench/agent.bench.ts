/**
 * `npm run bench:agent`: save-back of a big file through the agent against the raw upload of
 * the same bytes, on this machine, both to a real library server on loopback.
 *
 *  1. raw upload: `POST {api}/assets/{id}/versions` of a ~200 MB file (If-Match), streamed by
 *     node:http straight from the file (as `curl -T` would: the cheapest client, so the
 *     baseline is not slowed by fetch's web streams);
 *  2. save-back: the same size pushed through the agent (`POST /agent/v1/checkouts/{id}/push`
 *     until the queue item is done): metadata preservation (one exiftool rewrite into the
 *     spool, sent as it is written), policy, sha256, the rest of the tus upload, server
 *     verification — target within 1.3x of (1).
 *
 * The library server runs in its own process (`imagine serve --role library`), as it would on
 * another machine; the raw client and the agent run in this one. The original carries XMP, IIM
 * and EXIF as real ones do (copied from ExifTool's test images), and each edited file is a new
 * picture without them, as an editor that drops metadata saves it: preservation has everything
 * to restore.
 *
 * Each timed step starts once the machine is idle (the server's IIIF preparation of the previous
 * version done). The two alternate, BENCH_ROUNDS times (a new version each time: the raw POST with If-Match of
 * the current version, the save-back from a fresh checkout of it), so that both see the same
 * moments of a shared machine; every run is printed, and the medians, their ratio and the median
 * of each round's ratio (the target) are kept.
 *
 * Results are printed and written into docs/benchmarks.md between the agent markers (not with
 * BENCH_NO_DOC=1). Options: BENCH_MB (default 200), BENCH_ROUNDS (default 5).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { buildApp } from '../../companion/app.ts';
import { loadConfig } from '../../companion/config.ts';
import { readPairingToken } from '../../companion/agent/pairing.ts';
import { openAgentServices } from '../../companion/agent/services.ts';
import { libraryServicesOptions, openLibraryServices } from '../../companion/library/services.ts';
import { endExiftool, runExiftool } from '../../companion/metadata/exiftool.ts';
import { fixture } from '../helpers/metadata.ts';
import { writeBenchSection } from './bench-doc.ts';
import { startLibraryProcess } from './library-process.ts';
import { postFile } from './post-file.ts';

const megabytes = Number(process.env.BENCH_MB ?? 200);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

async function bigTiff(path: string, seed: number): Promise<void> {
  // Uncompressed RGB: width x height x 3 bytes ≈ BENCH_MB.
  const side = Math.round(Math.sqrt((megabytes * 1024 * 1024) / 3));
  await sharp({ create: { width: side, height: side, channels: 3, background: { r: seed * 40, g: 100, b: 150 }, noise: { type: 'gaussian', mean: 120, sigma: 30 } } })
    .tiff({ compression: 'none' })
    .toFile(path);
}

const timed = async (run: () => Promise<unknown>) => {
  const t0 = performance.now();
  await run();
  return (performance.now() - t0) / 1000;
};

/** XMP, IIM, EXIF and an ICC profile from ExifTool's test images, as a studio's original carries them. */
async function addMetadata(path: string): Promise<void> {
  for (const args of [
    ['-tagsFromFile', fixture('ExifTool.tif'), '-EXIF:all', '-IPTC:all', '-ICC_Profile'],
    ['-tagsFromFile', fixture('XMP.jpg'), '-XMP:all'],
  ]) {
    const out = await runExiftool(['-overwrite_original', '-m', ...args, path]);
    if (out.errors.length) throw new Error(out.errors.join('; '));
  }
}

/** A library server in its own process, with an administrator token made before it starts. */
async function startLibraryServer(dataDir: string): Promise<{ origin: string; admin: string; child: ChildProcess }> {
  const services = await openLibraryServices(libraryServicesOptions(loadConfig({ flags: { dataDir }, readFile: false }), 'agent bench'));
  await services.auth.addUser({ name: 'admin', admin: true });
  const admin = (await services.auth.createToken('admin')).token;
  await services.close();
  const { url, child } = await startLibraryProcess(dataDir);
  return { origin: url, admin, child };
}

const work = await mkdtemp(join(tmpdir(), 'imagine-bench-agent-'));
const lib = await startLibraryServer(join(work, 'library'));
const agentDir = join(work, 'agent');
const config = loadConfig({ flags: { dataDir: agentDir, role: 'agent', port: 0 }, readFile: false });
const services = await openAgentServices(config);
const agent = await buildApp(config, { logger: false, agent: services });
agent.addHook('onClose', async () => services.close());
await agent.listen({ host: '127.0.0.1', port: 0 });
const agentOrigin = `http://127.0.0.1:${(agent.server.address() as AddressInfo).port}`;
services.origin = agentOrigin;
const pairing = (await readPairingToken(join(agentDir, 'agent')))!;
const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${agentOrigin}/agent/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${pairing}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return res.json() as Promise<any>;
};

/** Busy and total CPU time of the whole machine so far (/proc/stat, in clock ticks). */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/**
 * Flushes the disk, then waits until the machine is idle (under 10 % busy over half a second; at most 120 s): each
 * upload makes the server prepare the new version for IIIF in the background (pyramid, tiles),
 * which would otherwise run under the next timed step.
 */
async function untilIdle(): Promise<void> {
  spawnSync('sync'); // and the disk flushed: the gigabytes earlier rounds wrote are not written back under this one
  const deadline = performance.now() + 120_000;
  let before = machineCpu();
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const now = machineCpu();
    const busy = (now.busy - before.busy) / Math.max(1, now.total - before.total);
    before = now;
    if (busy < 0.1) return;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

try {
  const source = join(work, 'source.tif');
  await bigTiff(source, 1);
  await addMetadata(source);
  const size = (await stat(source)).size;
  const api = `${lib.origin}/api/v1`;
  const auth = { authorization: `Bearer ${lib.admin}` };
  const created = await fetch(`${api}/assets`, { method: 'POST', headers: { ...auth, 'content-type': 'image/tiff', 'imagine-filename': 'big.tif' }, body: Readable.toWeb(createReadStream(source)) as never, duplex: 'half' } as RequestInit);
  const asset = (await created.json()) as { id: string; uri: string };
  let current = created.headers.get('etag') ?? '"v1"';
  await call('POST', '/connections', { url: lib.origin, token: lib.admin });

  const rawRuns: number[] = [];
  const saveBackRuns: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // 1. Raw upload of a new version of the same size (a new file each round).
    const raw = join(work, 'raw.tif');
    await bigTiff(raw, 2 + round);
    await addMetadata(raw); // what the save-backs below start from
    await untilIdle();
    rawRuns.push(
      await timed(async () => {
        const { status, etag } = await postFile(`${api}/assets/${asset.id}/versions`, raw, { ...auth, 'content-type': 'image/tiff', 'if-match': current });
        if (status !== 201) throw new Error(`raw push answered ${status}`);
        current = etag ?? current;
      }),
    );
    await rm(raw, { force: true });

    // 2. Save-back through the agent, from a fresh checkout of the current version.
    let checkout = await call('POST', '/checkouts', { uri: asset.uri });
    while (checkout.state === 'downloading') {
      await new Promise((r) => setTimeout(r, 100));
      checkout = await call('GET', `/checkouts/${checkout.id}`);
    }
    if (checkout.state !== 'ready') throw new Error(`checkout ended ${checkout.state}`);
    await bigTiff(checkout.path, 10 + round);
    await untilIdle();
    saveBackRuns.push(
      await timed(async () => {
        let item = await call('POST', `/checkouts/${checkout.id}/push`, {});
        while (!['done', 'conflict', 'failed'].includes(item.state)) {
          await new Promise((r) => setTimeout(r, 10));
          item = await call('GET', `/queue/${item.id}`);
        }
        if (item.state !== 'done') throw new Error(`save-back ended ${item.state}: ${JSON.stringify(item.error)}`);
        current = `"${item.result.version}"`;
      }),
    );
    console.log(`round ${round + 1}: raw ${rawRuns[round]!.toFixed(2)} s, save-back ${saveBackRuns[round]!.toFixed(2)} s (${(saveBackRuns[round]! / rawRuns[round]!).toFixed(2)}x)`);
  }

  const rawSeconds = median(rawRuns);
  const saveBackSeconds = median(saveBackRuns);
  // Each round's save-back against the raw upload just before it: the pair sees the same moment
  // of a shared machine, whose load drifts between rounds.
  const paired = median(saveBackRuns.map((s, i) => s / rawRuns[i]!));
  const rows = [
    ['file size', `${(size / 1024 ** 2).toFixed(0)} MB`, ''],
    [`raw upload (POST versions), median of ${rounds}`, `${rawSeconds.toFixed(2)} s`, ''],
    [`save-back through the agent, median of ${rounds}`, `${saveBackSeconds.toFixed(2)} s`, ''],
    ['save-back / raw upload, ratio of the medians', `${(saveBackSeconds / rawSeconds).toFixed(2)}x`, ''],
    ['save-back / raw upload, median of the rounds', `${paired.toFixed(2)}x`, `≤ 1.3x ${paired <= 1.3 ? '✓' : '✗'}`],
  ];
  for (const [metric, value, target] of rows) console.log(`${metric!.padEnd(44)} ${value!.padStart(10)}  ${target}`);
  const runs = rawRuns.map((r, i) => `${r.toFixed(2)} / ${saveBackRuns[i]!.toFixed(2)} s (${(saveBackRuns[i]! / r).toFixed(2)}x)`).join(', ');
  const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  const block = [
    `Measured on ${machine}.`,
    '',
    '| Metric | Value | Target |',
    '|---|---|---|',
    ...rows.map(([m, v, t]) => `| ${m} | ${v} | ${t} |`),
    '',
    `Runs, raw / save-back, alternated: ${runs}. Library server in its own process; originals with XMP, IIM and EXIF.`,
  ].join('\n');
  if (process.env.BENCH_NO_DOC) console.log('(BENCH_NO_DOC: docs/benchmarks.md left as it is)');
  else await writeBenchSection('agent', 'Agent save-back', block);
} finally {
  await agent.close();
  const exited = new Promise((resolve) => lib.child.once('exit', resolve));
  lib.child.kill();
  await exited;
  await endExiftool();
  await rm(work, { recursive: true, force: true });
}
