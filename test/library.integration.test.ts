/**
 * The library server as a user runs it: the data folder is prepared with the CLI (`imagine
 * ingest`, `users add`, `tokens create`, each a child process), then `imagine serve --port 0
 * --json` runs as a child process and everything else goes over HTTP on 127.0.0.1: search and
 * filters, pagination, ETags, download tickets and the signed file route (tampered, expired,
 * Range), versions with If-Match, metadata edits written into the file, the change feed,
 * deletion, a restart on the same data folder, and hostile input.
 *
 * The server runs with IMAGINE_MAX_UPLOAD_BYTES=1000000 so the upload limit can be tested;
 * every other upload here is far smaller.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endExiftool, getExiftool } from '../companion/metadata/exiftool.ts';
import { UrlSigner } from '../companion/library/signed-url.ts';
import {
  checkConsistency,
  contentDigest,
  exists,
  json,
  killChildren,
  lastLine,
  listTree,
  noiseImage,
  rawRequest,
  readCatalog,
  runCli,
  sha256,
  startServer,
  stopChild,
  uniqueJpeg,
  type RawResponse,
  type Server,
} from './helpers/integration.ts';

const MAX_UPLOAD = 1_000_000;
/** Request targets fastify's router refuses before any route or error handler runs. */
const FRAMEWORK_REJECTED = [
  '/api/v1/assets/%ff%fe',
  '/api/v1/assets/%zz',
  '/api/v1/files/%ff/v1/original',
  `/api/v1/assets/${'a'.repeat(5000)}`,
  `/api/v1/assets/${'a'.repeat(101)}`,
];
const SERVER_ENV = { IMAGINE_MAX_UPLOAD_BYTES: String(MAX_UPLOAD) };

interface Fixture {
  name: string;
  width: number;
  height: number;
  format: 'jpeg' | 'png' | 'webp' | 'tiff';
  title?: string;
  keywords?: string[];
  creator?: string[];
}

/** The eight images ingested; names are chosen so that no query below matches a file name. */
const FIXTURES: Fixture[] = [
  { name: 'one.jpg', width: 640, height: 400, format: 'jpeg', title: 'Harbour at dawn', keywords: ['harbour', 'boats', 'dawn'], creator: ['Ada Lovelace'] },
  { name: 'two.jpg', width: 300, height: 500, format: 'jpeg', title: 'Glacier portrait', keywords: ['glacier', 'snow'], creator: ['Grace Hopper'] },
  { name: 'three.png', width: 400, height: 400, format: 'png', title: 'Crimson square', keywords: ['abstract', 'crimson'] },
  { name: 'four.webp', width: 800, height: 300, format: 'webp', title: 'Forest panorama', keywords: ['forest', 'green'], creator: ['Ada Lovelace'] },
  { name: 'five.tiff', width: 300, height: 450, format: 'tiff', title: 'Archive scan', keywords: ['archive'] },
  { name: 'six.png', width: 256, height: 128, format: 'png' },
  { name: 'seven.webp', width: 200, height: 200, format: 'webp' },
  { name: 'eight.jpg', width: 500, height: 350, format: 'jpeg', title: 'Harbour by night', keywords: ['harbour', 'lanterns'], creator: ['Grace Hopper'] },
];

let root: string;
let data: string;
let src: string;
let server: Server;
let token: string;
/** A second token, read from the last line of `tokens create` without --json. */
let plainToken: string;
/** sha256 of each source file, by name. */
const shaOf = new Map<string, string>();
/** asset id of each fixture, by name (from the ingest summary). */
const idOf = new Map<string, string>();
let studioId: string;
let ingestSummary: {
  created: number;
  duplicates: number;
  failed: number;
  files: { path: string; status: string; assetId?: string; error?: { code: string; message: string } }[];
};

async function makeImages(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  let seed = 1;
  for (const f of FIXTURES) {
    const image = noiseImage(f.width, f.height, seed++);
    const path = join(dir, f.name);
    if (f.format === 'jpeg') await image.jpeg({ quality: 85 }).toFile(path);
    else if (f.format === 'png') await image.png().toFile(path);
    else if (f.format === 'webp') await image.webp({ quality: 80 }).toFile(path);
    else await image.tiff({ compression: 'lzw' }).toFile(path);
    if (f.title || f.keywords || f.creator) {
      const tags: Record<string, unknown> = {};
      if (f.title) tags['XMP-dc:Title'] = f.title;
      if (f.keywords) tags['XMP-dc:Subject'] = f.keywords;
      if (f.creator) tags['XMP-dc:Creator'] = f.creator;
      await getExiftool().write(path, tags as never);
    }
    shaOf.set(f.name, sha256(await readFile(path)));
  }
  // The same bytes under another name, a text file, and a JPEG cut in half.
  await copyFile(join(dir, 'one.jpg'), join(dir, 'one-copy.jpg'));
  await writeFile(join(dir, 'notes.txt'), 'not an image, just some notes\n'.repeat(20));
  const whole = await noiseImage(600, 400, 99).jpeg({ quality: 90 }).toBuffer();
  await writeFile(join(dir, 'broken.jpg'), whole.subarray(0, Math.floor(whole.length / 2)));
}

// --- HTTP --------------------------------------------------------------------------------------

interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | AsyncIterable<Buffer>;
  /** false: no Authorization header; a string: that header value. */
  auth?: false | string;
}

function call(target: string, options: CallOptions = {}): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== false) headers.authorization = options.auth ?? `Bearer ${token}`;
  if (options.body && Buffer.isBuffer(options.body)) headers['content-length'] ??= String(options.body.length);
  return rawRequest(server.url, target, { method: options.method, headers, body: options.body });
}

function callJson(target: string, method: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return call(target, { method, body: Buffer.from(JSON.stringify(body)), headers: { 'content-type': 'application/json', ...headers } });
}

function assertProblem(response: RawResponse, status: number, code: string): Record<string, unknown> {
  const text = response.body.toString('utf8');
  assert.equal(response.status, status, text);
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/, text);
  const problem = JSON.parse(text) as Record<string, unknown>;
  assert.equal(problem.code, code, text);
  assert.equal(problem.status, status);
  return problem;
}

function ok<T = any>(response: RawResponse, status = 200): T {
  assert.equal(response.status, status, response.body.toString('utf8').slice(0, 2000));
  return json<T>(response);
}

interface Page {
  items: { id: string; filename: string; metadata: Record<string, unknown>; currentVersion: string }[];
  next: string | null;
  total: number;
}

async function search(query: Record<string, string>): Promise<Page> {
  return ok<Page>(await call(`/api/v1/assets?${new URLSearchParams(query)}`));
}

async function searchIds(query: Record<string, string>): Promise<string[]> {
  return (await search({ limit: '200', ...query })).items.map((a) => a.id).sort();
}

function ids(...names: string[]): string[] {
  return names.map((n) => idOf.get(n)!).sort();
}

/** The target (path and query) of an absolute signed URL, checked to point at this server. */
function targetOf(url: string): string {
  assert.ok(url.startsWith(`${server.url}/api/v1/files/`), url);
  return url.slice(server.url.length);
}

async function ticket(id: string, query = ''): Promise<{ url: string; expires: string; size: number; sha256: string; version: string }> {
  return ok(await call(`/api/v1/assets/${id}/download${query}`));
}

async function download(id: string, version?: string): Promise<Buffer> {
  const t = await ticket(id, version ? `?version=${version}` : '');
  const response = await call(targetOf(t.url), { auth: false });
  assert.equal(response.status, 200);
  assert.equal(sha256(response.body), t.sha256);
  return response.body;
}

interface ChangesPage {
  events: { seq: number; id: string; type: string; subject: string; version?: string; items?: string[] }[];
  next: string;
  hasMore: boolean;
}

async function changes(since: string, limit: number): Promise<ChangesPage> {
  return ok<ChangesPage>(await call(`/api/v1/changes?since=${since}&limit=${limit}`));
}

async function allChanges(): Promise<ChangesPage['events']> {
  const page = await changes('', 1000);
  assert.equal(page.hasMore, false);
  return page.events;
}

async function blobCount(): Promise<number> {
  return (await listTree(join(data, 'blobs'))).length;
}

async function assertNothingLeftBehind(assetsBefore: number, blobsBefore: number): Promise<void> {
  assert.equal((await readCatalog(data)).assets.length, assetsBefore, 'no asset was added');
  assert.deepEqual(await listTree(join(data, 'tmp')), [], 'nothing is left in <data>/tmp');
  assert.equal(await blobCount(), blobsBefore, 'no file was added to the store');
}

// --- set-up ------------------------------------------------------------------------------------

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-it-library-'));
  data = join(root, 'data');
  src = join(root, 'pictures');
  await makeImages(src);

  const ingest = await runCli(['ingest', '--data', data, '--collection', 'Studio', '--json', src], { timeoutMs: 180_000 });
  assert.equal(ingest.code, 0, ingest.stderr);
  ingestSummary = JSON.parse(lastLine(ingest.stdout));
  for (const file of ingestSummary.files) {
    const name = file.path.split('/').pop()!;
    if (file.status === 'created') idOf.set(name, file.assetId!);
  }
  // The original and its copy race; whichever was created, the fixture name maps to that asset.
  const copy = ingestSummary.files.find((f) => f.path.endsWith('/one-copy.jpg'));
  if (copy?.status === 'created') idOf.set('one.jpg', copy.assetId!);
  idOf.delete('one-copy.jpg');

  const users = await runCli(['users', 'add', 'admin', '--admin', '--data', data]);
  assert.equal(users.code, 0, users.stderr);
  const tokens = await runCli(['tokens', 'create', '--user', 'admin', '--data', data, '--json']);
  assert.equal(tokens.code, 0, tokens.stderr);
  token = (JSON.parse(lastLine(tokens.stdout)) as { token: string }).token;
  assert.match(token, /^imt_/);
  const plain = await runCli(['tokens', 'create', '--user', 'admin', '--label', 'plain', '--data', data]);
  assert.equal(plain.code, 0, plain.stderr);
  plainToken = lastLine(plain.stdout).trim();

  server = await startServer(data, { env: SERVER_ENV });
  const collections = ok<{ items: { id: string; name: string; itemCount: number }[] }>(await call('/api/v1/collections'));
  studioId = collections.items.find((c) => c.name === 'Studio')!.id;
}, { timeout: 300_000 });

after(async () => {
  killChildren();
  await endExiftool();
  if (root) await rm(root, { recursive: true, force: true });
});

// --- tests -------------------------------------------------------------------------------------

describe('library server, run as a real process', { timeout: 600_000 }, () => {
  test('ingest: created, duplicates and failures counted right, the run goes past bad files', () => {
    assert.equal(ingestSummary.created, 8, JSON.stringify(ingestSummary, null, 1));
    assert.equal(ingestSummary.duplicates, 1);
    assert.equal(ingestSummary.failed, 2);
    assert.equal(ingestSummary.files.length, 11);
    const byName = new Map(ingestSummary.files.map((f) => [f.path.split('/').pop()!, f]));
    assert.equal(byName.get('notes.txt')?.status, 'failed');
    assert.equal(byName.get('notes.txt')?.error?.code, 'ERR_NOT_AN_IMAGE');
    assert.equal(byName.get('broken.jpg')?.status, 'failed');
    assert.equal(byName.get('broken.jpg')?.error?.code, 'ERR_NOT_AN_IMAGE');
    // One of the two identical files is the asset, the other points at it.
    const pair = [byName.get('one.jpg')!, byName.get('one-copy.jpg')!];
    assert.deepEqual(pair.map((f) => f.status).sort(), ['created', 'duplicate']);
    assert.equal(pair[0]!.assetId, pair[1]!.assetId);
    // Files after the bad ones (alphabetically) were still ingested.
    for (const f of FIXTURES) assert.ok(idOf.get(f.name), `${f.name} was ingested`);
    assert.equal(new Set(idOf.values()).size, 8);
  });

  test('ingest is refused while the server holds the data folder', { timeout: 120_000 }, async () => {
    const before = (await readCatalog(data)).assets.length;
    const result = await runCli(['ingest', '--data', data, '--json', src]);
    assert.notEqual(result.code, 0);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /ERR_CATALOG_LOCKED/);
    assert.match(lines[0]!, /in use by "imagine serve"/);
    assert.ok(lines[0]!.includes(`pid ${server.pid}`), lines[0]);
    assert.ok(lines[0]!.includes(server.url), lines[0]);
    assert.ok(lines[0]!.includes(join(data, 'writer.lock')), lines[0]);
    assert.equal(result.stdout, '');
    assert.equal((await readCatalog(data)).assets.length, before);
  });

  test('search by keyword, by title text and by creator', async () => {
    assert.deepEqual(await searchIds({ q: 'harbour' }), ids('one.jpg', 'eight.jpg'));
    assert.deepEqual(await searchIds({ keyword: 'harbour' }), ids('one.jpg', 'eight.jpg'));
    assert.deepEqual(await searchIds({ keyword: 'glacier' }), ids('two.jpg'));
    assert.deepEqual(await searchIds({ q: 'panorama' }), ids('four.webp'));
    assert.deepEqual(await searchIds({ q: 'crimson square' }), ids('three.png'));
    assert.deepEqual(await searchIds({ q: 'archive' }), ids('five.tiff'));
    assert.deepEqual(await searchIds({ creator: 'Ada Lovelace' }), ids('one.jpg', 'four.webp'));
    assert.deepEqual(await searchIds({ q: 'zeppelin' }), []);
    const hit = (await search({ q: 'glacier' })).items[0]!;
    assert.equal(hit.metadata.title, 'Glacier portrait');
    assert.deepEqual(hit.metadata.keywords, ['glacier', 'snow']);
    assert.deepEqual(hit.metadata.creator, ['Grace Hopper']);
  });

  test('filters: collection, format, orientation', async () => {
    const all = FIXTURES.map((f) => f.name);
    assert.deepEqual(await searchIds({ collection: studioId }), ids(...all));
    assert.deepEqual(await searchIds({ format: 'jpeg' }), ids('one.jpg', 'two.jpg', 'eight.jpg'));
    assert.deepEqual(await searchIds({ format: 'jpg' }), ids('one.jpg', 'two.jpg', 'eight.jpg'));
    assert.deepEqual(await searchIds({ format: 'png' }), ids('three.png', 'six.png'));
    assert.deepEqual(await searchIds({ format: 'webp' }), ids('four.webp', 'seven.webp'));
    assert.deepEqual(await searchIds({ format: 'tiff' }), ids('five.tiff'));
    assert.deepEqual(await searchIds({ orientation: 'portrait' }), ids('two.jpg', 'five.tiff'));
    assert.deepEqual(await searchIds({ orientation: 'square' }), ids('three.png', 'seven.webp'));
    assert.deepEqual(await searchIds({ orientation: 'landscape' }), ids('one.jpg', 'four.webp', 'six.png', 'eight.jpg'));
    assert.deepEqual(await searchIds({ orientation: 'landscape', format: 'jpeg', collection: studioId }), ids('one.jpg', 'eight.jpg'));
    assertProblem(await call('/api/v1/assets?orientation=diagonal'), 400, 'ERR_VALIDATION');
    assert.deepEqual(await searchIds({ collection: 'nosuchcollection' }), []);
  });

  test('pagination through `next` visits every asset once', async () => {
    const seen: string[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const page: Page = await search(cursor ? { limit: '3', cursor } : { limit: '3' });
      assert.equal(page.total, 8);
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((a) => a.id));
      cursor = page.next;
      assert.ok(++pages <= 5, 'pagination ends');
    }
    assert.equal(pages, 3);
    assert.equal(seen.length, 8);
    assert.deepEqual([...seen].sort(), ids(...FIXTURES.map((f) => f.name)));
    // A cursor is bound to its query.
    const first = await search({ limit: '2', format: 'jpeg' });
    assert.ok(first.next);
    assertProblem(await call(`/api/v1/assets?limit=2&format=png&cursor=${encodeURIComponent(first.next)}`), 400, 'ERR_BAD_REQUEST');
  });

  test('GET an asset: metadata, versions and ETag = current version', async () => {
    const id = idOf.get('one.jpg')!;
    const response = await call(`/api/v1/assets/${id}`);
    const asset = ok(response);
    assert.equal(response.headers.etag, '"v1"');
    assert.equal(asset.id, id);
    assert.equal(asset.currentVersion, 'v1');
    assert.equal(asset.mediaType, 'image/jpeg');
    assert.equal(asset.width, 640);
    assert.equal(asset.height, 400);
    assert.equal(asset.metadata.title, 'Harbour at dawn');
    assert.deepEqual(asset.collections, [studioId]);
    assert.match(asset.uri, /^imagine:\/\/127\.0\.0\.1:\d+\/images\//);
    assert.deepEqual(asset.versions.map((v: { id: string }) => v.id), ['v1']);
    assert.equal(asset.versions[0].sha256, shaOf.get('one.jpg'));
    const again = await call(`/api/v1/assets/${id}`, { headers: { 'if-none-match': '"v1"' } });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
  });

  test('download ticket → signed URL → the bytes hash to the ticket sha256; ETag and Range', async () => {
    const id = idOf.get('three.png')!;
    const t = await ticket(id, '?rendition=original');
    assert.equal(t.sha256, shaOf.get('three.png'));
    assert.equal(t.version, 'v1');
    assert.ok(Date.parse(t.expires) > Date.now());
    assert.ok(Date.parse(t.expires) < Date.now() + 60 * 60 * 1000);
    const target = targetOf(t.url);
    const full = await call(target, { auth: false });
    assert.equal(full.status, 200);
    assert.equal(full.body.length, t.size);
    assert.equal(sha256(full.body), t.sha256);
    assert.equal(full.headers['content-type'], 'image/png');
    assert.equal(full.headers.etag, `"${t.sha256}"`);
    assert.equal(full.headers['accept-ranges'], 'bytes');
    assert.match(String(full.headers['content-disposition']), /filename="three\.png"/);
    assert.equal(sha256(await readFile(join(src, 'three.png'))), t.sha256);

    const partial = await call(target, { auth: false, headers: { range: 'bytes=100-1099' } });
    assert.equal(partial.status, 206);
    assert.equal(partial.headers['content-range'], `bytes 100-1099/${t.size}`);
    assert.deepEqual(partial.body, full.body.subarray(100, 1100));
    const tail = await call(target, { auth: false, headers: { range: 'bytes=-10' } });
    assert.equal(tail.status, 206);
    assert.deepEqual(tail.body, full.body.subarray(full.body.length - 10));
    assertProblem(await call(target, { auth: false, headers: { range: `bytes=${t.size}-` } }), 416, 'ERR_RANGE_NOT_SATISFIABLE');

    const cached = await call(target, { auth: false, headers: { 'if-none-match': `"${t.sha256}"` } });
    assert.equal(cached.status, 304);

    const head = await call(target, { method: 'HEAD', auth: false });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(t.size));
    assert.equal(head.body.length, 0);

    const thumb = await ticket(id, '?rendition=thumbnail');
    const thumbBytes = await call(targetOf(thumb.url), { auth: false });
    assert.equal(thumbBytes.status, 200);
    assert.equal(thumbBytes.headers['content-type'], 'image/jpeg');
    assert.equal(sha256(thumbBytes.body), thumb.sha256);
    assert.equal(thumbBytes.body.length, thumb.size);
    const { default: sharp } = await import('sharp');
    const thumbInfo = await sharp(thumbBytes.body).metadata();
    assert.equal(thumbInfo.format, 'jpeg');
    assert.ok(Math.max(thumbInfo.width!, thumbInfo.height!) <= 512);
    // The <img> route serves the same thumbnail, with its sha256 as ETag.
    const img = await call(`/api/v1/assets/${id}/thumbnail`);
    assert.equal(img.status, 200);
    assert.equal(img.headers['content-type'], 'image/jpeg');
    assert.equal(img.headers.etag, `"${thumb.sha256}"`);
    assert.equal(sha256(img.body), thumb.sha256);
    assert.equal((await call(`/api/v1/assets/${id}/thumbnail`, { headers: { 'if-none-match': `"${thumb.sha256}"` } })).status, 304);
  });

  test('signed URLs: a tampered signature is invalid, an outdated one expired (403 problem+json)', async () => {
    const id = idOf.get('two.jpg')!;
    const t = await ticket(id);
    const url = new URL(t.url);
    const sig = url.searchParams.get('sig')!;
    const forged = new URLSearchParams(url.searchParams);
    forged.set('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
    assertProblem(await call(`${url.pathname}?${forged}`, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    const longer = new URLSearchParams(url.searchParams);
    longer.set('exp', String(Number(url.searchParams.get('exp')) + 3600));
    assertProblem(await call(`${url.pathname}?${longer}`, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    const otherAsset = url.pathname.replace(id, idOf.get('one.jpg')!);
    assertProblem(await call(`${otherAsset}?${url.searchParams}`, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    assertProblem(await call(url.pathname, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    // A bearer token does not replace the signature.
    assertProblem(await call(url.pathname), 403, 'ERR_SIGNATURE_INVALID');

    // Expired: signed with the server's own key, by a clock two hours behind.
    const keysFile = JSON.parse(await readFile(join(data, 'keys', 'url-signing.json'), 'utf8')) as {
      keys: { id: string; secret: string }[];
    };
    const past = new UrlSigner({
      keys: keysFile.keys.map((k) => ({ id: k.id, secret: Buffer.from(k.secret, 'base64url') })),
      ttlSeconds: 300,
      clockSkewSeconds: 60,
      now: () => Date.now() - 2 * 60 * 60 * 1000,
    });
    const old = past.sign({ method: 'GET', path: url.pathname, version: 'v1' });
    assertProblem(await call(old.url, { auth: false }), 403, 'ERR_SIGNATURE_EXPIRED');
    // The same key with the right clock: accepted (the expiry was the only fault).
    const fresh = new UrlSigner({
      keys: keysFile.keys.map((k) => ({ id: k.id, secret: Buffer.from(k.secret, 'base64url') })),
      ttlSeconds: 300,
      clockSkewSeconds: 60,
    }).sign({ method: 'GET', path: url.pathname, version: 'v1' });
    assert.equal((await call(fresh.url, { auth: false })).status, 200);
  });

  test('push a version: If-Match "v1" → 201, stale → 412, missing → 428', async () => {
    const id = idOf.get('one.jpg')!;
    // The original and its copy raced at ingest: the asset has the name of whichever won.
    const filename = ok(await call(`/api/v1/assets/${id}`)).filename;
    assert.match(filename, /^one(-copy)?\.jpg$/);
    // A save-back: a new picture that keeps the embedded metadata.
    const v2Path = join(root, 'one-v2.jpg');
    await noiseImage(640, 400, 4242).jpeg({ quality: 85 }).toFile(v2Path);
    await getExiftool().write(v2Path, {
      'XMP-dc:Title': 'Harbour at dawn',
      'XMP-dc:Subject': ['harbour', 'boats', 'dawn'],
      'XMP-dc:Creator': ['Ada Lovelace'],
    } as never);
    const v2 = await readFile(v2Path);
    const headers = {
      'content-type': 'image/jpeg',
      'content-digest': contentDigest(v2),
      'imagine-comment': encodeURIComponent('retouched — sky'),
    };
    const pushed = await call(`/api/v1/assets/${id}/versions`, { method: 'POST', body: v2, headers: { ...headers, 'if-match': '"v1"' } });
    const asset = ok(pushed, 201);
    assert.equal(pushed.headers.etag, '"v2"');
    assert.equal(asset.currentVersion, 'v2');
    assert.equal(asset.versions[1].sha256, sha256(v2));
    assert.equal(asset.versions[1].comment, 'retouched — sky');
    assert.equal(asset.versions[1].derivedFrom, 'v1');
    assert.equal(asset.filename, filename, 'a push without Imagine-Filename keeps the name');

    const other = await uniqueJpeg(7001);
    const stale = await call(`/api/v1/assets/${id}/versions`, {
      method: 'POST',
      body: other,
      headers: { 'content-type': 'image/jpeg', 'if-match': '"v1"' },
    });
    const problem = assertProblem(stale, 412, 'ERR_PRECONDITION_FAILED');
    assert.equal(problem.currentVersion, 'v2');
    assertProblem(
      await call(`/api/v1/assets/${id}/versions`, { method: 'POST', body: other, headers: { 'content-type': 'image/jpeg' } }),
      428,
      'ERR_PRECONDITION_REQUIRED',
    );
    const versions = ok<{ items: { id: string; sha256: string }[] }>(await call(`/api/v1/assets/${id}/versions`));
    assert.deepEqual(versions.items.map((v) => v.id), ['v1', 'v2']);
    assert.equal(versions.items[0]!.sha256, shaOf.get('one.jpg'));
    const one = ok(await call(`/api/v1/assets/${id}/versions/v1`));
    assert.equal(one.metadata.title, 'Harbour at dawn');
    assertProblem(await call(`/api/v1/assets/${id}/versions/v9`), 404, 'ERR_VERSION_NOT_FOUND');
    assert.deepEqual(await listTree(join(data, 'tmp')), []);
    // Versions stay downloadable, each with its own bytes.
    assert.equal(sha256(await download(id, 'v1')), shaOf.get('one.jpg'));
    assert.equal(sha256(await download(id)), sha256(v2));
  });

  test('a signed URL for one version does not open another', async () => {
    const id = idOf.get('one.jpg')!;
    const t = await ticket(id, '?version=v1');
    const url = new URL(t.url);
    assert.match(url.pathname, /\/v1\/original$/);
    const otherPath = url.pathname.replace(/\/v1\/original$/, '/v2/original');
    assertProblem(await call(`${otherPath}?${url.searchParams}`, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    const both = new URLSearchParams(url.searchParams);
    both.set('v', 'v2');
    assertProblem(await call(`${otherPath}?${both}`, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    const thumbPath = url.pathname.replace(/\/original$/, '/thumbnail');
    assertProblem(await call(`${thumbPath}?${url.searchParams}`, { auth: false }), 403, 'ERR_SIGNATURE_INVALID');
    const genuine = await call(targetOf(t.url), { auth: false });
    assert.equal(genuine.status, 200);
    assert.equal(sha256(genuine.body), shaOf.get('one.jpg'));
  });

  test('concurrent pushes on the same base: exactly one wins', async () => {
    const id = idOf.get('eight.jpg')!;
    const bodies = await Promise.all([9101, 9102, 9103].map((seed) => uniqueJpeg(seed, 500, 350)));
    const answers = await Promise.all(
      bodies.map((body) =>
        call(`/api/v1/assets/${id}/versions`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg', 'if-match': '"v1"' } }),
      ),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 412, 412]);
    const winner = answers.findIndex((a) => a.status === 201);
    const versions = ok<{ items: { id: string; sha256: string }[] }>(await call(`/api/v1/assets/${id}/versions`));
    assert.deepEqual(versions.items.map((v) => v.id), ['v1', 'v2']);
    assert.equal(versions.items[1]!.sha256, sha256(bodies[winner]!));
    assert.deepEqual(await listTree(join(data, 'tmp')), []);
  });

  test('metadata edit: PATCH writes v3, whose file carries the new title', async () => {
    const id = idOf.get('one.jpg')!;
    const change = { metadata: { title: 'Harbour at noon', keywords: ['harbour', 'boats', 'noon'] }, comment: 'retitled' };
    assertProblem(await callJson(`/api/v1/assets/${id}/metadata`, 'PATCH', change), 428, 'ERR_PRECONDITION_REQUIRED');
    assertProblem(await callJson(`/api/v1/assets/${id}/metadata`, 'PATCH', change, { 'if-match': '"v1"' }), 412, 'ERR_PRECONDITION_FAILED');
    const edited = await callJson(`/api/v1/assets/${id}/metadata`, 'PATCH', change, { 'if-match': '"v2"' });
    const asset = ok(edited, 201);
    assert.equal(edited.headers.etag, '"v3"');
    assert.equal(asset.currentVersion, 'v3');
    assert.deepEqual(asset.versions.map((v: { id: string }) => v.id), ['v1', 'v2', 'v3']);
    assert.equal(asset.metadata.title, 'Harbour at noon');
    assert.equal(asset.versions[2].comment, 'retitled');
    assert.equal(asset.versions[2].derivedFrom, 'v2');

    const bytes = await download(id, 'v3');
    const file = join(root, 'one-v3.jpg');
    await writeFile(file, bytes);
    const tags = await getExiftool().read(file);
    assert.equal(tags.Title, 'Harbour at noon');
    assert.deepEqual(tags.Subject, ['harbour', 'boats', 'noon']);
    assert.deepEqual(tags.Creator, ['Ada Lovelace'], 'fields not edited are kept');
    // The picture itself is untouched: same pixels as v2.
    const v2 = await download(id, 'v2');
    const { default: sharp } = await import('sharp');
    assert.deepEqual(await sharp(bytes).raw().toBuffer(), await sharp(v2).raw().toBuffer());

    assert.deepEqual(await searchIds({ q: 'noon' }), ids('one.jpg'));
    assert.deepEqual(await searchIds({ q: 'dawn' }), [], 'search follows the current version');
    assert.deepEqual(await searchIds({ keyword: 'noon' }), ids('one.jpg'));
  });

  test('metadata edit works in PNG, WebP and TIFF files too', async () => {
    for (const name of ['three.png', 'four.webp', 'five.tiff']) {
      const id = idOf.get(name)!;
      const title = `Edited ${name.split('.')[1]} title`;
      const edited = await callJson(`/api/v1/assets/${id}/metadata`, 'PATCH', { metadata: { title, creator: ['Studio Team'] } }, { 'if-match': '"v1"' });
      const asset = ok(edited, 201);
      assert.equal(asset.currentVersion, 'v2', name);
      assert.equal(asset.metadata.title, title, name);
      const file = join(root, `edited-${name}`);
      await writeFile(file, await download(id, 'v2'));
      const tags = await getExiftool().read(file);
      assert.equal(tags.Title, title, name);
      // One creator may come back as a plain string (MWG reads it from EXIF:Artist, which the write sets too).
      assert.deepEqual([tags.Creator].flat(), ['Studio Team'], name);
      assert.deepEqual(asset.metadata.creator, ['Studio Team'], name);
      assert.deepEqual(tags.Subject, FIXTURES.find((f) => f.name === name)!.keywords, `${name} keeps its keywords`);
    }
    assert.deepEqual(await searchIds({ creator: 'Studio Team' }), ids('three.png', 'four.webp', 'five.tiff'));
  });

  test('metadata edit: bad bodies are 400', async () => {
    const id = idOf.get('one.jpg')!;
    const path = `/api/v1/assets/${id}/metadata`;
    assertProblem(await callJson(path, 'PATCH', { metadata: { notAField: 'x' } }, { 'if-match': '"v3"' }), 400, 'ERR_VALIDATION');
    assertProblem(await callJson(path, 'PATCH', { metadata: { title: 'x' }, extra: true }, { 'if-match': '"v3"' }), 400, 'ERR_VALIDATION');
    assertProblem(await callJson(path, 'PATCH', { metadata: { rating: 'five' } }, { 'if-match': '"v3"' }), 400, 'ERR_VALIDATION');
    assertProblem(await callJson(path, 'PATCH', { title: 'no wrapper' }, { 'if-match': '"v3"' }), 400, 'ERR_VALIDATION');
    const broken = await call(path, {
      method: 'PATCH',
      body: Buffer.from('{"metadata":'),
      headers: { 'content-type': 'application/json', 'if-match': '"v3"' },
    });
    assertProblem(broken, 400, 'ERR_BAD_REQUEST');
    const versions = ok<{ items: unknown[] }>(await call(`/api/v1/assets/${id}/versions`));
    assert.equal(versions.items.length, 3, 'no version was written');
  });

  test('the change feed lists every change in order, and `since=next` continues without gaps', async () => {
    const events = await allChanges();
    assert.ok(events.length >= 18, `${events.length} events`);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.seq > events[i - 1]!.seq, 'seq increases');
    assert.equal(events[0]!.type, 'asset.created');
    const uriOf = new Map<string, string>();
    for (const [name, id] of idOf) uriOf.set(name, ok(await call(`/api/v1/assets/${id}`)).uri);
    const created = events.filter((e) => e.type === 'asset.created').map((e) => e.subject).sort();
    assert.deepEqual(created, [...uriOf.values()].sort());
    const added = events.filter((e) => e.type === 'collection.items_added').flatMap((e) => e.items ?? []).sort();
    assert.deepEqual(added, [...uriOf.values()].sort());
    const one = uriOf.get('one.jpg')!;
    const ofOne = events.filter((e) => e.subject === one).map((e) => `${e.type}${e.version ? `@${e.version}` : ''}`);
    assert.deepEqual(ofOne, ['asset.created@v1', 'asset.updated@v2', 'asset.updated@v3']);
    assert.equal(events[events.length - 1]!.type, 'asset.updated');

    // Page by page, three at a time.
    const paged: ChangesPage['events'] = [];
    let since = '';
    for (let guard = 0; ; guard++) {
      assert.ok(guard < 100);
      const page = await changes(since, 3);
      paged.push(...page.events);
      since = page.next;
      if (!page.hasMore) break;
    }
    assert.deepEqual(paged, events);
    const tail = await changes(since, 3);
    assert.deepEqual(tail.events, []);
    assert.equal(tail.hasMore, false);
    assert.equal(tail.next, since);
    assertProblem(await call('/api/v1/changes?since=yesterday'), 400, 'ERR_VALIDATION');
  });

  test('DELETE: the asset answers 410, leaves search, and the feed says asset.deleted', async () => {
    const id = idOf.get('seven.webp')!;
    const before = await allChanges();
    const earlier = await ticket(id);
    assert.equal((await call(`/api/v1/assets/${id}/thumbnail`)).status, 200);
    const deleted = await call(`/api/v1/assets/${id}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    assertProblem(await call(`/api/v1/assets/${id}/thumbnail`), 410, 'ERR_ASSET_GONE');
    assertProblem(await call(targetOf(earlier.url), { auth: false }), 410, 'ERR_ASSET_GONE');
    assertProblem(await call(`/api/v1/assets/${id}`), 410, 'ERR_ASSET_GONE');
    assertProblem(await call(`/api/v1/assets/${id}`, { method: 'DELETE' }), 410, 'ERR_ASSET_GONE');
    assertProblem(await call(`/api/v1/assets/${id}/download`), 410, 'ERR_ASSET_GONE');
    assert.deepEqual(await searchIds({ format: 'webp' }), ids('four.webp'));
    assert.deepEqual(await searchIds({ orientation: 'square' }), ids('three.png'));
    assert.equal((await search({ collection: studioId })).total, 7);
    assert.ok(!(await searchIds({})).includes(id));
    const collections = ok<{ items: { id: string; itemCount: number }[] }>(await call('/api/v1/collections'));
    assert.equal(collections.items.find((c) => c.id === studioId)!.itemCount, 7);
    const after = await allChanges();
    assert.deepEqual(after.slice(0, before.length), before, 'history is never rewritten');
    const last = after[after.length - 1]!;
    assert.equal(after.length, before.length + 1);
    assert.equal(last.type, 'asset.deleted');
    assert.ok(last.subject.endsWith(`/images/${id}`), last.subject);
  });

  test('unknown ids are 404 problem+json', async () => {
    assertProblem(await call('/api/v1/assets/nosuchasset0000'), 404, 'ERR_ASSET_NOT_FOUND');
    assertProblem(await call('/api/v1/assets/nosuchasset0000/versions'), 404, 'ERR_ASSET_NOT_FOUND');
    assertProblem(await call('/api/v1/assets/nosuchasset0000/download'), 404, 'ERR_ASSET_NOT_FOUND');
    assertProblem(await call('/api/v1/assets/nosuchasset0000', { method: 'DELETE' }), 404, 'ERR_ASSET_NOT_FOUND');
    assertProblem(await call('/api/v1/collections/nosuchcollection'), 404, 'ERR_COLLECTION_NOT_FOUND');
    assertProblem(await call('/api/v1/nothing-here'), 404, 'ERR_ROUTE_NOT_FOUND');
  });

  test('hostile ids (traversal, NUL, very long) are 400/404, never 500, never a file outside the store', async () => {
    const id = idOf.get('two.jpg')!;
    const catalogText = await readFile(join(data, 'catalog.json'), 'utf8');
    const keysText = await readFile(join(data, 'keys', 'url-signing.json'), 'utf8');
    const targets = [
      '/api/v1/assets/..%2F..%2Fetc%2Fpasswd',
      '/api/v1/assets/..%2F..%2Fetc%2Fpasswd/download',
      '/api/v1/assets/..%2F..%2Fcatalog.json/thumbnail',
      '/api/v1/assets/%2e%2e',
      '/api/v1/assets/%2e%2e/versions',
      '/api/v1/assets/%2e%2e/thumbnail',
      '/api/v1/assets/%2e%2e%2f%2e%2e%2fcatalog.json',
      '/api/v1/assets/.%2e/.%2e/catalog.json',
      '/api/v1/assets/%00',
      '/api/v1/assets/abc%00def/download',
      ...FRAMEWORK_REJECTED,
      '/api/v1/assets/../../../etc/passwd',
      '/api/v1/../../catalog.json',
      `/api/v1/assets/${id}/versions/..%2F..%2Fcatalog.json`,
      `/api/v1/assets/${id}/versions/%2e%2e`,
      `/api/v1/assets/${id}/versions/%00`,
      `/api/v1/assets/${id}/thumbnail?v=..%2F..%2Fcatalog.json`,
      `/api/v1/assets/${id}/thumbnail?v=%2e%2e`,
      `/api/v1/assets/${id}/download?version=..%2Fv1`,
      `/api/v1/assets/${id}/download?rendition=..%2F..%2Fkeys`,
      '/api/v1/collections/..%2F..%2Fcatalog.json',
      '/api/v1/collections/%2e%2e',
      '/api/v1/files/..%2F..%2Fcatalog.json/v1/original',
      '/api/v1/files/%2e%2e/%2e%2e/original',
      '/api/v1/files/../../catalog.json',
      `/api/v1/files/${id}/v1/..%2F..%2F..%2Fcatalog.json`,
    ];
    for (const target of targets) {
      const response = await call(target);
      const text = response.body.toString('utf8');
      const allowed = target.startsWith('/api/v1/files/') ? [400, 403, 404] : [400, 404];
      assert.ok(allowed.includes(response.status), `${target} → ${response.status} ${text.slice(0, 300)}`);
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/, target);
      assert.ok(!text.includes('root:'), target);
      assert.ok(!text.includes(catalogText.slice(0, 40)), target);
      assert.ok(!text.includes('"secret"'), target);
    }
    // Even with a genuine signature, a hostile path opens nothing.
    const keysFile = JSON.parse(keysText) as { keys: { id: string; secret: string }[] };
    const signer = new UrlSigner({
      keys: keysFile.keys.map((k) => ({ id: k.id, secret: Buffer.from(k.secret, 'base64url') })),
      ttlSeconds: 300,
      clockSkewSeconds: 60,
    });
    for (const [path, version] of [
      ['/api/v1/files/..%2F..%2Fcatalog.json/v1/original', 'v1'],
      ['/api/v1/files/%2e%2e/v1/original', 'v1'],
      [`/api/v1/files/${id}/%2e%2e/original`, '%2e%2e'],
      [`/api/v1/files/${id}/..%2F..%2Fkeys/original`, '..%2F..%2Fkeys'],
      [`/api/v1/files/${id}/v1/..%2Fcatalog.json`, 'v1'],
    ] as const) {
      const signed = signer.sign({ method: 'GET', path, version });
      const response = await call(signed.url, { auth: false });
      const text = response.body.toString('utf8');
      assert.ok([400, 403, 404].includes(response.status), `${path} (signed) → ${response.status} ${text.slice(0, 300)}`);
      assert.ok(!text.includes(catalogText.slice(0, 40)), path);
    }
  });

  test(
    'malformed percent-encoding and over-long ids are answered as problem+json 400/404',
    async () => {
      for (const target of FRAMEWORK_REJECTED) {
        const response = await call(target);
        assert.ok([400, 404].includes(response.status), `${target.slice(0, 60)} → ${response.status}`);
        assert.match(String(response.headers['content-type']), /^application\/problem\+json/, target.slice(0, 60));
      }
    },
  );

  test('Imagine-Filename with a path is stored as its last part only', async () => {
    const assetsBefore = (await readCatalog(data)).assets.length;
    const outside = [join(root, 'evil.jpg'), join(tmpdir(), 'evil.jpg'), join(root, 'evil2.jpg'), join(root, 'evil3.jpg')];
    const existedBefore = await Promise.all(outside.map(exists));
    const cases: [string, string][] = [
      ['..%2F..%2Fevil.jpg', 'evil.jpg'],
      ['../../evil2.jpg', 'evil2.jpg'],
      ['..%5C..%5Cevil3.jpg', 'evil3.jpg'],
    ];
    let seed = 8100;
    for (const [header, stored] of cases) {
      const bytes = await uniqueJpeg(seed++);
      const response = await call('/api/v1/assets', {
        method: 'POST',
        body: bytes,
        headers: { 'content-type': 'image/jpeg', 'imagine-filename': header, 'content-digest': contentDigest(bytes) },
      });
      const asset = ok(response, 201);
      assert.equal(asset.filename, stored);
      assert.ok(String(response.headers.location).endsWith(`/api/v1/assets/${asset.id}`));
      const t = await ticket(asset.id);
      const file = await call(targetOf(t.url), { auth: false });
      assert.equal(sha256(file.body), sha256(bytes));
      assert.match(String(file.headers['content-disposition']), new RegExp(`filename="${stored.replace('.', '\\.')}"`));
    }
    assert.deepEqual(await Promise.all(outside.map(exists)), existedBefore, 'nothing was written outside the store');
    const stray = (await listTree(root)).filter((p) => /evil/.test(p));
    assert.deepEqual(stray, []);
    assert.equal((await readCatalog(data)).assets.length, assetsBefore + 3);
    // A name that is only a path is refused.
    const bytes = await uniqueJpeg(seed++);
    assertProblem(
      await call('/api/v1/assets', { method: 'POST', body: bytes, headers: { 'content-type': 'image/jpeg', 'imagine-filename': '..%2F..%2F' } }),
      400,
      'ERR_FILENAME_INVALID',
    );
    assertProblem(
      await call('/api/v1/assets', { method: 'POST', body: bytes, headers: { 'content-type': 'image/jpeg', 'imagine-filename': '%E0%A4%A' } }),
      400,
      'ERR_FILENAME_INVALID',
    );
  });

  test('the same bytes posted again are not added twice', async () => {
    const bytes = await readFile(join(src, 'two.jpg'));
    const assetsBefore = (await readCatalog(data)).assets.length;
    const response = await call('/api/v1/assets', {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'again.jpg' },
    });
    const asset = ok(response, 200);
    assert.equal(response.headers['imagine-duplicate'], 'true');
    assert.equal(asset.id, idOf.get('two.jpg'));
    assert.equal((await readCatalog(data)).assets.length, assetsBefore);
  });

  test('a Content-Digest that does not match → 400 ERR_DIGEST_MISMATCH, nothing added', async () => {
    const assetsBefore = (await readCatalog(data)).assets.length;
    const blobsBefore = await blobCount();
    const bytes = await uniqueJpeg(8200);
    const response = await call('/api/v1/assets', {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'digest.jpg', 'content-digest': contentDigest(Buffer.from('other bytes')) },
    });
    assertProblem(response, 400, 'ERR_DIGEST_MISMATCH');
    await assertNothingLeftBehind(assetsBefore, blobsBefore);
    const id = idOf.get('two.jpg')!;
    const head = ok(await call(`/api/v1/assets/${id}`)).currentVersion;
    const push = await call(`/api/v1/assets/${id}/versions`, {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'image/jpeg', 'if-match': `"${head}"`, 'content-digest': contentDigest(Buffer.from('other bytes')) },
    });
    assertProblem(push, 400, 'ERR_DIGEST_MISMATCH');
    assert.equal(ok(await call(`/api/v1/assets/${id}`)).currentVersion, head);
    assertProblem(
      await call('/api/v1/assets', {
        method: 'POST',
        body: bytes,
        headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'digest.jpg', 'content-digest': 'sha-256=:AAAA:' },
      }),
      400,
      'ERR_BAD_REQUEST',
    );
    await assertNothingLeftBehind(assetsBefore, blobsBefore);
  });

  test('a body that is not an image → 415 ERR_NOT_AN_IMAGE, nothing left behind', async () => {
    const assetsBefore = (await readCatalog(data)).assets.length;
    const blobsBefore = await blobCount();
    const text = Buffer.from('<html><body>definitely not a picture</body></html>\n'.repeat(100));
    assertProblem(
      await call('/api/v1/assets', { method: 'POST', body: text, headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'fake.jpg' } }),
      415,
      'ERR_NOT_AN_IMAGE',
    );
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>');
    assertProblem(
      await call('/api/v1/assets', { method: 'POST', body: svg, headers: { 'content-type': 'image/svg+xml', 'imagine-filename': 'x.svg' } }),
      415,
      'ERR_NOT_AN_IMAGE',
    );
    // A JPEG cut in half: its header reads, its pixels do not.
    const whole = await uniqueJpeg(8400, 400, 300);
    assertProblem(
      await call('/api/v1/assets', {
        method: 'POST',
        body: whole.subarray(0, Math.floor(whole.length / 2)),
        headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'half.jpg' },
      }),
      415,
      'ERR_NOT_AN_IMAGE',
    );
    const id = idOf.get('two.jpg')!;
    const head = ok(await call(`/api/v1/assets/${id}`)).currentVersion;
    assertProblem(
      await call(`/api/v1/assets/${id}/versions`, { method: 'POST', body: text, headers: { 'content-type': 'image/jpeg', 'if-match': `"${head}"` } }),
      415,
      'ERR_NOT_AN_IMAGE',
    );
    await assertNothingLeftBehind(assetsBefore, blobsBefore);
  });

  test('a bad token → 401; no token may not write', async () => {
    assert.match(plainToken, /^imt_[A-Za-z0-9_-]{43}$/, 'tokens create prints the token as its last line');
    assert.equal((await call('/api/v1/assets?limit=1', { auth: `Bearer ${plainToken}` })).status, 200);
    const fake = `Bearer imt_${'A'.repeat(43)}`;
    assertProblem(await call('/api/v1/assets', { auth: fake }), 401, 'ERR_TOKEN_INVALID');
    assertProblem(await call(`/api/v1/assets/${idOf.get('two.jpg')}`, { auth: fake }), 401, 'ERR_TOKEN_INVALID');
    assertProblem(await call('/api/v1/assets', { auth: `Bearer ${token}x` }), 401, 'ERR_TOKEN_INVALID');
    assertProblem(await call('/api/v1/assets', { auth: 'Basic YWRtaW46YWRtaW4=' }), 401, 'ERR_TOKEN_INVALID');
    assertProblem(await call('/api/v1/changes', { auth: fake }), 401, 'ERR_TOKEN_INVALID');
    const bytes = await uniqueJpeg(8300);
    assertProblem(
      await call('/api/v1/assets', { method: 'POST', auth: false, body: bytes, headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'anon.jpg' } }),
      401,
      'ERR_UNAUTHORIZED',
    );
    assertProblem(await call(`/api/v1/assets/${idOf.get('two.jpg')}`, { auth: false }), 401, 'ERR_UNAUTHORIZED');
    // Anonymous search sees nothing of a private collection.
    const anonymous = ok<Page>(await call('/api/v1/assets', { auth: false }));
    assert.deepEqual(anonymous.items, []);
    assert.equal(anonymous.total, 0);
  });

  test('collections: a public collection is readable without a token, and only it', async () => {
    const created = await callJson('/api/v1/collections', 'POST', { name: 'Public picks', public: true });
    const collection = ok<{ id: string; name: string; public: boolean; itemCount: number; uri: string }>(created, 201);
    assert.equal(collection.public, true);
    assert.equal(collection.itemCount, 0);
    const three = idOf.get('three.png')!;
    const two = idOf.get('two.jpg')!;
    const added = ok<{ added: string[] }>(await callJson(`/api/v1/collections/${collection.id}/items`, 'POST', { assets: [three, three] }));
    assert.deepEqual(added.added, [three]);
    assert.equal(ok(await call(`/api/v1/collections/${collection.id}`)).itemCount, 1);
    assertProblem(await callJson(`/api/v1/collections/${collection.id}/items`, 'POST', { assets: ['nosuchasset0000'] }), 404, 'ERR_ASSET_NOT_FOUND');

    const anonymous = ok<Page>(await call('/api/v1/assets', { auth: false }));
    assert.deepEqual(anonymous.items.map((a) => a.id), [three]);
    assert.equal(ok(await call(`/api/v1/assets/${three}`, { auth: false })).id, three);
    assertProblem(await call(`/api/v1/assets/${two}`, { auth: false }), 401, 'ERR_UNAUTHORIZED');
    const publicTicket = ok<{ url: string; sha256: string }>(await call(`/api/v1/assets/${three}/download`, { auth: false }));
    assert.equal(sha256((await call(targetOf(publicTicket.url), { auth: false })).body), publicTicket.sha256);
    assert.equal((await call(`/api/v1/assets/${three}/thumbnail`, { auth: false })).status, 200);
    assertProblem(await call(`/api/v1/assets?collection=${studioId}`, { auth: false }), 401, 'ERR_UNAUTHORIZED');
    const anonymousCollections = ok<{ items: { id: string }[] }>(await call('/api/v1/collections', { auth: false }));
    assert.deepEqual(anonymousCollections.items.map((c) => c.id), [collection.id]);
    // The anonymous change feed shows only what it may read.
    const anonymousFeed = ok<ChangesPage>(await call('/api/v1/changes?limit=1000', { auth: false }));
    const threeUri = ok(await call(`/api/v1/assets/${three}`)).uri as string;
    for (const event of anonymousFeed.events) {
      assert.ok(event.subject === threeUri || event.subject === collection.uri, `${event.type} ${event.subject}`);
    }
    assert.ok(anonymousFeed.events.some((e) => e.type === 'collection.items_added' && e.subject === collection.uri));

    // Anonymous writes are refused.
    assertProblem(await call(`/api/v1/collections/${collection.id}/items/${three}`, { method: 'DELETE', auth: false }), 401, 'ERR_UNAUTHORIZED');
    assertProblem(
      await call(`/api/v1/collections/${collection.id}/items`, {
        method: 'POST',
        auth: false,
        body: Buffer.from(JSON.stringify({ assets: [two] })),
        headers: { 'content-type': 'application/json' },
      }),
      401,
      'ERR_UNAUTHORIZED',
    );
    assertProblem(await call(`/api/v1/assets/${three}`, { method: 'DELETE', auth: false }), 401, 'ERR_UNAUTHORIZED');

    // Membership decides visibility, both ways.
    assert.deepEqual(ok<{ added: string[] }>(await callJson(`/api/v1/collections/${collection.id}/items`, 'POST', { assets: [two] })).added, [two]);
    assert.equal((await call(`/api/v1/assets/${two}`, { auth: false })).status, 200);
    const removed = await call(`/api/v1/collections/${collection.id}/items/${two}`, { method: 'DELETE' });
    assert.equal(removed.status, 204);
    assertProblem(await call(`/api/v1/assets/${two}`, { auth: false }), 401, 'ERR_UNAUTHORIZED');
    assert.deepEqual(await searchIds({ collection: collection.id }), [three]);
    const feed = await allChanges();
    const last = feed[feed.length - 1]!;
    assert.equal(last.type, 'collection.items_removed');
    assert.equal(last.subject, collection.uri);
    assert.equal(feed[feed.length - 2]!.type, 'collection.items_added');
  });

  test('a body over the upload limit → 413, nothing left behind', async () => {
    const assetsBefore = (await readCatalog(data)).assets.length;
    const blobsBefore = await blobCount();
    const big = Buffer.alloc(MAX_UPLOAD + 500_000, 7);
    const declared = await call('/api/v1/assets', {
      method: 'POST',
      body: big,
      headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'big.jpg' },
    });
    assertProblem(declared, 413, 'ERR_PAYLOAD_TOO_LARGE');
    // Without a Content-Length (chunked): the limit is applied while the body streams in.
    async function* chunks() {
      for (let sent = 0; sent < MAX_UPLOAD + 500_000; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, 9);
    }
    const streamed = await call('/api/v1/assets', {
      method: 'POST',
      body: chunks(),
      headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'big.jpg', 'transfer-encoding': 'chunked' },
    });
    assertProblem(streamed, 413, 'ERR_PAYLOAD_TOO_LARGE');
    await assertNothingLeftBehind(assetsBefore, blobsBefore);
    // The server is still fine.
    assert.equal((await call('/api/v1/assets?limit=1')).status, 200);
  });

  test('SIGTERM stops the server with exit code 0; restarted on the same data, everything is the same', { timeout: 240_000 }, async () => {
    const snapshot = async () => {
      const oneId = idOf.get('one.jpg')!;
      const state = {
        all: await search({ limit: '200' }),
        harbour: await searchIds({ q: 'harbour' }),
        noon: await searchIds({ q: 'noon' }),
        keyword: await searchIds({ keyword: 'harbour' }),
        png: await searchIds({ format: 'png' }),
        portrait: await searchIds({ orientation: 'portrait' }),
        studio: await searchIds({ collection: studioId }),
        one: ok(await call(`/api/v1/assets/${oneId}`)),
        versions: ok(await call(`/api/v1/assets/${oneId}/versions`)),
        v1: ok(await call(`/api/v1/assets/${oneId}/versions/v1`)),
        deleted: (await call(`/api/v1/assets/${idOf.get('seven.webp')}`)).status,
        changes: await allChanges(),
        collections: ok(await call('/api/v1/collections')),
      };
      // URIs carry the server's authority (127.0.0.1:<port>), which changes with --port 0.
      return JSON.parse(JSON.stringify(state).replaceAll(`127.0.0.1:${server.port}`, '127.0.0.1:PORT'));
    };
    const beforeRestart = await snapshot();
    assert.equal(beforeRestart.deleted, 410);
    assert.ok(await exists(join(data, 'writer.lock')));

    const exit = await stopChild(server, 'SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
    assert.ok(!(await exists(join(data, 'writer.lock'))), 'the lock is released');
    assert.deepEqual(await listTree(join(data, 'tmp')), []);
    await checkConsistency(data);

    server = await startServer(data, { env: SERVER_ENV });
    const afterRestart = await snapshot();
    assert.deepEqual(afterRestart, beforeRestart);
    // And the library still takes changes after the restart.
    const oneId = idOf.get('one.jpg')!;
    const edited = await callJson(`/api/v1/assets/${oneId}/metadata`, 'PATCH', { metadata: { headline: 'After restart' } }, { 'if-match': '"v3"' });
    assert.equal(ok(edited, 201).currentVersion, 'v4');
    const feed = await allChanges();
    assert.equal(feed.length, beforeRestart.changes.length + 1);
    assert.equal(feed[feed.length - 1]!.seq, beforeRestart.changes[beforeRestart.changes.length - 1].seq + 1);
    const stopped = await stopChild(server, 'SIGTERM');
    assert.deepEqual(stopped, { code: 0, signal: null }, server.stderr());
    await checkConsistency(data);
  });
});
