// Resumable uploads (tus 1.0) against a real server on a real socket: chunks, HEAD, an
// interrupted PATCH resumed, sha256 verification, version pushes with ifMatch, rights,
// limits, refused files leaving nothing behind, abandoned uploads swept; the sha256 declared
// after the bytes (Imagine-Sha256 on a final empty PATCH), honest and hostile.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import { startTestLibrary, type TestLibrary } from '../../test/helpers/test-library.ts';
import type { LibraryServices } from '../library/services.ts';
import { sweepAbandonedUploads, UPLOAD_IDLE_MS } from './uploads.ts';

const LIMIT = 64 * 1024 * 1024;
let dataDir: string;
let library: TestLibrary;
let services: LibraryServices;
let origin: string;
let admin: string;
let bob: string;
let pressId: string;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const listDir = (dir: string) => readdirSync(join(dataDir, dir)).sort();
/** A copy fetch's types accept as a body. */
const bodyOf = (data: Buffer) => new Uint8Array(data);

/** A JPEG of random noise: every call is a different file. */
async function makeJpeg(width: number, height: number): Promise<Buffer> {
  return sharp({
    create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } },
  })
    .jpeg({ quality: 90 })
    .toBuffer();
}

function uploadMetadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',');
}

function tusHeaders(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { 'tus-resumable': '1.0.0', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

async function create(
  size: number,
  metadata: Record<string, string>,
  options: { token?: string | null; headers?: Record<string, string> } = {},
): Promise<Response> {
  const token = options.token === null ? undefined : (options.token ?? admin);
  return fetch(`${origin}/api/v1/uploads`, {
    method: 'POST',
    headers: tusHeaders(token, { 'upload-length': String(size), 'upload-metadata': uploadMetadata(metadata), ...options.headers }),
  });
}

/** Creates an upload and answers its URL. */
async function createOk(file: Buffer, metadata: Record<string, string> = {}): Promise<string> {
  const res = await create(file.length, { filename: 'photo.jpg', sha256: sha256(file), ...metadata });
  assert.equal(res.status, 201, await res.text());
  const location = res.headers.get('location');
  assert.ok(location);
  return location;
}

function patch(url: string, offset: number, chunk: Buffer, token = admin): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: tusHeaders(token, { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }),
    body: bodyOf(chunk),
  });
}

function head(url: string, token: string | null = admin): Promise<Response> {
  return fetch(url, { method: 'HEAD', headers: tusHeaders(token ?? undefined) });
}

async function offsetOf(url: string): Promise<number> {
  const res = await head(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return Number(res.headers.get('upload-offset'));
}

async function problemOf(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(String(res.headers.get('content-type')), /^application\/problem\+json/);
  if (text === '') return {}; // a HEAD answer: the same headers, no body
  const problem = JSON.parse(text) as Record<string, unknown>;
  assert.equal(problem.code, code, text);
  return problem;
}

async function getAsset(id: string): Promise<{ currentVersion: string; versions: { id: string; sha256: string }[] }> {
  const res = await fetch(`${origin}/api/v1/assets/${id}`, { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as never;
}

/** A PATCH whose connection is cut after `sendBytes` of `chunk` reached the server. */
function interruptedPatch(url: string, offset: number, chunk: Buffer, sendBytes: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(url, {
      method: 'PATCH',
      headers: tusHeaders(admin, {
        'upload-offset': String(offset),
        'content-type': 'application/offset+octet-stream',
        'content-length': String(chunk.length),
      }),
    });
    req.on('error', () => undefined);
    req.on('response', (res) => res.resume());
    req.write(chunk.subarray(0, sendBytes), () => {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 300);
    });
  });
}

const catalogCounts = () => ({
  assets: services.library.catalog.data.assets.length,
  changes: services.library.catalog.data.changes.length,
});

before(async () => {
  library = await startTestLibrary({ name: 'uploads', flags: { maxUploadBytes: LIMIT } });
  ({ dataDir, services, origin, admin } = library);
  await services.auth.addUser({ name: 'bob' });
  bob = (await services.auth.createToken('bob')).token;
  pressId = (await services.library.createCollection({ name: 'Press' })).id;
});

after(() => library?.close());

describe('tus uploads', () => {
  let assetId: string;

  test('OPTIONS and discovery announce the endpoint and its limits', async () => {
    const res = await fetch(`${origin}/api/v1/uploads`, { method: 'OPTIONS' });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('tus-version'), '1.0.0');
    assert.equal(res.headers.get('tus-max-size'), String(LIMIT));
    assert.match(String(res.headers.get('tus-extension')), /creation/);
    assert.match(String(res.headers.get('tus-extension')), /termination/);
    const discovery = (await (await fetch(`${origin}/.well-known/imagine`)).json()) as { endpoints: Record<string, string> };
    assert.equal(discovery.endpoints.uploads, `${origin}/api/v1/uploads`);
  });

  test('a whole file in one PATCH creates an asset', async () => {
    const file = await makeJpeg(1200, 900);
    const res = await create(file.length, { filename: 'whole.jpg', sha256: sha256(file), comment: 'first' }, {
      headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'host=evil.example;proto=https' },
    });
    assert.equal(res.status, 201, await res.text());
    const url = String(res.headers.get('location'));
    assert.match(url, new RegExp(`^${origin}/api/v1/uploads/[A-Za-z0-9_-]+$`));
    assert.ok(res.headers.get('upload-expires'));
    assert.equal(listDir('uploads').length, 2); // the file and its .json info

    const done = await patch(url, 0, file);
    assert.equal(done.status, 204, await done.text());
    assert.equal(done.headers.get('upload-offset'), String(file.length));
    assetId = String(done.headers.get('imagine-asset'));
    assert.equal(done.headers.get('imagine-version'), 'v1');
    assert.equal(done.headers.get('location'), `${origin}/api/v1/assets/${assetId}`);

    const asset = await getAsset(assetId);
    assert.equal(asset.currentVersion, 'v1');
    assert.equal(asset.versions[0]?.sha256, sha256(file));
    assert.deepEqual(listDir('uploads'), []);
    assert.equal((await head(url)).status, 404);
  });

  test('three chunks, a HEAD between, an interrupted PATCH resumed from the offset HEAD reports', async () => {
    const file = await makeJpeg(2000, 1500);
    const third = Math.floor(file.length / 3);
    const parts = [file.subarray(0, third), file.subarray(third, 2 * third), file.subarray(2 * third)];
    const url = await createOk(file, { filename: 'big.jpg' });
    assert.equal(await offsetOf(url), 0);

    const first = await patch(url, 0, parts[0]!);
    assert.equal(first.status, 204);
    assert.equal(first.headers.get('upload-offset'), String(third));
    assert.equal(first.headers.get('imagine-asset'), null);
    assert.equal(await offsetOf(url), third);
    const headRes = await head(url);
    assert.equal(headRes.headers.get('upload-length'), String(file.length));

    // Half of the second part, then the connection drops.
    const half = Math.floor(parts[1]!.length / 2);
    await interruptedPatch(url, third, parts[1]!, half);
    const received = await offsetOf(url);
    assert.ok(received > third && received <= third + half, `offset ${received} after an interrupted PATCH`);

    // A PATCH at a stale offset is refused (409), the upload unchanged.
    await problemOf(await patch(url, third, parts[1]!), 409, 'ERR_CONFLICT');
    assert.equal(await offsetOf(url), received);

    const rest = await patch(url, received, file.subarray(received, 2 * third));
    assert.equal(rest.status, 204);
    assert.equal(await offsetOf(url), 2 * third);

    const last = await patch(url, 2 * third, parts[2]!);
    assert.equal(last.status, 204, await last.text());
    const id = String(last.headers.get('imagine-asset'));
    const asset = await getAsset(id);
    assert.equal(asset.versions[0]?.sha256, sha256(file));
    assert.deepEqual(listDir('uploads'), []);
  });

  test('a file that does not match its declared sha256 is refused on the last PATCH and leaves nothing', async () => {
    const file = await makeJpeg(400, 300);
    const before = catalogCounts();
    const res = await create(file.length, { filename: 'wrong.jpg', sha256: sha256(Buffer.from('something else')) });
    assert.equal(res.status, 201);
    const url = String(res.headers.get('location'));
    await problemOf(await patch(url, 0, file), 400, 'ERR_DIGEST_MISMATCH');
    assert.deepEqual(catalogCounts(), before);
    assert.equal(services.library.findByHash(sha256(file)), undefined);
    assert.equal((await head(url)).status, 404);
    assert.deepEqual(listDir('uploads'), []);
    assert.deepEqual(listDir('tmp'), []);
  });

  test('a version push with the right ifMatch makes a new version; a stale or missing one is refused at creation', async () => {
    const file = await makeJpeg(800, 600);
    const url = await createOk(file, { filename: 'whole-edited.jpg', asset: assetId, ifMatch: '"v1"', comment: 'retouched' });
    const done = await patch(url, 0, file);
    assert.equal(done.status, 204, await done.text());
    assert.equal(done.headers.get('imagine-asset'), assetId);
    assert.equal(done.headers.get('imagine-version'), 'v2');
    const asset = await getAsset(assetId);
    assert.deepEqual(asset.versions.map((v) => v.id), ['v1', 'v2']);
    assert.equal(asset.versions[1]?.sha256, sha256(file));

    const other = await makeJpeg(300, 200);
    const meta = { filename: 'x.jpg', sha256: sha256(other) };
    const stale = await problemOf(await create(other.length, { ...meta, asset: assetId, ifMatch: 'v1' }), 412, 'ERR_PRECONDITION_FAILED');
    assert.equal(stale.currentVersion, 'v2');
    await problemOf(await create(other.length, { ...meta, asset: assetId }), 428, 'ERR_PRECONDITION_REQUIRED');
    await problemOf(await create(other.length, { ...meta, asset: 'nope', ifMatch: 'v1' }), 404, 'ERR_ASSET_NOT_FOUND');
    assert.deepEqual(listDir('uploads'), []);
  });

  test('a push that went stale while uploading is refused at the end (412) and nothing changes', async () => {
    const file = await makeJpeg(500, 400);
    const url = await createOk(file, { filename: 'late.jpg', asset: assetId, ifMatch: 'v2' });
    // Someone else pushes v3 meanwhile, through the plain POST route.
    const meanwhile = await makeJpeg(300, 300);
    const pushed = await fetch(`${origin}/api/v1/assets/${assetId}/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'if-match': '"v2"', 'content-type': 'image/jpeg', 'imagine-filename': 'meanwhile.jpg' },
      body: bodyOf(meanwhile),
    });
    assert.equal(pushed.status, 201, await pushed.text());
    const before = catalogCounts();
    const problem = await problemOf(await patch(url, 0, file), 412, 'ERR_PRECONDITION_FAILED');
    assert.equal(problem.currentVersion, 'v3');
    assert.deepEqual(catalogCounts(), before);
    assert.equal((await getAsset(assetId)).currentVersion, 'v3');
    assert.deepEqual(listDir('uploads'), []);
    assert.deepEqual(listDir('tmp'), []);
  });

  test('the whole file in the creating POST (creation-with-upload) works too', async () => {
    const file = await makeJpeg(640, 480);
    const res = await fetch(`${origin}/api/v1/uploads`, {
      method: 'POST',
      headers: tusHeaders(admin, {
        'upload-length': String(file.length),
        'upload-metadata': uploadMetadata({ filename: 'one-shot.jpg', sha256: sha256(file), collection: pressId }),
        'content-type': 'application/offset+octet-stream',
      }),
      body: bodyOf(file),
    });
    assert.equal(res.status, 201, await res.text());
    const id = String(res.headers.get('imagine-asset'));
    assert.equal(res.headers.get('imagine-version'), 'v1');
    assert.equal(services.library.getAsset(id).collections[0], pressId);
    assert.deepEqual(listDir('uploads'), []);
  });

  test('no token → 401; a bad token → 401; over the size limit → 413; bad metadata → 400', async () => {
    const file = await makeJpeg(100, 100);
    const meta = { filename: 'a.jpg', sha256: sha256(file) };
    await problemOf(await create(file.length, meta, { token: null }), 401, 'ERR_UNAUTHORIZED');
    await problemOf(await create(file.length, meta, { token: `imt_${'x'.repeat(43)}` }), 401, 'ERR_TOKEN_INVALID');
    await problemOf(await create(LIMIT + 1, meta), 413, 'ERR_PAYLOAD_TOO_LARGE');
    await problemOf(await create(file.length, { filename: 'a.jpg', sha256: sha256(file).slice(1) }), 400, 'ERR_VALIDATION');
    await problemOf(await create(file.length, { filename: 'a.jpg', sha256: sha256(file).toUpperCase() }), 400, 'ERR_VALIDATION');
    await problemOf(await create(file.length, { sha256: sha256(file) }), 400, 'ERR_FILENAME_INVALID');
    const concatenated = await fetch(`${origin}/api/v1/uploads`, {
      method: 'POST',
      headers: tusHeaders(admin, { 'upload-length': String(file.length), 'upload-concat': 'partial', 'upload-metadata': uploadMetadata(meta) }),
    });
    await problemOf(concatenated, 400, 'ERR_BAD_REQUEST');
    assert.deepEqual(listDir('uploads'), []);
  });

  test('rights are checked at creation, and an upload is only visible to the user who made it', async () => {
    const file = await makeJpeg(200, 150);
    const meta = { filename: 'b.jpg', sha256: sha256(file) };
    await problemOf(await create(file.length, { ...meta, collection: pressId }, { token: bob }), 403, 'ERR_FORBIDDEN');
    await problemOf(await create(file.length, { ...meta, asset: assetId, ifMatch: 'v3' }, { token: bob }), 404, 'ERR_ASSET_NOT_FOUND');

    const url = await createOk(file, meta); // admin's
    for (const res of [
      await head(url, bob),
      await patch(url, 0, file, bob),
      await fetch(url, { method: 'DELETE', headers: tusHeaders(bob) }),
    ]) {
      await problemOf(res, 404, 'ERR_UPLOAD_NOT_FOUND');
    }
    await problemOf(await head(url, null), 401, 'ERR_UNAUTHORIZED');
    assert.equal(await offsetOf(url), 0);

    // Only administrators add assets outside a collection; with a write grant Bob may add his own.
    await problemOf(await create(file.length, meta, { token: bob }), 403, 'ERR_FORBIDDEN');
    const studioId = (await services.library.createCollection({ name: 'Bob studio' })).id;
    await services.auth.grant('bob', studioId, 'write');
    const own = await create(file.length, { ...meta, collection: studioId }, { token: bob });
    assert.equal(own.status, 201);
    const done = await patch(String(own.headers.get('location')), 0, file, bob);
    assert.equal(done.status, 204, await done.text());
    assert.equal(services.library.getAsset(String(done.headers.get('imagine-asset'))).createdBy, 'bob');

    // DELETE terminates the admin's upload: files gone, HEAD 404.
    const terminated = await fetch(url, { method: 'DELETE', headers: tusHeaders(admin) });
    assert.equal(terminated.status, 204);
    assert.equal((await head(url)).status, 404);
    assert.deepEqual(listDir('uploads'), []);
  });

  test('a file that is not an image is refused when complete, leaving the catalog and the folders as they were', async () => {
    const file = randomBytes(200_000);
    const before = catalogCounts();
    const url = await createOk(file, { filename: 'noise.jpg' });
    await patch(url, 0, file.subarray(0, 100_000));
    await problemOf(await patch(url, 100_000, file.subarray(100_000)), 415, 'ERR_NOT_AN_IMAGE');
    assert.deepEqual(catalogCounts(), before);
    assert.equal(services.library.findByHash(sha256(file)), undefined);
    assert.deepEqual(listDir('uploads'), []);
    assert.deepEqual(listDir('tmp'), []);
  });

  test('abandoned uploads are swept after a day without a write', async () => {
    const file = await makeJpeg(300, 200);
    const url = await createOk(file, { filename: 'left.jpg' });
    await patch(url, 0, file.subarray(0, 1000));
    assert.equal(await sweepAbandonedUploads(join(dataDir, 'uploads'), { maxIdleMs: UPLOAD_IDLE_MS }), 0);
    assert.equal(await offsetOf(url), 1000);
    const later = Date.now() + UPLOAD_IDLE_MS + 60_000;
    assert.equal(await sweepAbandonedUploads(join(dataDir, 'uploads'), { maxIdleMs: UPLOAD_IDLE_MS, now: later }), 1);
    assert.deepEqual(listDir('uploads'), []);
    assert.equal((await head(url)).status, 404);
  });
});

describe('PATCH, received natively: broken and hostile requests leave the upload as it was', () => {
  /** A raw PATCH: any headers, a body sent with Content-Length or chunked, the answer read. */
  function rawPatch(
    url: string,
    headers: Record<string, string>,
    body: Buffer,
    options: { chunked?: boolean } = {},
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method: 'PATCH', headers: { ...headers, ...(options.chunked ? {} : { 'content-length': String(body.length) }) } });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      });
      if (options.chunked) {
        // Several chunks, so the server sees them arrive one by one.
        for (let at = 0; at < body.length; at += 16_384) req.write(body.subarray(at, at + 16_384));
        req.end();
      } else req.end(body);
    });
  }
  const codeOf = (text: string) => (JSON.parse(text) as { code: string }).code;

  test('Tus-Resumable, Content-Type, Upload-Offset and Upload-Length are checked before a byte is taken', async () => {
    const file = await makeJpeg(300, 200);
    const url = await createOk(file, { filename: 'checked.jpg' });
    const good = { 'tus-resumable': '1.0.0', authorization: `Bearer ${admin}`, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' };
    const cases: Array<[Record<string, string | undefined>, number, string]> = [
      [{ 'tus-resumable': undefined }, 412, 'ERR_BAD_REQUEST'],
      [{ 'tus-resumable': '0.2.2' }, 412, 'ERR_BAD_REQUEST'],
      [{ 'content-type': undefined }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      [{ 'content-type': 'image/jpeg' }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      [{ 'upload-offset': undefined }, 400, 'ERR_BAD_REQUEST'],
      [{ 'upload-offset': '-1' }, 400, 'ERR_BAD_REQUEST'],
      [{ 'upload-offset': '01' }, 400, 'ERR_BAD_REQUEST'],
      [{ 'upload-offset': '1e3' }, 400, 'ERR_BAD_REQUEST'],
      [{ 'upload-length': String(file.length + 1) }, 400, 'ERR_BAD_REQUEST'],
      [{ 'upload-length': '12kB' }, 400, 'ERR_BAD_REQUEST'],
      [{ 'upload-offset': '10' }, 409, 'ERR_CONFLICT'],
    ];
    for (const [change, status, code] of cases) {
      const headers = Object.fromEntries(Object.entries({ ...good, ...change }).filter((e): e is [string, string] => e[1] !== undefined));
      const res = await rawPatch(url, headers, file);
      assert.equal(res.status, status, `${JSON.stringify(change)}: ${res.text}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(codeOf(res.text), code, JSON.stringify(change));
      assert.equal(await offsetOf(url), 0, JSON.stringify(change));
    }
    const conflict = await rawPatch(url, { ...good, 'upload-offset': '10' }, file);
    assert.equal((JSON.parse(conflict.text) as { offset: number }).offset, 0, 'the 409 tells the offset');
    // The connection still works after the refusals: the whole file lands.
    const done = await patch(url, 0, file);
    assert.equal(done.status, 204, await done.text());
    assert.ok(done.headers.get('imagine-asset'));
    assert.equal(done.headers.get('tus-resumable'), '1.0.0');
  });

  test('more bytes than the upload has left: 413, by Content-Length before reading, or chunked, dropping the PATCH', async () => {
    const file = await makeJpeg(300, 200);
    const url = await createOk(file, { filename: 'too-long.jpg' });
    const headers = { 'tus-resumable': '1.0.0', authorization: `Bearer ${admin}`, 'content-type': 'application/offset+octet-stream' };
    assert.equal((await patch(url, 0, file.subarray(0, 1000))).status, 204);
    const longer = Buffer.concat([file.subarray(1000), Buffer.alloc(100_000, 7)]);
    const declared = await rawPatch(url, { ...headers, 'upload-offset': '1000' }, longer);
    assert.equal(declared.status, 413, declared.text);
    assert.equal(codeOf(declared.text), 'ERR_PAYLOAD_TOO_LARGE');
    assert.equal(await offsetOf(url), 1000);
    const chunked = await rawPatch(url, { ...headers, 'upload-offset': '1000' }, longer, { chunked: true });
    assert.equal(chunked.status, 413, chunked.text);
    assert.equal(await offsetOf(url), 1000, 'none of the refused PATCH is kept');
    // A chunked PATCH of exactly the rest is fine.
    const rest = await rawPatch(url, { ...headers, 'upload-offset': '1000' }, file.subarray(1000), { chunked: true });
    assert.equal(rest.status, 204, rest.text);
    assert.ok(rest.headers['imagine-asset']);
    assert.deepEqual(listDir('uploads'), []);
  });

  test('resumed with other bytes than declared: the file is read back and refused (digest mismatch)', async () => {
    const file = await makeJpeg(400, 300);
    const other = Buffer.from(file);
    other.writeUInt8(other.readUInt8(file.length - 100) ^ 0xff, file.length - 100);
    const half = Math.floor(file.length / 2);
    const url = await createOk(file, { filename: 'swapped.jpg' });
    assert.equal((await patch(url, 0, file.subarray(0, half))).status, 204);
    await problemOf(await patch(url, half, other.subarray(half)), 400, 'ERR_DIGEST_MISMATCH');
    assert.equal((await head(url)).status, 404);
    assert.deepEqual(listDir('uploads'), []);
  });

  test('a request that wants a stalled PATCH\'s upload takes it over: what arrived is kept, the upload resumes', async () => {
    const file = await makeJpeg(1600, 1200);
    const url = await createOk(file, { filename: 'stalled.jpg' });
    const half = Math.floor(file.length / 2);
    // The first PATCH sends half its body, then nothing more (its connection stays open).
    const stalled = new Promise<{ status: number; connection?: string }>((resolve, reject) => {
      const req = httpRequest(url, {
        method: 'PATCH',
        headers: tusHeaders(admin, { 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(file.length) }),
      });
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, connection: res.headers.connection });
      });
      req.write(file.subarray(0, half));
    });
    await new Promise((r) => setTimeout(r, 300));
    const offset = await offsetOf(url); // HEAD takes the lock: the stalled PATCH stops
    assert.equal(offset, half);
    const first = await stalled;
    assert.equal(first.status, 409);
    assert.equal(first.connection, 'close');
    const rest = await patch(url, offset, file.subarray(offset));
    assert.equal(rest.status, 204, await rest.text());
    const asset = await getAsset(String(rest.headers.get('imagine-asset')));
    assert.equal(asset.versions[0]?.sha256, sha256(file));
  });

  test('every byte there but never finished (the server stopped in between): an empty PATCH at the end finishes it', async () => {
    const file = await makeJpeg(300, 200);
    const url = await createOk(file, { filename: 'unfinished.jpg' });
    const id = url.slice(url.lastIndexOf('/') + 1);
    writeFileSync(join(dataDir, 'uploads', id), file); // as if the last PATCH's bytes landed and the server died
    assert.equal(await offsetOf(url), file.length);
    const done = await patch(url, file.length, Buffer.alloc(0));
    assert.equal(done.status, 204, await done.text());
    const asset = await getAsset(String(done.headers.get('imagine-asset')));
    assert.equal(asset.versions[0]?.sha256, sha256(file));
    assert.equal((await head(url)).status, 404);
  });
});

describe('the sha256 declared after the bytes: Imagine-Sha256 on a final empty PATCH', () => {
  /** Creates an upload without a sha256 and answers its URL. */
  async function createDeferred(file: Buffer, metadata: Record<string, string> = {}): Promise<string> {
    const res = await create(file.length, { filename: 'late.jpg', ...metadata });
    assert.equal(res.status, 201, await res.text());
    return String(res.headers.get('location'));
  }
  function finalPatch(url: string, offset: number, digest: string | undefined, body: Buffer = Buffer.alloc(0)): Promise<Response> {
    return fetch(url, {
      method: 'PATCH',
      headers: tusHeaders(admin, {
        'upload-offset': String(offset),
        'content-type': 'application/offset+octet-stream',
        ...(digest === undefined ? {} : { 'imagine-sha256': digest }),
      }),
      body: bodyOf(body),
    });
  }
  const uploadsLeft = () => listDir('uploads').length;

  test('the last byte does not finish the upload; the final PATCH with the right digest does', async () => {
    const file = await makeJpeg(800, 600);
    const url = await createDeferred(file, { comment: 'declared late' });
    const before = catalogCounts();
    const data = await patch(url, 0, file);
    assert.equal(data.status, 204, await data.text());
    assert.equal(data.headers.get('upload-offset'), String(file.length));
    assert.equal(data.headers.get('imagine-asset'), null);
    assert.ok(data.headers.get('upload-expires'));
    assert.deepEqual(catalogCounts(), before, 'nothing committed before the digest');
    assert.equal(services.library.findByHash(sha256(file)), undefined);
    assert.equal(await offsetOf(url), file.length);
    const done = await finalPatch(url, file.length, sha256(file));
    assert.equal(done.status, 204, await done.text());
    const id = String(done.headers.get('imagine-asset'));
    assert.equal(done.headers.get('imagine-version'), 'v1');
    assert.equal(done.headers.get('location'), `${origin}/api/v1/assets/${id}`);
    assert.equal((await getAsset(id)).versions[0]?.sha256, sha256(file));
    assert.equal((await head(url)).status, 404);
    assert.equal(uploadsLeft(), 0);
  });

  test('bytes in several PATCHes (read back from disk) and in the creating POST work the same', async () => {
    const file = await makeJpeg(600, 400);
    const url = await createDeferred(file);
    const half = Math.floor(file.length / 2);
    assert.equal((await patch(url, 0, file.subarray(0, half))).status, 204);
    assert.equal((await patch(url, half, file.subarray(half))).status, 204);
    const done = await finalPatch(url, file.length, sha256(file));
    assert.equal(done.status, 204, await done.text());
    assert.equal((await getAsset(String(done.headers.get('imagine-asset')))).versions[0]?.sha256, sha256(file));

    const other = await makeJpeg(500, 300);
    const oneShot = await fetch(`${origin}/api/v1/uploads`, {
      method: 'POST',
      headers: tusHeaders(admin, {
        'upload-length': String(other.length),
        'upload-metadata': uploadMetadata({ filename: 'one-shot-late.jpg' }),
        'content-type': 'application/offset+octet-stream',
      }),
      body: bodyOf(other),
    });
    assert.equal(oneShot.status, 201, await oneShot.text());
    assert.equal(oneShot.headers.get('imagine-asset'), null);
    const oneShotUrl = String(oneShot.headers.get('location'));
    assert.equal(await offsetOf(oneShotUrl), other.length);
    const finished = await finalPatch(oneShotUrl, other.length, sha256(other));
    assert.equal(finished.status, 204, await finished.text());
    assert.equal((await getAsset(String(finished.headers.get('imagine-asset')))).versions[0]?.sha256, sha256(other));
    assert.equal(uploadsLeft(), 0);
  });

  test('a wrong digest is ERR_DIGEST_MISMATCH: nothing committed, the upload gone', async () => {
    const file = await makeJpeg(400, 300);
    const url = await createDeferred(file);
    assert.equal((await patch(url, 0, file)).status, 204);
    const before = catalogCounts();
    await problemOf(await finalPatch(url, file.length, sha256(Buffer.from('something else'))), 400, 'ERR_DIGEST_MISMATCH');
    assert.deepEqual(catalogCounts(), before);
    assert.equal(services.library.findByHash(sha256(file)), undefined);
    assert.equal((await head(url)).status, 404);
    assert.equal(uploadsLeft(), 0);
    assert.deepEqual(listDir('tmp'), []);
  });

  test('without its final PATCH the upload never becomes a version: HEAD shows every byte, an empty PATCH without the digest is refused, the sweep removes it', async () => {
    const file = await makeJpeg(300, 300);
    const url = await createDeferred(file);
    const before = catalogCounts();
    assert.equal((await patch(url, 0, file)).status, 204);
    const waiting = await head(url);
    assert.equal(waiting.status, 200);
    assert.equal(waiting.headers.get('upload-offset'), String(file.length));
    assert.equal(waiting.headers.get('upload-length'), String(file.length));
    await problemOf(await finalPatch(url, file.length, undefined), 400, 'ERR_VALIDATION');
    assert.equal(await offsetOf(url), file.length, 'still waiting');
    assert.deepEqual(catalogCounts(), before);
    assert.equal(services.library.findByHash(sha256(file)), undefined);
    const later = Date.now() + UPLOAD_IDLE_MS + 60_000;
    assert.equal(await sweepAbandonedUploads(join(dataDir, 'uploads'), { maxIdleMs: UPLOAD_IDLE_MS, now: later }), 1);
    assert.equal((await head(url)).status, 404);
    assert.deepEqual(catalogCounts(), before);
  });

  test('Imagine-Sha256 before the end, malformed, or unlike the creation\'s sha256: 400, the upload unchanged', async () => {
    const file = await makeJpeg(300, 200);
    const digest = sha256(file);
    const url = await createDeferred(file);
    // On a PATCH that carries bytes (not the final one): refused before a byte is written.
    await problemOf(await finalPatch(url, 0, digest, file), 400, 'ERR_VALIDATION');
    assert.equal(await offsetOf(url), 0);
    assert.equal((await patch(url, 0, file.subarray(0, 1000))).status, 204);
    await problemOf(await finalPatch(url, 1000, digest, file.subarray(1000)), 400, 'ERR_VALIDATION');
    await problemOf(await finalPatch(url, 1000, digest), 400, 'ERR_VALIDATION'); // empty, but not at the end
    assert.equal(await offsetOf(url), 1000);
    assert.equal((await patch(url, 1000, file.subarray(1000))).status, 204);
    // Malformed: upper case, short, not hex, two values.
    for (const bad of [digest.toUpperCase(), digest.slice(1), 'z'.repeat(64), `${digest}, ${digest}`]) {
      await problemOf(await finalPatch(url, file.length, bad), 400, 'ERR_VALIDATION');
    }
    assert.equal(await offsetOf(url), file.length, 'still waiting, nothing committed');
    assert.equal(services.library.findByHash(digest), undefined);
    const done = await finalPatch(url, file.length, digest);
    assert.equal(done.status, 204, await done.text());
    assert.ok(done.headers.get('imagine-asset'));

    // Declared at creation too: the final PATCH may repeat it, not change it.
    const second = await makeJpeg(320, 200);
    const declared = await createOk(second, { filename: 'both.jpg' });
    const id = declared.slice(declared.lastIndexOf('/') + 1);
    writeFileSync(join(dataDir, 'uploads', id), second); // every byte landed, the server stopped before finishing
    await problemOf(await finalPatch(declared, second.length, digest), 400, 'ERR_VALIDATION');
    assert.equal(await offsetOf(declared), second.length);
    const same = await finalPatch(declared, second.length, sha256(second));
    assert.equal(same.status, 204, await same.text());
    assert.equal((await getAsset(String(same.headers.get('imagine-asset')))).versions[0]?.sha256, sha256(second));
    assert.equal(uploadsLeft(), 0);
  });

  test('idempotency: a key that finished answers its result at creation, and a second upload with it makes no second version', async () => {
    const file = await makeJpeg(350, 250);
    const key = `late-${randomBytes(6).toString('hex')}`;
    const url = await createDeferred(file, { idempotencyKey: key });
    const twin = await createDeferred(file, { idempotencyKey: key }); // a retry whose first attempt was not finished yet
    assert.equal((await patch(url, 0, file)).status, 204);
    const done = await finalPatch(url, file.length, sha256(file));
    assert.equal(done.status, 204, await done.text());
    const id = String(done.headers.get('imagine-asset'));
    const replay = await create(file.length, { filename: 'late.jpg', idempotencyKey: key });
    assert.equal(replay.status, 200);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.headers.get('imagine-asset'), id);
    assert.equal(replay.headers.get('imagine-version'), done.headers.get('imagine-version'));
    const before = catalogCounts();
    assert.equal((await patch(twin, 0, file)).status, 204);
    const again = await finalPatch(twin, file.length, sha256(file));
    assert.equal(again.status, 204, await again.text());
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('imagine-asset'), id);
    assert.deepEqual(catalogCounts(), before);
    assert.equal((await getAsset(id)).versions.length, 1);
    assert.equal(uploadsLeft(), 0);
  });

  test('a version push whose base went stale before the final PATCH is refused there (412), nothing changes', async () => {
    const base = await makeJpeg(300, 220);
    const url = await createDeferred(base);
    assert.equal((await patch(url, 0, base)).status, 204);
    const created = await finalPatch(url, base.length, sha256(base));
    const id = String(created.headers.get('imagine-asset'));
    const file = await makeJpeg(330, 220);
    const push = await createDeferred(file, { asset: id, ifMatch: 'v1' });
    assert.equal((await patch(push, 0, file)).status, 204);
    const meanwhile = await makeJpeg(200, 200);
    const pushed = await fetch(`${origin}/api/v1/assets/${id}/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'if-match': '"v1"', 'content-type': 'image/jpeg', 'imagine-filename': 'meanwhile.jpg' },
      body: bodyOf(meanwhile),
    });
    assert.equal(pushed.status, 201, await pushed.text());
    const before = catalogCounts();
    const problem = await problemOf(await finalPatch(push, file.length, sha256(file)), 412, 'ERR_PRECONDITION_FAILED');
    assert.equal(problem.currentVersion, 'v2');
    assert.deepEqual(catalogCounts(), before);
    assert.equal((await getAsset(id)).currentVersion, 'v2');
    assert.equal((await head(push)).status, 404);
    assert.equal(uploadsLeft(), 0);
  });
});

describe('a deferred length (tus creation-defer-length): a file sent while it is being written', () => {
  async function createDeferredLength(metadata: Record<string, string> = {}, headers: Record<string, string> = { 'upload-defer-length': '1' }): Promise<Response> {
    return fetch(`${origin}/api/v1/uploads`, {
      method: 'POST',
      headers: tusHeaders(admin, { 'upload-metadata': uploadMetadata({ filename: 'growing.jpg', ...metadata }), ...headers }),
    });
  }
  function patchWith(url: string, offset: number, body: Buffer, extra: Record<string, string>): Promise<Response> {
    return fetch(url, {
      method: 'PATCH',
      headers: tusHeaders(admin, { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', ...extra }),
      body: bodyOf(body),
    });
  }

  test('bytes without a length, then the length and the digest on the final empty PATCH: one asset, the digest kept from the stream', async () => {
    const file = await makeJpeg(700, 500);
    const created = await createDeferredLength({ comment: 'still being written' });
    assert.equal(created.status, 201, await created.text());
    const url = String(created.headers.get('location'));
    const waiting = await head(url);
    assert.equal(waiting.headers.get('upload-defer-length'), '1');
    assert.equal(waiting.headers.get('upload-length'), null);
    const before = catalogCounts();
    const data = await patch(url, 0, file);
    assert.equal(data.status, 204, await data.text());
    assert.equal(data.headers.get('upload-offset'), String(file.length));
    assert.equal(data.headers.get('imagine-asset'), null, 'not finished without a length');
    assert.deepEqual(catalogCounts(), before);
    const done = await patchWith(url, file.length, Buffer.alloc(0), { 'upload-length': String(file.length), 'imagine-sha256': sha256(file) });
    assert.equal(done.status, 204, await done.text());
    assert.equal((await getAsset(String(done.headers.get('imagine-asset')))).versions[0]?.sha256, sha256(file));
    assert.equal((await head(url)).status, 404);
  });

  test('the length declared on a middle PATCH; a wrong digest at the end is ERR_DIGEST_MISMATCH, nothing kept', async () => {
    const file = await makeJpeg(500, 400);
    const url = String((await createDeferredLength()).headers.get('location'));
    const half = Math.floor(file.length / 2);
    assert.equal((await patch(url, 0, file.subarray(0, half))).status, 204);
    const rest = await patchWith(url, half, file.subarray(half), { 'upload-length': String(file.length) });
    assert.equal(rest.status, 204, await rest.text());
    assert.equal((await head(url)).headers.get('upload-length'), String(file.length));
    const before = catalogCounts();
    await problemOf(await patchWith(url, file.length, Buffer.alloc(0), { 'imagine-sha256': sha256(Buffer.from('other')) }), 400, 'ERR_DIGEST_MISMATCH');
    assert.deepEqual(catalogCounts(), before);
    assert.equal((await head(url)).status, 404);
  });

  test('hostile: a bad Upload-Defer-Length, both headers, a length below the bytes, above the limit or changed; the digest before the length', async () => {
    await problemOf(await createDeferredLength({}, { 'upload-defer-length': '2' }), 400, 'ERR_BAD_REQUEST');
    await problemOf(await createDeferredLength({}, { 'upload-defer-length': '1', 'upload-length': '10' }), 400, 'ERR_BAD_REQUEST');
    await problemOf(await createDeferredLength({}, {}), 400, 'ERR_BAD_REQUEST');

    const file = await makeJpeg(400, 300);
    const url = String((await createDeferredLength()).headers.get('location'));
    assert.equal((await patch(url, 0, file.subarray(0, 1000))).status, 204);
    await problemOf(await patchWith(url, 1000, file.subarray(1000), { 'upload-length': '999' }), 400, 'ERR_BAD_REQUEST');
    await problemOf(await patchWith(url, 1000, file.subarray(1000), { 'upload-length': String(LIMIT + 1) }), 413, 'ERR_PAYLOAD_TOO_LARGE');
    // The digest needs the length first: the end of an upload of unknown length is unknown.
    await problemOf(await patchWith(url, 1000, Buffer.alloc(0), { 'imagine-sha256': sha256(file) }), 400, 'ERR_VALIDATION');
    assert.equal(await offsetOf(url), 1000, 'every refusal left the upload as it was');
    assert.equal((await head(url)).headers.get('upload-defer-length'), '1');
    assert.equal((await patchWith(url, 1000, file.subarray(1000), { 'upload-length': String(file.length) })).status, 204);
    await problemOf(await patchWith(url, file.length, Buffer.alloc(0), { 'upload-length': String(file.length + 5), 'imagine-sha256': sha256(file) }), 400, 'ERR_BAD_REQUEST');
    const done = await patchWith(url, file.length, Buffer.alloc(0), { 'upload-length': String(file.length), 'imagine-sha256': sha256(file) });
    assert.equal(done.status, 204, await done.text());
    assert.ok(done.headers.get('imagine-asset'));
  });

  test('without a length, the size limit still bounds the bytes: 413, the PATCH dropped', async () => {
    const url = String((await createDeferredLength()).headers.get('location'));
    // Content-Length over the limit: refused before a byte is read (the body is never sent).
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(url, {
        method: 'PATCH',
        headers: tusHeaders(admin, { 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(LIMIT + 1) }),
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, text });
          req.destroy();
        });
      });
      req.flushHeaders();
    });
    assert.equal(answer.status, 413, answer.text);
    assert.equal((JSON.parse(answer.text) as { code: string }).code, 'ERR_PAYLOAD_TOO_LARGE');
    assert.equal(await offsetOf(url), 0);
  });
});
