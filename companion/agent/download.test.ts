// Resumable verified downloads against a real HTTP server on loopback: a cut transfer resumed
// with Range/If-Range, a server that ignores Range, a short body, corrupted bytes, no data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadVerified } from './download.ts';

const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');
let dir: string;
let server: Server;
let url: string;
let behaviour: (req: IncomingMessage, res: ServerResponse) => void;
const seen: Array<{ range?: string; ifRange?: string }> = [];

function honest(req: IncomingMessage, res: ServerResponse) {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (match && req.headers['if-range'] === `"${sha}"`) {
    const start = Number(match[1]);
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length, etag: `"${sha}"` });
  res.end(body);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imagine-download-'));
  server = createServer((req, res) => {
    seen.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    behaviour(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const options = (name: string) => ({ url, fetch, partPath: join(dir, name), size: body.length, sha256: sha });

describe('downloadVerified', () => {
  test('a whole download, verified, with progress', async () => {
    behaviour = honest;
    const progress: number[] = [];
    const result = await downloadVerified({ ...options('whole'), onProgress: (done) => progress.push(done) });
    assert.equal(result.resumedFrom, 0);
    assert.deepEqual(await readFile(join(dir, 'whole')), body);
    assert.equal(progress.at(-1), body.length);
  });

  test('a cut transfer keeps its part, and the next attempt asks for the rest only', async () => {
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 50));
    };
    await assert.rejects(downloadVerified(options('cut')), { code: 'ERR_DOWNLOAD_INCOMPLETE' });
    const kept = (await stat(join(dir, 'cut'))).size;
    assert.ok(kept > 0 && kept < body.length, String(kept));
    behaviour = honest;
    seen.length = 0;
    const result = await downloadVerified(options('cut'));
    assert.equal(result.resumedFrom, kept);
    assert.deepEqual(seen, [{ range: `bytes=${kept}-`, ifRange: `"${sha}"` }]);
    assert.deepEqual(await readFile(join(dir, 'cut')), body);
  });

  test('a server that ignores Range sends the whole file, which replaces the part', async () => {
    await writeFile(join(dir, 'ignored'), body.subarray(0, 5000));
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    };
    await downloadVerified(options('ignored'));
    assert.deepEqual(await readFile(join(dir, 'ignored')), body);
  });

  test('corrupted bytes: ERR_DIGEST_MISMATCH and the part is gone', async () => {
    behaviour = (_req, res) => {
      const bad = Buffer.from(body);
      bad.writeUInt8(bad.readUInt8(1234) ^ 1, 1234);
      res.writeHead(200, { 'content-length': bad.length });
      res.end(bad);
    };
    await assert.rejects(downloadVerified(options('bad')), { code: 'ERR_DIGEST_MISMATCH' });
    await assert.rejects(stat(join(dir, 'bad')), { code: 'ENOENT' });
  });

  test('a wrong part already there is caught by the hash of the whole', async () => {
    const wrong = Buffer.from(body.subarray(0, 1000));
    wrong.writeUInt8(wrong.readUInt8(0) ^ 1, 0);
    await writeFile(join(dir, 'wrongpart'), wrong);
    behaviour = honest;
    await assert.rejects(downloadVerified(options('wrongpart')), { code: 'ERR_DIGEST_MISMATCH' });
    await downloadVerified(options('wrongpart')); // starts over
    assert.deepEqual(await readFile(join(dir, 'wrongpart')), body);
  });

  test('an error status, and a server that sends nothing for too long', async () => {
    behaviour = (_req, res) => res.writeHead(403).end();
    await assert.rejects(downloadVerified(options('refused')), { code: 'ERR_UPSTREAM_ERROR' });
    behaviour = (_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 10));
    };
    await assert.rejects(downloadVerified({ ...options('stalled'), idleTimeoutMs: 200 }), { code: 'ERR_DOWNLOAD_INCOMPLETE' });
  });
});
