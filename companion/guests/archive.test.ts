import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { unzipSync } from 'fflate';
import { ProtocolError } from '../../shared/errors.ts';
import { safeName, uniqueName, writeArchive, type PreparedItem } from './archive.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(out: PassThrough): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of out) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('guest archive', () => {
  test('names: unsafe characters replaced, duplicates numbered case-insensitively', () => {
    assert.equal(safeName('../../etc/passwd', 'x'), '_.._etc_passwd');
    assert.equal(safeName('...', 'fallback'), 'fallback');
    assert.equal(safeName('a:b*c?.jpg', 'x'), 'a_b_c_.jpg');
    const taken = new Set<string>();
    assert.deepEqual(['a.jpg', 'A.jpg', 'a.jpg', 'noext', 'noext'].map((n) => uniqueName(n, taken)), ['a.jpg', 'A (2).jpg', 'a (3).jpg', 'noext', 'noext (2)']);
  });

  test('in order, failures listed in MANIFEST.txt, temp files cleaned up, damage reported', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagine-archive-'));
    try {
      const bytes = (n: number) => Buffer.alloc(70_000 + n, n);
      const files: Record<string, PreparedItem> = {};
      for (const n of [1, 2, 3]) {
        const path = join(dir, `f${n}`);
        await writeFile(path, bytes(n));
        files[`u${n}`] = { folder: 'srv:1', filename: 'same.jpg', path, sha256: sha(bytes(n)), size: bytes(n).length, cleanup: () => rm(path) };
      }
      files.u3!.sha256 = '0'.repeat(64); // damaged on disk: written, and said so
      const out = new PassThrough();
      const done = collect(out);
      const summary = await writeArchive(out, {
        uris: ['u1', 'bad', 'u2', 'u3'],
        prepare: async (uri) => {
          const item = files[uri];
          if (!item) throw new ProtocolError('ERR_PEER_UNKNOWN', 'not a peer');
          return item;
        },
        concurrency: 2,
      });
      const entries = unzipSync(new Uint8Array(await done));
      assert.deepEqual(Object.keys(entries), ['srv_1/same.jpg', 'srv_1/same (2).jpg', 'srv_1/same (3).jpg', 'MANIFEST.txt']);
      assert.equal(sha(Buffer.from(entries['srv_1/same.jpg']!)), sha(bytes(1)));
      assert.equal(sha(Buffer.from(entries['srv_1/same (2).jpg']!)), sha(bytes(2)));
      assert.deepEqual(summary.failed.map((f) => [f.uri, f.code]), [['bad', 'ERR_PEER_UNKNOWN'], ['u3', 'ERR_DIGEST_MISMATCH']]);
      const manifest = new TextDecoder().decode(entries['MANIFEST.txt']);
      assert.match(manifest, /2 file\(s\) written, 2 failed/);
      assert.match(manifest, /FAILED\tbad\tERR_PEER_UNKNOWN/);
      for (const n of [1, 2, 3]) await assert.rejects(access(join(dir, `f${n}`)), 'temp files removed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a reader that goes away stops the archive and leaves no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagine-archive-'));
    try {
      const made: string[] = [];
      const out = new PassThrough({ highWaterMark: 1024 });
      const result = writeArchive(out, {
        uris: Array.from({ length: 20 }, (_, i) => `u${i}`),
        prepare: async (uri) => {
          const path = join(dir, uri);
          const data = Buffer.alloc(200_000, 7);
          await writeFile(path, data);
          made.push(path);
          return { folder: 's', filename: `${uri}.jpg`, path, sha256: sha(data), size: data.length, cleanup: () => rm(path, { force: true }) };
        },
      });
      out.once('data', () => out.destroy());
      await result;
      for (const path of made) await assert.rejects(access(path), path);
      assert.ok(made.length < 20, 'stopped early');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
