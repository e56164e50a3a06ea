/**
 * IIIF web sources end to end: a library server whose `web` and `trusted_web` sources point at a
 * local fastify serving real (sharp-made) images, every request over HTTP. Asserted: info.json
 * and tiles of both kinds (pixels compared, EXIF orientation applied, a pyramid for the big
 * one), one upstream fetch however many requests, and every refusal with its status and code in
 * a plain-text IIIF error: pattern mismatch, unknown source, private address with the switch
 * off, redirect to another host, oversized body, non-image, decompression bomb, upstream 404,
 * slow upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { encodeBase64Url } from '../companion/iiif/web-source.ts';
import { startTestLibrary, type TestLibrary } from './helpers/test-library.ts';

const RED = [255, 0, 0];
const GREEN = [0, 255, 0];
const BLUE = [0, 0, 255];

let upstream: FastifyInstance;
let up = '';
let lib: TestLibrary;
let closed: TestLibrary;
/** Requests the upstream received, by path. */
const hits = new Map<string, number>();
const hitsOf = (path: string) => hits.get(path) ?? 0;
const images = new Map<string, { type: string; bytes: Buffer }>();

/** width x height: red | green over blue | white. */
async function quadrants(width: number, height: number): Promise<Buffer> {
  const w = width / 2;
  const h = height / 2;
  const block = (c: number[]) => ({ create: { width: w, height: h, channels: 3 as const, background: { r: c[0]!, g: c[1]!, b: c[2]! } } });
  return sharp({ create: { width, height, channels: 3, background: '#fff' } })
    .composite([
      { input: block(RED), left: 0, top: 0 },
      { input: block(GREEN), left: w, top: 0 },
      { input: block(BLUE), left: 0, top: h },
    ])
    .png()
    .toBuffer();
}

/** A PNG header claiming 30000x30000 pixels (900 MP) in a few bytes: a decompression bomb. */
function pngBomb(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(30_000, 0);
  ihdr.writeUInt32BE(30_000, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(30_001 * 4))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function get(origin: string, path: string, headers: Record<string, string> = {}) {
  const started = Date.now();
  const response = await fetch(`${origin}${path}`, { headers, redirect: 'manual', signal: AbortSignal.timeout(20_000) });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, text: body.toString('utf8'), ms: Date.now() - started };
}

async function pixel(bytes: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return Array.from(data.subarray(at, at + 3));
}

function near(actual: number[], expected: number[], what: string) {
  assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) <= 12), `${what}: ${actual} is not ${expected}`);
}

/** A refusal as IIIF image errors are: status, plain text naming the code. */
function refused(response: Awaited<ReturnType<typeof get>>, status: number, code: string) {
  assert.equal(response.status, status, response.text);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(response.text, new RegExp(`^${status} ${code}: `));
  assert.equal(response.headers.get('access-control-allow-origin'), '*');
}

const trusted = (path: string) => `tw:${encodeBase64Url(`${up}${path}`)}`;

before(async () => {
  images.set('/img/big.jpg', { type: 'image/jpeg', bytes: await sharp(await quadrants(1200, 800)).jpeg({ quality: 95 }).toBuffer() });
  images.set('/img/small.png', { type: 'image/png', bytes: await quadrants(200, 100) });
  images.set('/img/burst.png', { type: 'image/png', bytes: await quadrants(100, 50) });
  // Seen as 300x200, stored sideways with EXIF orientation 6.
  const sideways = await sharp(await quadrants(300, 200)).rotate(270).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  images.set('/files/oriented.jpg', { type: 'image/jpeg', bytes: sideways });
  images.set('/img/bomb.png', { type: 'image/png', bytes: pngBomb() });
  images.set('/img/text.jpg', { type: 'image/jpeg', bytes: Buffer.from('this is not an image, whatever the header says\n') });
  images.set('/img/huge.jpg', { type: 'image/jpeg', bytes: Buffer.alloc(400_000, 0xff) });

  upstream = Fastify({ logger: false, forceCloseConnections: true });
  upstream.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    hits.set(path, hitsOf(path) + 1);
    hits.set(`${request.headers.host}${path}`, hitsOf(`${request.headers.host}${path}`) + 1);
  });
  upstream.get('/*', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const image = images.get(path);
    if (image) return reply.type(image.type).header('etag', '"v1"').send(image.bytes);
    if (path === '/img/moved.jpg') return reply.code(302).header('location', '/img/small.png').send();
    if (path === '/img/to-other.jpg') {
      // Same server, another host name: still another host.
      return reply.code(302).header('location', `http://localhost:${(upstream.server.address() as AddressInfo).port}/img/big.jpg`).send();
    }
    if (path === '/img/chunked.jpg') {
      // No content-length: the cap applies while reading.
      reply.type('image/jpeg');
      return reply.send(Readable.from(Array.from({ length: 40 }, () => Buffer.alloc(10_000, 0xff))));
    }
    if (path === '/img/slow.jpg') return new Promise(() => undefined); // never answers
    return reply.code(404).send('no such file');
  });
  await upstream.listen({ host: '127.0.0.1', port: 0 });
  up = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;

  const sources = [
    { name: 'up', type: 'web' as const, url: `${up}/img/{name}` },
    { name: 'tw', type: 'trusted_web' as const, pattern: `${up.replaceAll('.', '\\.')}/(img|files)/[a-z-]+\\.(jpg|png)(\\?[a-z=]*)?` },
  ];
  const flags = {
    iiifWebSources: sources,
    iiifWebMaxBytes: 300_000,
    iiifWebTimeoutMs: 1_500,
    iiifPyramidThreshold: 500_000,
    iiifTileSize: 256,
    iiifPrerender: false,
  };
  lib = await startTestLibrary({ name: 'iiif-web', flags: { ...flags, iiifWebAllowPrivate: true } });
  closed = await startTestLibrary({ name: 'iiif-web-closed', flags: { ...flags, iiifWebAllowPrivate: false } });
});

after(async () => {
  await lib?.close();
  await closed?.close();
  await upstream?.close();
});

describe('web source (URL template)', () => {
  test('info.json of a web image', async () => {
    const res = await get(lib.origin, '/iiif/3/up:big.jpg/info.json');
    assert.equal(res.status, 200, res.text);
    const info = JSON.parse(res.text) as Record<string, unknown>;
    assert.equal(info.id, `${lib.origin}/iiif/3/up:big.jpg`);
    assert.equal(info.type, 'ImageService3');
    assert.equal(info.width, 1200);
    assert.equal(info.height, 800);
    assert.deepEqual(info.tiles, [{ width: 256, height: 256, scaleFactors: [1, 2, 4, 8] }]);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('cache-control') ?? '', /^public, max-age=\d+$/);
    const v2 = JSON.parse((await get(lib.origin, '/iiif/2/up%3Abig.jpg/info.json')).text) as Record<string, unknown>;
    assert.equal(v2['@id'], `${lib.origin}/iiif/2/up%3Abig.jpg`);
    assert.equal(v2.width, 1200);
  });

  test('tiles of a web image, from a pyramid', async () => {
    const red = await get(lib.origin, '/iiif/3/up:big.jpg/0,0,256,256/256,256/0/default.png');
    assert.equal(red.status, 200, red.text);
    assert.equal(red.headers.get('content-type'), 'image/png');
    near(await pixel(red.body, 128, 128), RED, 'top-left tile');
    const blue = await get(lib.origin, '/iiif/3/up:big.jpg/0,512,512,288/256,144/0/default.png');
    assert.equal(blue.status, 200, blue.text);
    near(await pixel(blue.body, 100, 100), BLUE, 'scale-factor-2 tile');
    const green = await get(lib.origin, '/iiif/2/up:big.jpg/full/300,/0/default.jpg');
    assert.equal(green.status, 200);
    near(await pixel(green.body, 225, 50), GREEN, 'thumbnail');
    const pyramids = await readdir(join(lib.dataDir, 'cache', 'iiif', 'pyramids'), { recursive: true });
    assert.ok(pyramids.some((f) => f.endsWith('.tif')), 'a pyramid was built');
  });

  test('the original is fetched once: later requests are served from the cache', async () => {
    const before = hitsOf('/img/big.jpg');
    assert.equal(before, 1);
    await get(lib.origin, '/iiif/3/up:big.jpg/info.json');
    const tile = await get(lib.origin, '/iiif/3/up:big.jpg/256,256,256,256/256,256/90/gray.jpg');
    assert.equal(tile.status, 200);
    assert.equal(hitsOf('/img/big.jpg'), before, 'no new upstream request');
  });

  test('concurrent first requests for one image fetch it once', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => get(lib.origin, `/iiif/3/up:burst.png/full/${20 + i},/0/default.png`)));
    for (const a of answers) assert.equal(a.status, 200, a.text);
    assert.equal(hitsOf('/img/burst.png'), 1);
  });

  test('the base URI redirects to info.json without fetching; manifests are for assets only', async () => {
    const res = await get(lib.origin, '/iiif/3/up:never-fetched.jpg');
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `${lib.origin}/iiif/3/up:never-fetched.jpg/info.json`);
    assert.equal(hitsOf('/img/never-fetched.jpg'), 0);
    assert.equal((await get(lib.origin, '/iiif/manifests/up:big.jpg')).status, 404);
  });

  test('a redirect on the same host is followed', async () => {
    const res = await get(lib.origin, '/iiif/3/up:moved.jpg/info.json');
    assert.equal(res.status, 200, res.text);
    assert.equal((JSON.parse(res.text) as { width: number }).width, 200);
  });
});

describe('trusted_web source (base64url URL and a pattern)', () => {
  test('info.json and a tile, EXIF orientation applied', async () => {
    const id = trusted('/files/oriented.jpg');
    const info = await get(lib.origin, `/iiif/3/${id}/info.json`);
    assert.equal(info.status, 200, info.text);
    const doc = JSON.parse(info.text) as { id: string; width: number; height: number };
    assert.equal(doc.id, `${lib.origin}/iiif/3/${id}`);
    assert.deepEqual([doc.width, doc.height], [300, 200]);
    const tile = await get(lib.origin, `/iiif/3/${id}/150,0,150,100/max/0/default.png`);
    assert.equal(tile.status, 200, tile.text);
    near(await pixel(tile.body, 75, 50), GREEN, 'top-right quadrant');
    const bottom = await get(lib.origin, `/iiif/3/${id}/0,100,150,100/75,/0/default.png`);
    near(await pixel(bottom.body, 30, 20), BLUE, 'bottom-left quadrant');
    assert.equal(hitsOf('/files/oriented.jpg'), 1);
  });

  test('a long URL (2000 characters) fits in an identifier', async () => {
    const id = trusted(`/img/small.png?pad=${'a'.repeat(1950)}`);
    assert.ok(id.length > 2600);
    const res = await get(lib.origin, `/iiif/3/${id}/full/max/0/default.png`);
    assert.equal(res.status, 200, res.text);
    near(await pixel(res.body, 150, 25), GREEN, 'top-right quadrant');
  });

  test('a URL outside the pattern is refused without a request', async () => {
    const res = await get(lib.origin, `/iiif/3/${trusted('/other/small.png')}/info.json`);
    assert.equal(res.status, 404);
    assert.equal(hitsOf('/other/small.png'), 0);
    refused(await get(lib.origin, `/iiif/3/${trusted('/other/small.png')}/full/max/0/default.jpg`), 404, 'ERR_ASSET_NOT_FOUND');
    refused(await get(lib.origin, '/iiif/3/tw:not*base64/full/max/0/default.jpg'), 404, 'ERR_ASSET_NOT_FOUND');
  });

  test('an unknown source is 404', async () => {
    refused(await get(lib.origin, '/iiif/3/nope:abc/full/max/0/default.jpg'), 404, 'ERR_ASSET_NOT_FOUND');
  });
});

describe('refusals', () => {
  test('a private address with the switch off: 403 ERR_ADDRESS_FORBIDDEN, nothing sent', async () => {
    const before = hitsOf('/img/small.png');
    refused(await get(closed.origin, '/iiif/3/up:small.png/full/max/0/default.jpg'), 403, 'ERR_ADDRESS_FORBIDDEN');
    const info = await get(closed.origin, '/iiif/3/up:small.png/info.json');
    assert.equal(info.status, 403);
    assert.equal((JSON.parse(info.text) as { code: string }).code, 'ERR_ADDRESS_FORBIDDEN');
    const problem = await get(closed.origin, `/iiif/3/${trusted('/img/small.png')}/full/max/0/default.jpg`, { accept: 'application/problem+json' });
    assert.equal(problem.status, 403);
    assert.equal((JSON.parse(problem.text) as { code: string }).code, 'ERR_ADDRESS_FORBIDDEN');
    assert.doesNotMatch(problem.text, /127\.0\.0\.1/, 'no resolved address in the answer');
    assert.equal(hitsOf('/img/small.png'), before);
  });

  test('a redirect to another host is refused', async () => {
    const res = await get(lib.origin, '/iiif/3/up:to-other.jpg/full/max/0/default.jpg');
    refused(res, 502, 'ERR_UPSTREAM_INVALID');
    assert.match(res.text, /another host/);
    assert.equal(hitsOf(`localhost:${new URL(up).port}/img/big.jpg`), 0);
  });

  test('an oversized body is refused, with or without content-length', async () => {
    for (const name of ['huge.jpg', 'chunked.jpg']) {
      const res = await get(lib.origin, `/iiif/3/up:${name}/full/max/0/default.jpg`);
      refused(res, 502, 'ERR_UPSTREAM_INVALID');
      assert.match(res.text, /larger than 300000/, name);
    }
  });

  test('something that is not an image is 415', async () => {
    refused(await get(lib.origin, '/iiif/3/up:text.jpg/full/max/0/default.jpg'), 415, 'ERR_NOT_AN_IMAGE');
  });

  test('a decompression bomb is 415', async () => {
    const res = await get(lib.origin, '/iiif/3/up:bomb.png/full/max/0/default.jpg');
    refused(res, 415, 'ERR_NOT_AN_IMAGE');
    assert.match(res.text, /larger than/);
  });

  test('an upstream 404 is 404', async () => {
    refused(await get(lib.origin, '/iiif/3/up:missing.jpg/full/max/0/default.jpg'), 404, 'ERR_ASSET_NOT_FOUND');
    assert.equal((await get(lib.origin, '/iiif/3/up:missing.jpg/info.json')).status, 404);
  });

  test('a slow upstream times out instead of hanging', async () => {
    const res = await get(lib.origin, '/iiif/3/up:slow.jpg/full/max/0/default.jpg');
    refused(res, 504, 'ERR_UPSTREAM_TIMEOUT');
    assert.ok(res.ms < 5_000, `answered in ${res.ms} ms`);
  });

  test('refused fetches are not cached as images; the server still serves', async () => {
    assert.equal((await get(lib.origin, '/iiif/3/up:text.jpg/info.json')).status, 415);
    assert.ok(hitsOf('/img/text.jpg') >= 2, 'asked again');
    assert.equal((await get(lib.origin, '/iiif/3/up:big.jpg/full/120,/0/default.jpg')).status, 200);
  });
});
