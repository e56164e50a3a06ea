// The web originals cache against a real upstream on loopback, with a clock the test moves:
// freshness, conditional revalidation, replacement, stale-if-error, forgetting, eviction and
// a restart.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { isProtocolError } from '../../shared/errors.ts';
import { WebOrigins, type WebOriginsOptions } from './web-origins.ts';

let dir: string;
let server: Server;
let base = '';
let clock = 1_000_000;
/** What the upstream serves at /img/{name}: bytes and validator, or a status. */
const files = new Map<string, { bytes: Buffer; etag: string } | number>();
const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
const hits = (path: string) => seen.filter((s) => s.path === path).length;

const png = (width: number, colour: string) =>
  sharp({ create: { width, height: 40, channels: 3, background: colour } }).png({ compressionLevel: 0 }).toBuffer();

function origins(options: Partial<WebOriginsOptions> = {}): WebOrigins {
  return new WebOrigins({
    sources: [{ name: 'up', type: 'web', url: `${base}/img/{name}` }],
    dir: join(dir, 'web'),
    cacheBytes: 10 * 1024 * 1024,
    maxBytes: 5 * 1024 * 1024,
    timeoutMs: 2_000,
    allowPrivate: true,
    ttlSeconds: 60,
    now: () => clock,
    ...options,
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-web-origins-'));
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    seen.push({ path, headers: req.headers });
    const file = files.get(path);
    if (file === undefined) return res.writeHead(404).end();
    if (typeof file === 'number') return res.writeHead(file).end();
    if (req.headers['if-none-match'] === file.etag) return res.writeHead(304, { etag: file.etag }).end();
    res.writeHead(200, { 'content-type': 'image/png', etag: file.etag, 'content-length': file.bytes.length }).end(file.bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

beforeEach(async () => {
  await rm(join(dir, 'web'), { recursive: true, force: true });
  files.clear();
  seen.length = 0;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function origin(web: WebOrigins, name: string) {
  const lease = await web.acquire({ source: 'up', name });
  lease.release();
  return lease.origin;
}

describe('WebOrigins', () => {
  test('fresh for the TTL, then revalidated with the validator (304 keeps the original)', async () => {
    files.set('/img/a.png', { bytes: await png(64, '#f00'), etag: '"a1"' });
    const web = origins();
    await web.init();
    const first = await origin(web, 'a.png');
    assert.deepEqual(first.size, { width: 64, height: 40 });
    assert.equal(first.mediaType, 'image/png');
    assert.ok(existsSync(first.path));
    clock += 59_000;
    assert.equal((await origin(web, 'a.png')).key, first.key);
    assert.equal(hits('/img/a.png'), 1, 'fresh: not asked');
    clock += 2_000;
    assert.equal((await origin(web, 'a.png')).key, first.key);
    assert.equal(hits('/img/a.png'), 2, 'stale: asked again');
    assert.equal(seen.at(-1)!.headers['if-none-match'], '"a1"');
    assert.equal((await origin(web, 'a.png')).key, first.key);
    assert.equal(hits('/img/a.png'), 2, 'the 304 restarted the TTL');
  });

  test('a changed image replaces the original under a new content key; the old file stays until evicted', async () => {
    files.set('/img/b.png', { bytes: await png(64, '#f00'), etag: '"b1"' });
    const web = origins();
    await web.init();
    const old = await origin(web, 'b.png');
    files.set('/img/b.png', { bytes: await png(80, '#00f'), etag: '"b2"' });
    clock += 61_000;
    const fresh = await origin(web, 'b.png');
    assert.notEqual(fresh.key, old.key);
    assert.deepEqual(fresh.size, { width: 80, height: 40 });
    assert.ok(existsSync(old.path), 'a reader of the old file is not disturbed');
  });

  test('stale-if-error: an upstream 5xx serves the stale copy; a 404 forgets it', async () => {
    files.set('/img/c.png', { bytes: await png(64, '#0f0'), etag: '"c1"' });
    const web = origins();
    await web.init();
    const first = await origin(web, 'c.png');
    files.set('/img/c.png', 503);
    clock += 61_000;
    assert.equal((await origin(web, 'c.png')).key, first.key);
    files.delete('/img/c.png');
    await assert.rejects(web.acquire({ source: 'up', name: 'c.png' }), (e: unknown) => isProtocolError(e, 'ERR_ASSET_NOT_FOUND') && e.status === 404);
    files.set('/img/c.png', { bytes: await png(64, '#0f0'), etag: '"c1"' });
    const before = hits('/img/c.png');
    await origin(web, 'c.png');
    assert.equal(seen.at(-1)!.headers['if-none-match'], undefined, 'forgotten: fetched without a validator');
    assert.equal(hits('/img/c.png'), before + 1);
  });

  test('concurrent acquires fetch once', async () => {
    files.set('/img/d.png', { bytes: await png(64, '#ff0'), etag: '"d1"' });
    const web = origins();
    await web.init();
    const keys = await Promise.all(Array.from({ length: 8 }, () => origin(web, 'd.png')));
    assert.equal(new Set(keys.map((k) => k.key)).size, 1);
    assert.equal(hits('/img/d.png'), 1);
  });

  test('the originals cache is bounded (LRU), pinned originals survive, and it outlives a restart', async () => {
    const bytes = { e: await png(400, '#f0f'), f: await png(400, '#0ff'), h: await png(400, '#ff0') };
    for (const [name, b] of Object.entries(bytes)) files.set(`/img/${name}.png`, { bytes: b, etag: `"${name}"` });
    const largest = Math.max(...Object.values(bytes).map((b) => b.length));
    const web = origins({ cacheBytes: Math.floor(largest * 2.5) });
    await web.init();
    const leaseE = await web.acquire({ source: 'up', name: 'e.png' });
    const f = await origin(web, 'f.png');
    const h = await origin(web, 'h.png'); // over the bound: e is pinned, so f (least recent) goes
    assert.ok(existsSync(leaseE.origin.path), 'pinned while leased');
    assert.equal(web.originals.has(f.key), false);
    assert.equal(web.originals.has(h.key), true);
    leaseE.release();
    await origin(web, 'f.png'); // fetched again; now e is the least recent
    assert.equal(hits('/img/f.png'), 2);
    assert.equal(web.originals.has(leaseE.origin.key), false);
    assert.ok(web.originals.size.bytes <= Math.floor(largest * 2.5));

    const restarted = origins();
    await restarted.init();
    const before = seen.length;
    await origin(restarted, 'f.png');
    await origin(restarted, 'h.png');
    assert.equal(seen.length, before, 'served from disk after a restart');
  });

  test('a body over the cap is refused and nothing is kept', async () => {
    files.set('/img/g.png', { bytes: await png(400, '#123'), etag: '"g"' });
    const web = origins({ maxBytes: 1024 });
    await web.init();
    await assert.rejects(web.acquire({ source: 'up', name: 'g.png' }), (e: unknown) => isProtocolError(e, 'ERR_UPSTREAM_INVALID'));
    assert.equal(web.originals.size.entries, 0);
  });
});
