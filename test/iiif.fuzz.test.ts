/**
 * Hostile input for the IIIF service, on a real port: thousands of generated requests — mixes
 * of valid and malformed regions, sizes, rotations, qualities and formats, negative, huge and
 * non-numeric numbers, percentages above 100, regions outside the image, upscaling without
 * "^", traversal and junk in the identifier — plus a decompression bomb and a truncated file
 * behind the catalog's back, and a burst of heavy requests.
 *
 * Asserted for every answer: a status from the spec's set (never a 500), an error body in
 * text/plain, an answer within the time limit; at the end the server still answers and its
 * peak memory (VmHWM) stayed under a bound.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import { blobPath, killChildren, lastLine, noiseImage, readCatalog, runCli, startServer, type Server } from './helpers/integration.ts';
import { seededRandom } from '../shared/seeded-random.ts';

const REQUESTS = Number(process.env.IIIF_FUZZ_REQUESTS ?? 3000);
const CONCURRENCY = 6;
const ALLOWED = new Set([200, 303, 304, 400, 401, 403, 404, 410, 415, 501, 503]);
const PEAK_RSS_LIMIT = 1536 * 1024 * 1024;

let root: string;
let data: string;
let server: Server;
const ids: string[] = [];
let bombId: string;
let truncatedId: string;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });


const rnd = seededRandom(20261121);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
const int = (max: number) => Math.floor(rnd() * max);

function number(): string {
  return pick([
    () => String(int(3000)),
    () => String(int(100)),
    () => '0',
    () => `-${int(500)}`,
    () => '99999999999',
    () => '1e3',
    () => `${int(100)}.${int(1000)}`,
    () => 'abc',
    () => '',
    () => '%20',
    () => '0x10',
    () => 'NaN',
    () => 'Infinity',
  ])();
}

function region(): string {
  return pick([
    () => 'full',
    () => 'square',
    () => `${number()},${number()},${number()},${number()}`,
    () => `${int(1200)},${int(900)},${1 + int(1200)},${1 + int(900)}`,
    () => `pct:${number()},${number()},${number()},${number()}`,
    () => `pct:${int(120)},${int(120)},${int(120)},${int(120)}`,
    () => pick(['Full', 'full;', 'squares', '%3C%3E', '..', '0,0,10', '0,0,10,10,10', '']),
  ])();
}

function size(): string {
  return pick([
    () => 'max',
    () => '^max',
    () => 'full',
    () => `${1 + int(1500)},`,
    () => `,${1 + int(1500)}`,
    () => `^${1 + int(3000)},`,
    () => `pct:${number()}`,
    () => `^pct:${int(300)}`,
    () => `${number()},${number()}`,
    () => `!${1 + int(800)},${1 + int(800)}`,
    () => `^!${1 + int(3000)},${1 + int(3000)}`,
    () => pick([',', '!,', '^', 'max^', '%5E', 'pct:', '!100,']),
  ])();
}

function rotation(): string {
  return pick([
    () => String(pick([0, 90, 180, 270])),
    () => `!${pick([0, 90, 180, 270])}`,
    () => `${int(360)}.${int(100)}`,
    () => number(),
    () => pick(['!!0', '360', '361', '-0', '%21', '']),
  ])();
}

function qualityFormat(): string {
  const quality = pick(['default', 'color', 'gray', 'bitonal', 'native', 'grey', 'Default', '', '%5B%5D']);
  const format = pick(['jpg', 'png', 'webp', 'tif', 'gif', 'jpg', 'jpg', 'jp2', 'pdf', 'bmp', 'JPG', '', 'jpg.png']);
  return pick([`${quality}.${format}`, `${quality}.${format}`, quality, `.${format}`]);
}

function identifier(): string {
  return pick([
    () => pick(ids),
    () => pick(ids),
    () => pick(ids),
    () => `${pick(ids)}@v1`,
    () => `${pick(ids)}%40v1`,
    () => `${pick(ids)}@v99`,
    () => bombId,
    () => truncatedId,
    () => pick(['..%2F..%2Fcatalog.json', '%2E%2E', 'nothere', 'a%00b', '%2Fetc%2Fpasswd', 'x'.repeat(300), '%E2%82%AC', '@', 'a@b@c']),
  ])();
}

function target(): string {
  const version = pick(['3', '3', '3', '2']);
  return pick([
    () => `/iiif/${version}/${identifier()}/${region()}/${size()}/${rotation()}/${qualityFormat()}`,
    () => `/iiif/${version}/${identifier()}/${region()}/${size()}/${rotation()}/${qualityFormat()}`,
    () => `/iiif/${version}/${identifier()}/${region()}/${size()}/${rotation()}/${qualityFormat()}`,
    () => `/iiif/${version}/${identifier()}/info.json`,
    () => `/iiif/${version}/${identifier()}`,
    () => `/iiif/${version}/${identifier()}/${region()}/${size()}`,
    () => `/iiif/${version}/${identifier()}/${region()}/${size()}/${rotation()}/x/${qualityFormat()}`,
  ])();
}

function get(path: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, agent, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out: ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : 0;
}

/** A PNG whose header claims 30000x30000 pixels in a few dozen bytes. */
function bombPng(): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), body]);
    const out = Buffer.alloc(body.length + 12);
    out.writeUInt32BE(body.length, 0);
    typed.copy(out, 4);
    out.writeUInt32BE(crc32(typed) >>> 0, body.length + 8);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(30000, 0);
  ihdr.writeUInt32BE(30000, 4);
  ihdr[8] = 8;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(30001 * 2))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-it-iiif-fuzz-'));
  data = join(root, 'data');
  const pictures = join(root, 'pictures');
  await mkdir(pictures, { recursive: true });
  await mkdir(data, { recursive: true });
  await writeFile(
    join(data, 'config.json'),
    JSON.stringify({ iiifPyramidThreshold: 500_000, iiifMaxArea: 4_000_000, iiifMaxWidth: 3000, iiifMaxHeight: 3000, iiifQueue: 16, iiifPrerender: false }),
  );
  await noiseImage(1200, 900, 1).jpeg({ quality: 80 }).toFile(join(pictures, 'pyramid.jpg'));
  await noiseImage(400, 300, 2).png().toFile(join(pictures, 'small.png'));
  await noiseImage(300, 500, 3).webp().toFile(join(pictures, 'tall.webp'));
  await noiseImage(320, 240, 4).jpeg().toFile(join(pictures, 'bomb.jpg'));
  await noiseImage(320, 240, 5).jpeg().toFile(join(pictures, 'cut.jpg'));
  const ingest = await runCli(['ingest', '--data', data, '--collection', 'Open', '--public', '--json', pictures], { timeoutMs: 120_000 });
  assert.equal(ingest.code, 0, ingest.stderr);
  for (const file of JSON.parse(lastLine(ingest.stdout)).files as { path: string; assetId: string }[]) {
    const name = file.path.split('/').pop()!;
    if (name === 'bomb.jpg') bombId = file.assetId;
    else if (name === 'cut.jpg') truncatedId = file.assetId;
    else ids.push(file.assetId);
  }
  // Behind the catalog's back: one original becomes a decompression bomb, one is cut short.
  const catalog = await readCatalog(data);
  const shaOf = (id: string) => catalog.assets.find((a) => a.id === id)!.versions[0]!.sha256;
  await writeFile(blobPath(data, shaOf(bombId)), bombPng());
  const cut = await readFile(blobPath(data, shaOf(truncatedId)));
  await writeFile(blobPath(data, shaOf(truncatedId)), cut.subarray(0, cut.length >> 1));
  server = await startServer(data);
}, { timeout: 300_000 });

after(async () => {
  agent.destroy();
  killChildren();
  await endExiftool();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('IIIF fuzz', { timeout: 600_000 }, () => {
  test(`${REQUESTS} generated requests: only the spec's statuses, text errors, no 500, no hang`, async (t) => {
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) {
          next++;
          const path = target();
          const response = await get(path).catch((error: Error) => ({ status: -1, type: '', body: Buffer.from(error.message) }));
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          const isImage = !path.endsWith('/info.json') && path.split('/').length >= 8;
          if (!ALLOWED.has(response.status)) failures.push(`${response.status} ${path} ${response.body.toString('utf8').slice(0, 200)}`);
          else if (response.status >= 400 && isImage && !response.type.startsWith('text/plain') && !response.type.startsWith('application/problem+json')) {
            failures.push(`${response.status} ${path}: ${response.type}`);
          }
        }
      }),
    );
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
    t.diagnostic(`statuses ${summary}`);
    assert.deepEqual(failures.slice(0, 20), [], summary);
    assert.ok((statuses.get(200) ?? 0) > REQUESTS / 20, `some requests were valid: ${summary}`);
    assert.ok((statuses.get(400) ?? 0) > REQUESTS / 5, `many were malformed: ${summary}`);
  });

  test('the bomb and the truncated file are 415, quickly', async () => {
    for (const id of [bombId, truncatedId]) {
      const started = Date.now();
      const response = await get(`/iiif/3/${id}/full/max/0/default.jpg`);
      assert.equal(response.status, 415, response.body.toString());
      assert.ok(Date.now() - started < 5000);
    }
  });

  test('a burst of heavy requests is limited (503 beyond the queue), memory stays bounded, the server lives', async (t) => {
    const heavy = Array.from({ length: 60 }, (_, i) => `/iiif/3/${ids[i % ids.length]}/full/^!${1500 + i},${1500 + i}/${i % 7}.5/default.png`);
    const burst = new Agent({ keepAlive: false, maxSockets: 60 });
    const results = await Promise.all(
      heavy.map(
        (path) =>
          new Promise<number>((resolve) => {
            const req = httpRequest({ host: '127.0.0.1', port: server.port, path, agent: burst, timeout: 60_000 }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            });
            req.on('error', () => resolve(-1));
            req.end();
          }),
      ),
    );
    burst.destroy();
    assert.ok(results.every((s) => s === 200 || s === 503), results.join(','));
    assert.ok(results.includes(200));
    const alive = await get(`/iiif/3/${ids[0]}/info.json`);
    assert.equal(alive.status, 200);
    const peak = await peakRss(server.pid);
    t.diagnostic(`burst: ${results.filter((s) => s === 200).length} rendered, ${results.filter((s) => s === 503).length} refused; peak RSS ${(peak / 1024 / 1024).toFixed(0)} MiB`);
    assert.ok(peak < PEAK_RSS_LIMIT, `peak RSS ${(peak / 1024 / 1024).toFixed(0)} MiB`);
  });
});
