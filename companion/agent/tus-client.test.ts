// The agent's tus client against a real library server (and a silent one): a whole upload, a
// resumed one sending only the rest, a finished-but-unfinished one completed by an empty PATCH,
// a refusal as its problem, the caller's abort and the idle timeout; the sha256 declared after
// the bytes (hashed while sending, read back when resumed, a known one re-used).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ProtocolError } from '../../shared/errors.ts';
import { startTestLibrary, type TestLibrary } from '../../test/helpers/test-library.ts';
import { Readable } from 'node:stream';
import { followFile } from './follow-file.ts';
import { tusHeadStart, tusUpload } from './tus-client.ts';

let library: TestLibrary;
let dir: string;
let file: Buffer;
let path: string;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

before(async () => {
  library = await startTestLibrary({ name: 'tus-client', flags: { maxUploadBytes: 64 * 1024 * 1024 } });
  dir = await mkdtemp(join(tmpdir(), 'imagine-tus-client-'));
  file = await sharp({ create: { width: 1500, height: 1000, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .jpeg({ quality: 95 })
    .toBuffer();
  path = join(dir, 'photo.jpg');
  await writeFile(path, file);
});

after(async () => {
  await library?.close();
  await rm(dir, { recursive: true, force: true });
});

const endpoint = () => `${library.origin}/api/v1/uploads`;
const options = (extra: Partial<Parameters<typeof tusUpload>[0]> = {}) => ({
  fetch,
  endpoint: endpoint(),
  token: library.admin,
  path,
  size: file.length,
  metadata: { filename: 'photo.jpg', sha256: sha256(file) },
  ...extra,
});

/** Sends the first half of the file to an upload by hand; answers how many bytes that is. */
async function sendFirstHalf(url: string): Promise<number> {
  const half = Math.floor(file.length / 2);
  const first = await fetch(url, {
    method: 'PATCH',
    headers: { 'tus-resumable': '1.0.0', authorization: `Bearer ${library.admin}`, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
    body: new Uint8Array(file.subarray(0, half)),
  });
  assert.equal(first.status, 204);
  return half;
}

const headOf = (url: string) => fetch(url, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0', authorization: `Bearer ${library.admin}` } });

async function createUpload(declare = true): Promise<string> {
  const res = await fetch(endpoint(), {
    method: 'POST',
    headers: {
      'tus-resumable': '1.0.0',
      authorization: `Bearer ${library.admin}`,
      'upload-length': String(file.length),
      'upload-metadata': `filename ${Buffer.from('photo.jpg').toString('base64')}${declare ? `,sha256 ${Buffer.from(sha256(file)).toString('base64')}` : ''}`,
    },
  });
  assert.equal(res.status, 201);
  return String(res.headers.get('location'));
}

describe('tusUpload', () => {
  test('uploads the whole file in one PATCH and answers the asset and version', async () => {
    const progress: number[] = [];
    let created: string | undefined;
    const result = await tusUpload(options({ onProgress: (done) => progress.push(done), onCreated: (url) => void (created = url) }));
    assert.equal(result.version, 'v1');
    assert.equal(result.replayed, false);
    assert.ok(created);
    assert.equal(progress[0], 0);
    assert.equal(progress.at(-1), file.length);
    assert.equal(library.services.library.getAsset(result.assetId).versions[0]?.sha256, sha256(file));
  });

  test('resumes a known upload from the offset the server reports, sending only the rest', async () => {
    const url = await createUpload();
    const half = await sendFirstHalf(url);
    const progress: number[] = [];
    const result = await tusUpload(options({ uploadUrl: url, onProgress: (done) => progress.push(done) }));
    assert.equal(progress[0], half, 'started from the server offset');
    assert.equal(library.services.library.getAsset(result.assetId).versions[0]?.sha256, sha256(file));
  });

  test('an upload whose bytes all arrived but that was never finished is finished by an empty PATCH', async () => {
    const url = await createUpload();
    writeFileSync(join(library.dataDir, 'uploads', url.slice(url.lastIndexOf('/') + 1)), file);
    const result = await tusUpload(options({ uploadUrl: url }));
    assert.equal(library.services.library.getAsset(result.assetId).versions[0]?.sha256, sha256(file));
  });

  test('a refusal of the last PATCH is thrown as its problem', async () => {
    await assert.rejects(tusUpload(options({ metadata: { filename: 'photo.jpg', sha256: '0'.repeat(64) } })), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, 'ERR_DIGEST_MISMATCH');
      return true;
    });
  });

  test("the caller's abort stops the upload with the caller's reason", async () => {
    const controller = new AbortController();
    const reason = new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'stopping');
    const running = tusUpload(options({ signal: controller.signal, onCreated: () => controller.abort(reason) }));
    await assert.rejects(running, (error) => error === reason);
  });

  describe('the sha256 declared after the bytes (no sha256 in metadata)', () => {
    test('hashes the file while sending it, hands the digest over before declaring it, and lands', async () => {
      const digests: string[] = [];
      let created = false;
      const progress: number[] = [];
      const result = await tusUpload(
        options({
          metadata: { filename: 'photo.jpg', idempotencyKey: `late-${Date.now()}` },
          onCreated: () => void (created = true),
          onProgress: (done) => progress.push(done),
          onDigest: (digest) => void digests.push(digest),
        }),
      );
      assert.ok(created);
      assert.deepEqual(digests, [sha256(file)]);
      assert.equal(progress.at(-1), file.length);
      assert.equal(library.services.library.getAsset(result.assetId).versions.at(-1)?.sha256, sha256(file));
    });

    test('a resumed upload reads the whole file for its digest; one whose bytes all arrived only declares it', async () => {
      const url = await createUpload(false);
      await sendFirstHalf(url);
      const digests: string[] = [];
      const result = await tusUpload(options({ uploadUrl: url, metadata: { filename: 'photo.jpg' }, onDigest: (d) => void digests.push(d) }));
      assert.deepEqual(digests, [sha256(file)]);
      assert.equal(library.services.library.getAsset(result.assetId).versions.at(-1)?.sha256, sha256(file));

      const full = await createUpload(false);
      writeFileSync(join(library.dataDir, 'uploads', full.slice(full.lastIndexOf('/') + 1)), file);
      const known = await tusUpload(options({ uploadUrl: full, metadata: { filename: 'photo.jpg' }, sha256: sha256(file) }));
      assert.equal(known.assetId, result.assetId, 'the same bytes: the same asset');
    });

    test('a server from before the extension (sha256 required at creation): hashed first, created again with it', async () => {
      // Refuses creations without sha256 as the old server did; passes everything else on.
      const old = createServer((req, res) => {
        const metadata = String(req.headers['upload-metadata'] ?? '');
        if (req.method === 'POST' && !/(^|,)sha256 /.test(metadata)) {
          req.resume();
          const body = JSON.stringify({ type: 'about:blank', title: 'x', status: 400, code: 'ERR_VALIDATION', detail: 'Upload-Metadata "sha256" (64 lowercase hex digits) is required' });
          res.writeHead(400, { 'content-type': 'application/problem+json' }).end(body);
          return;
        }
        const upstream = httpRequest(`${library.origin}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
      try {
        const digests: string[] = [];
        const result = await tusUpload(
          options({ endpoint: `http://127.0.0.1:${(old.address() as AddressInfo).port}/api/v1/uploads`, metadata: { filename: 'photo.jpg' }, onDigest: (d) => void digests.push(d) }),
        );
        assert.deepEqual(digests, [sha256(file)]);
        assert.equal(library.services.library.getAsset(result.assetId).versions.at(-1)?.sha256, sha256(file));
      } finally {
        old.closeAllConnections();
        old.close();
      }
    });

    test('a wrong known digest is refused by the server (ERR_DIGEST_MISMATCH)', async () => {
      const other = Buffer.from(file);
      other.writeUInt8(other.readUInt8(100) ^ 0xff, 100);
      const otherPath = join(dir, 'other.jpg');
      await writeFile(otherPath, other);
      await assert.rejects(
        tusUpload(options({ path: otherPath, metadata: { filename: 'other.jpg' }, sha256: sha256(file) })),
        (error) => error instanceof ProtocolError && error.code === 'ERR_DIGEST_MISMATCH',
      );
    });
  });

  describe('a head start: the file sent while it is written (deferred length)', () => {
    const headStart = (stream: Readable, endpointUrl = endpoint(), onSent?: (sent: number) => void) =>
      tusHeadStart({ fetch, endpoint: endpointUrl, token: library.admin, metadata: { filename: 'growing.jpg' }, stream, onSent });
    /** Writes `data` into `target` in three parts with pauses; answers the promise `followFile` waits for. */
    function writeSlowly(target: string, data: Buffer, fail = false): Promise<void> {
      return (async () => {
        await writeFile(target, data.subarray(0, 1000));
        await new Promise((r) => setTimeout(r, 20));
        await writeFile(target, data.subarray(0, Math.floor(data.length / 2)));
        await new Promise((r) => setTimeout(r, 20));
        if (fail) throw new Error('the writer failed');
        await writeFile(target, data);
      })();
    }

    test('sends the bytes as they come without a length; tusUpload declares length and digest and lands', async () => {
      const growing = join(dir, 'growing.jpg');
      const written = writeSlowly(growing, file);
      const reported: number[] = [];
      const { url, sent } = await headStart(followFile(growing, written, { pollMs: 2 }), endpoint(), (n) => reported.push(n));
      assert.equal(sent, file.length);
      assert.ok(reported.length >= 2 && reported.at(-1) === file.length, `progress as it went: ${reported.join(', ')}`);
      const waiting = await headOf(url);
      assert.equal(waiting.headers.get('upload-defer-length'), '1');
      const digests: string[] = [];
      const result = await tusUpload(options({ path: growing, uploadUrl: url, metadata: { filename: 'growing.jpg' }, onDigest: (d) => void digests.push(d) }));
      assert.deepEqual(digests, [sha256(file)]);
      assert.equal(library.services.library.getAsset(result.assetId).versions.at(-1)?.sha256, sha256(file));
    });

    test('cut part-way (the writer failed): tusUpload resumes from what arrived, with the length', async () => {
      const growing = join(dir, 'cut.jpg');
      let url: string | undefined;
      await assert.rejects(
        tusHeadStart({
          fetch,
          endpoint: endpoint(),
          token: library.admin,
          metadata: { filename: 'cut.jpg' },
          stream: followFile(growing, writeSlowly(growing, file, true), { pollMs: 2 }),
          onCreated: (created) => (url = created),
        }),
      );
      assert.ok(url);
      const head = await headOf(url);
      const arrived = Number(head.headers.get('upload-offset'));
      assert.ok(arrived < file.length, `${arrived} bytes arrived before the cut`);
      // The file is finished after all (another attempt of the writer); the upload goes on from there.
      await writeFile(growing, file);
      const result = await tusUpload(options({ path: growing, uploadUrl: url, metadata: { filename: 'cut.jpg' } }));
      assert.equal(library.services.library.getAsset(result.assetId).versions.at(-1)?.sha256, sha256(file));
    });

    test('bytes sent that are not the finished file: longer ones start a new upload, different ones are ERR_DIGEST_MISMATCH', async () => {
      const first = await headStart(Readable.from([file]));
      const small = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#345' } }).jpeg().toBuffer();
      const shorter = join(dir, 'shorter.jpg');
      await writeFile(shorter, small);
      const landed = await tusUpload(options({ path: shorter, size: small.length, uploadUrl: first.url, metadata: { filename: 'shorter.jpg' } }));
      assert.equal(library.services.library.getAsset(landed.assetId).versions.at(-1)?.sha256, sha256(small));
      assert.equal((await headOf(first.url)).status, 404);

      const flipped = Buffer.from(file);
      flipped.writeUInt8(flipped.readUInt8(5000) ^ 0xff, 5000);
      const second = await headStart(Readable.from([flipped]));
      await assert.rejects(
        tusUpload(options({ uploadUrl: second.url, metadata: { filename: 'photo.jpg' } })),
        (error) => error instanceof ProtocolError && error.code === 'ERR_DIGEST_MISMATCH',
      );
    });

    test('a server without deferred lengths refuses the head start with its problem', async () => {
      const strict = createServer((req, res) => {
        req.resume();
        const body = JSON.stringify({ type: 'about:blank', title: 'x', status: 400, code: 'ERR_BAD_REQUEST', detail: 'uploads need Upload-Length' });
        res.writeHead(400, { 'content-type': 'application/problem+json' }).end(body);
      });
      await new Promise<void>((r) => strict.listen(0, '127.0.0.1', r));
      try {
        await assert.rejects(headStart(Readable.from([file]), `http://127.0.0.1:${(strict.address() as AddressInfo).port}/api/v1/uploads`), { code: 'ERR_BAD_REQUEST' });
      } finally {
        strict.close();
      }
    });
  });

  describe('against a server that takes the body and never answers', () => {
    let silent: Server;
    let origin: string;
    before(async () => {
      silent = createServer((req, res) => {
        if (req.method === 'POST') {
          res.writeHead(201, { location: '/uploads/1', 'tus-resumable': '1.0.0' }).end();
          return;
        }
        req.resume(); // takes every byte, answers nothing
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      origin = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    });
    after(() => {
      silent.closeAllConnections();
      silent.close();
    });

    test('a PATCH without progress for idleTimeoutMs is cut: ERR_UPSTREAM_UNREACHABLE (retried later)', async () => {
      const started = Date.now();
      await assert.rejects(tusUpload(options({ endpoint: `${origin}/uploads`, idleTimeoutMs: 300 })), (error) => {
        assert.ok(error instanceof ProtocolError);
        assert.equal(error.code, 'ERR_UPSTREAM_UNREACHABLE');
        return true;
      });
      assert.ok(Date.now() - started < 5000);
    });
  });
});
