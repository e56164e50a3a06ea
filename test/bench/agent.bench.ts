/**
 * `npm run bench:agent`: save-back of a big file through the agent against the raw upload of
 * the same bytes, on this machine, both to a real library server on loopback.
 *
 *  1. raw upload: `POST {api}/assets/{id}/versions` of a ~200 MB file (streamed, If-Match);
 *  2. save-back: the same size pushed through the agent (`POST /agent/v1/checkouts/{id}/push`
 *     until the queue item is done): spool copy, metadata preservation, policy, sha256, tus
 *     upload, server verification — target within 1.3x of (1).
 *
 * Results are printed and written into docs/benchmarks.md between the agent markers.
 * Options: BENCH_MB (default 200).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { buildApp } from '../../companion/app.ts';
import { loadConfig } from '../../companion/config.ts';
import { readPairingToken } from '../../companion/agent/pairing.ts';
import { openAgentServices } from '../../companion/agent/services.ts';
import { endExiftool } from '../../companion/metadata/exiftool.ts';
import { startTestLibrary } from '../helpers/test-library.ts';
import { writeBenchSection } from './bench-doc.ts';

const megabytes = Number(process.env.BENCH_MB ?? 200);

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

const work = await mkdtemp(join(tmpdir(), 'imagine-bench-agent-'));
const lib = await startTestLibrary({ name: 'bench-agent', flags: { maxUploadBytes: 4 * 1024 ** 3 } });
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

try {
  const source = join(work, 'source.tif');
  await bigTiff(source, 1);
  const size = (await stat(source)).size;
  const api = `${lib.origin}/api/v1`;
  const auth = { authorization: `Bearer ${lib.admin}` };
  const created = await fetch(`${api}/assets`, { method: 'POST', headers: { ...auth, 'content-type': 'image/tiff', 'imagine-filename': 'big.tif' }, body: Readable.toWeb(createReadStream(source)) as never, duplex: 'half' } as RequestInit);
  const asset = (await created.json()) as { id: string; uri: string };

  // 1. Raw upload of a new version of the same size.
  const raw = join(work, 'raw.tif');
  await bigTiff(raw, 2);
  const rawSeconds = await timed(async () => {
    const res = await fetch(`${api}/assets/${asset.id}/versions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'image/tiff', 'if-match': '"v1"' },
      body: Readable.toWeb(createReadStream(raw)) as never,
      duplex: 'half',
    } as RequestInit);
    if (res.status !== 201) throw new Error(`raw push answered ${res.status}`);
  });

  // 2. Save-back through the agent.
  await call('POST', '/connections', { url: lib.origin, token: lib.admin });
  let checkout = await call('POST', '/checkouts', { uri: asset.uri });
  while (checkout.state === 'downloading') {
    await new Promise((r) => setTimeout(r, 100));
    checkout = await call('GET', `/checkouts/${checkout.id}`);
  }
  await bigTiff(checkout.path, 3);
  const saveBackSeconds = await timed(async () => {
    let item = await call('POST', `/checkouts/${checkout.id}/push`, {});
    while (!['done', 'conflict', 'failed'].includes(item.state)) {
      await new Promise((r) => setTimeout(r, 50));
      item = await call('GET', `/queue/${item.id}`);
    }
    if (item.state !== 'done') throw new Error(`save-back ended ${item.state}: ${JSON.stringify(item.error)}`);
  });

  const ratio = saveBackSeconds / rawSeconds;
  const rows = [
    ['file size', `${(size / 1024 ** 2).toFixed(0)} MB`, ''],
    ['raw upload (POST versions)', `${rawSeconds.toFixed(2)} s`, ''],
    ['save-back through the agent', `${saveBackSeconds.toFixed(2)} s`, ''],
    ['save-back / raw upload', `${ratio.toFixed(2)}x`, `≤ 1.3x ${ratio <= 1.3 ? '✓' : '✗'}`],
  ];
  for (const [metric, value, target] of rows) console.log(`${metric!.padEnd(36)} ${value!.padStart(10)}  ${target}`);
  const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  const block = [
    `Measured on ${machine}.`,
    '',
    '| Metric | Value | Target |',
    '|---|---|---|',
    ...rows.map(([m, v, t]) => `| ${m} | ${v} | ${t} |`),
  ].join('\n');
  await writeBenchSection('agent', 'Agent save-back', block);
} finally {
  await agent.close();
  await lib.close();
  await endExiftool();
  await rm(work, { recursive: true, force: true });
}
