import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { installProblemHandlers } from './problem.ts';
import { contentDisposition, parseRange, sendFile, type SendFileOptions } from './send-file.ts';

const SMALL = 1024 * 1024;
const BIG = 32 * 1024 * 1024;
const LAST_MODIFIED = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
const UTF8_NAME = 'Ünïcødé 写真 "draft".jpg';

let dir: string;
let app: FastifyInstance;
let base: string;
let small: Buffer;
let smallPath: string;
let bigPath: string;
let etag: string;

function fileOptions(path: string, data: Buffer, extra: Partial<SendFileOptions> = {}): SendFileOptions {
  return {
    path,
    size: data.length,
    etag: `"${createHash('sha256').update(data).digest('hex')}"`,
    contentType: 'image/jpeg',
    cacheControl: 'private, max-age=300, immutable',
    lastModified: LAST_MODIFIED,
    ...extra,
  };
}

/** How many descriptors this process holds on `path`. */
function openFdsFor(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n += 1;
    } catch {
      // closed while listing
    }
  }
  return n;
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 50; i += 1) {
    if (check()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(`${base}${path}`, { method, headers });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-send-file-'));
  small = randomBytes(SMALL);
  smallPath = join(dir, 'small.bin');
  await writeFile(smallPath, small);
  const big = randomBytes(BIG);
  bigPath = join(dir, 'big.bin');
  await writeFile(bigPath, big);
  await writeFile(join(dir, 'empty.bin'), Buffer.alloc(0));
  const smallOptions = fileOptions(smallPath, small);
  etag = smallOptions.etag;

  // After an abort, fetch (undici) opens a spare connection that never sends a request; only a
  // forced close ends it without waiting for the server's header timeout.
  app = Fastify({ forceCloseConnections: true });
  installProblemHandlers(app);
  app.get('/small', (request, reply) => sendFile(request, reply, smallOptions));
  app.get('/named', (request, reply) =>
    sendFile(request, reply, { ...smallOptions, filename: UTF8_NAME, disposition: 'attachment' }),
  );
  app.get('/big', (request, reply) => sendFile(request, reply, fileOptions(bigPath, big)));
  app.get('/empty', (request, reply) =>
    sendFile(request, reply, fileOptions(join(dir, 'empty.bin'), Buffer.alloc(0))),
  );
  app.get('/missing', (request, reply) =>
    sendFile(request, reply, { ...smallOptions, path: join(dir, 'nope.bin') }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address && typeof address === 'object');
  base = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  await app?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('sendFile: whole file', () => {
  test('GET answers 200 with the exact bytes and every header', async () => {
    const { res, body } = await get('/small');
    assert.equal(res.status, 200);
    assert.ok(body.equals(small));
    assert.equal(res.headers.get('content-length'), String(SMALL));
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('etag'), etag);
    assert.equal(res.headers.get('cache-control'), 'private, max-age=300, immutable');
    assert.equal(res.headers.get('last-modified'), LAST_MODIFIED.toUTCString());
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('content-range'), null);
    assert.equal(res.headers.get('content-disposition'), null);
  });

  test('HEAD answers the headers of GET and no body, ignoring Range', async () => {
    for (const headers of [{}, { range: 'bytes=0-9' }] as Record<string, string>[]) {
      const { res, body } = await get('/small', headers, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(body.length, 0);
      assert.equal(res.headers.get('content-length'), String(SMALL));
      assert.equal(res.headers.get('etag'), etag);
      assert.equal(res.headers.get('content-type'), 'image/jpeg');
    }
  });

  test('a large file arrives whole and its descriptor is closed afterwards', async () => {
    const { res, body } = await get('/big');
    assert.equal(res.status, 200);
    assert.equal(body.length, BIG);
    await eventually(() => openFdsFor(bigPath) === 0, 'big file descriptor closed');
  });

  test('an empty file: 200 with no body; an int range is 416, a suffix range the whole (empty) file', async () => {
    const whole = await get('/empty');
    assert.equal(whole.res.status, 200);
    assert.equal(whole.res.headers.get('content-length'), '0');
    assert.equal(whole.body.length, 0);
    assert.equal((await get('/empty', { range: 'bytes=0-' })).res.status, 416);
    const suffix = await get('/empty', { range: 'bytes=-5' });
    assert.equal(suffix.res.status, 200);
    assert.equal(suffix.body.length, 0);
  });

  test('a file that vanished fails before any header, as a problem', async () => {
    const { res, body } = await get('/missing');
    assert.equal(res.status, 500);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json\b/);
    assert.equal(JSON.parse(body.toString()).code, 'ERR_INTERNAL');
  });
});

describe('sendFile: ranges', () => {
  const cases: [string, number, number][] = [
    ['bytes=0-99', 0, 99],
    ['bytes=100-', 100, SMALL - 1],
    ['bytes=-500', SMALL - 500, SMALL - 1],
    ['bytes=1000-99999999999', 1000, SMALL - 1],
    ['bytes=-99999999999', 0, SMALL - 1],
    ['BYTES=5-5', 5, 5],
    ['bytes= 7-8 ', 7, 8],
    [`bytes=${SMALL - 1}-`, SMALL - 1, SMALL - 1],
  ];
  for (const [range, start, end] of cases) {
    test(`${range} → 206 bytes ${start}-${end}`, async () => {
      const { res, body } = await get('/small', { range });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${SMALL}`);
      assert.equal(res.headers.get('content-length'), String(end - start + 1));
      assert.equal(res.headers.get('etag'), etag);
      assert.ok(body.equals(small.subarray(start, end + 1)), 'bytes differ');
    });
  }

  for (const range of [`bytes=${SMALL}-`, `bytes=${SMALL}-${SMALL + 10}`, 'bytes=-0', 'bytes=99999999999-']) {
    test(`${range} → 416 with Content-Range and a problem`, async () => {
      const { res, body } = await get('/small', { range });
      assert.equal(res.status, 416);
      assert.equal(res.headers.get('content-range'), `bytes */${SMALL}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json\b/);
      assert.equal(res.headers.get('cache-control'), null);
      const problem = JSON.parse(body.toString()) as { code: string; status: number };
      assert.equal(problem.code, 'ERR_RANGE_NOT_SATISFIABLE');
      assert.equal(problem.status, 416);
    });
  }

  for (const range of ['bytes=0-1,5-6', 'bytes=0-0, -1', 'bytes=5-1', 'bytes=abc', 'items=0-1', 'bytes=', 'bytes=1-2-3', 'bytes=-']) {
    test(`${range} → 200 whole file`, async () => {
      const { res, body } = await get('/small', { range });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-range'), null);
      assert.ok(body.equals(small));
    });
  }
});

describe('sendFile: conditional requests', () => {
  for (const inm of ['ETAG', '"other", ETAG', 'W/ETAG', '*']) {
    test(`If-None-Match: ${inm} → 304`, async () => {
      const value = inm.replace('ETAG', etag);
      const { res, body } = await get('/small', { 'if-none-match': value });
      assert.equal(res.status, 304);
      assert.equal(body.length, 0);
      assert.equal(res.headers.get('etag'), etag);
      assert.equal(res.headers.get('cache-control'), 'private, max-age=300, immutable');
    });
  }

  test('If-None-Match with other tags → 200', async () => {
    const { res, body } = await get('/small', { 'if-none-match': '"a", W/"b"' });
    assert.equal(res.status, 200);
    assert.ok(body.equals(small));
  });

  test('If-None-Match wins over Range, also for HEAD', async () => {
    assert.equal((await get('/small', { 'if-none-match': etag, range: 'bytes=0-1' })).res.status, 304);
    assert.equal((await get('/small', { 'if-none-match': etag }, 'HEAD')).res.status, 304);
  });

  test('If-Range matching the ETag or the exact date → 206', async () => {
    for (const ifRange of [etag, LAST_MODIFIED.toUTCString()]) {
      const { res, body } = await get('/small', { range: 'bytes=10-19', 'if-range': ifRange });
      assert.equal(res.status, 206, ifRange);
      assert.ok(body.equals(small.subarray(10, 20)));
    }
  });

  test('If-Range not matching (other tag, weak tag, other date) → 200 whole file', async () => {
    for (const ifRange of ['"other"', `W/${etag}`, new Date(LAST_MODIFIED.getTime() + 1000).toUTCString(), 'garbage']) {
      const { res, body } = await get('/small', { range: 'bytes=10-19', 'if-range': ifRange });
      assert.equal(res.status, 200, ifRange);
      assert.ok(body.equals(small));
    }
  });

  test('If-Range that does not match also skips the 416', async () => {
    const { res } = await get('/small', { range: `bytes=${SMALL}-`, 'if-range': '"other"' });
    assert.equal(res.status, 200);
  });
});

describe('sendFile: Content-Disposition', () => {
  test('a UTF-8 filename gets an ASCII fallback and filename*', async () => {
    const { res } = await get('/named', {}, 'HEAD');
    const value = res.headers.get('content-disposition') ?? '';
    assert.match(value, /^attachment; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+$/);
    assert.equal(value, `attachment; filename="Unic_de __ _draft_.jpg"; filename*=UTF-8''${encodeURIComponent(UTF8_NAME).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`);
    const encoded = /filename\*=UTF-8''(.*)$/.exec(value)![1]!;
    assert.equal(decodeURIComponent(encoded), UTF8_NAME);
  });

  test('contentDisposition cleans names', () => {
    assert.equal(contentDisposition('inline'), 'inline');
    assert.equal(contentDisposition('inline', 'photo.jpg'), 'inline; filename="photo.jpg"');
    assert.equal(contentDisposition('attachment', '../../etc/passwd'), 'attachment; filename="passwd"');
    assert.equal(contentDisposition('attachment', 'C:\\Users\\me\\a.tif'), 'attachment; filename="a.tif"');
    assert.equal(contentDisposition('inline', 'a\r\nSet-Cookie: x.jpg'), 'inline; filename="aSet-Cookie: x.jpg"');
    assert.equal(contentDisposition('inline', '100% "real".png'), `inline; filename="100_ _real_.png"; filename*=UTF-8''100%25%20%22real%22.png`);
    assert.equal(contentDisposition('inline', "it's (1).png"), `inline; filename="it's (1).png"`);
    assert.equal(contentDisposition('inline', 'café.jpg'), `inline; filename="cafe.jpg"; filename*=UTF-8''caf%C3%A9.jpg`);
    assert.equal(contentDisposition('inline', '..'), 'inline');
    assert.equal(contentDisposition('inline', 'dir/'), 'inline');
    // A lone surrogate does not throw: it is sent as U+FFFD.
    assert.equal(contentDisposition('inline', 'a\ud800.png'), `inline; filename="a_.png"; filename*=UTF-8''a%EF%BF%BD.png`);
  });
});

describe('parseRange', () => {
  test('grammar', () => {
    assert.deepEqual(parseRange(undefined, 10), { kind: 'none' });
    assert.deepEqual(parseRange('bytes=0-0', 10), { kind: 'range', start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=0-0,', 10), { kind: 'range', start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=-10', 10), { kind: 'range', start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=10-', 10), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-0', 10), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=0-1,2-3', 10), { kind: 'none' });
    assert.deepEqual(parseRange('bytes=+1-2', 10), { kind: 'none' });
    assert.deepEqual(parseRange('bytes=1.5-2', 10), { kind: 'none' });
  });
});

describe('sendFile: client abort', () => {
  test('aborting mid-download closes the file descriptor', async () => {
    assert.equal(openFdsFor(bigPath), 0);
    const controller = new AbortController();
    const res = await fetch(`${base}/big`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0);
    // The client reads no further, so the server stalls with the file open.
    await eventually(() => openFdsFor(bigPath) === 1, 'big file open while streaming');
    controller.abort();
    await reader.read().catch(() => undefined);
    await eventually(() => openFdsFor(bigPath) === 0, 'big file descriptor closed after abort');
  });
});
