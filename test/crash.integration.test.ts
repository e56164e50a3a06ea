/**
 * Crash safety, with the real program: `imagine ingest` is killed with SIGKILL in the middle of
 * a folder, and `imagine serve` is killed with SIGKILL in the middle of a large plain POST upload.
 * After each crash the data folder must be consistent when the server starts again: the stale
 * writer.lock of the dead process is taken over, the catalog parses, every version's file is
 * under blobs/ and hashes right, tmp/ is swept; and a second ingest of the same folder adds
 * exactly what the killed one had not (duplicates skipped, nothing doubled).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkConsistency,
  crash,
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
  startCli,
  startServer,
  stopChild,
  withComment,
  type Server,
} from './helpers/integration.ts';

const FILES = 20;
const UPLOAD_BYTES = 50 * 1024 * 1024;

let root: string;
let data: string;
let src: string;
let token: string;
const sourceShas = new Set<string>();
/** Assets in the catalog when the killed ingest stopped. */
let ingestedBeforeKill = 0;

async function readLock(): Promise<{ pid: number; command: string; url?: string }> {
  return JSON.parse(await readFile(join(data, 'writer.lock'), 'utf8'));
}

/** Assets in the catalog now (0 while there is no catalog file yet). */
async function assetCount(): Promise<number> {
  try {
    return (await readCatalog(data)).assets.length;
  } catch {
    return 0;
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-it-crash-'));
  data = join(root, 'data');
  src = join(root, 'pictures');
  await mkdir(src, { recursive: true });
  // Twenty large, different JPEGs (one noisy picture, each copy with its own comment segment):
  // large enough that ingesting them takes a while on a small machine.
  const base = await noiseImage(2400, 1600, 5).jpeg({ quality: 92 }).toBuffer();
  for (let i = 0; i < FILES; i++) {
    const bytes = withComment(base, `crash test picture ${i}`);
    await writeFile(join(src, `picture-${String(i).padStart(2, '0')}.jpg`), bytes);
    sourceShas.add(sha256(bytes));
  }
  assert.equal(sourceShas.size, FILES);
  const users = await runCli(['users', 'add', 'admin', '--admin', '--data', data]);
  assert.equal(users.code, 0, users.stderr);
  const tokens = await runCli(['tokens', 'create', '--user', 'admin', '--data', data, '--json']);
  assert.equal(tokens.code, 0, tokens.stderr);
  token = (JSON.parse(lastLine(tokens.stdout)) as { token: string }).token;
}, { timeout: 300_000 });

after(async () => {
  killChildren();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('crashes leave a consistent data folder', { timeout: 900_000 }, () => {
  test('kill -9 of `imagine ingest` in the middle of a folder', { timeout: 180_000 }, async () => {
    const ingest = startCli(['ingest', '--data', data, '--collection', 'Batch', '--json', src]);
    // Wait until a few files are in the catalog, then kill it without warning.
    const deadline = Date.now() + 120_000;
    while ((await assetCount()) < 3) {
      assert.ok(Date.now() < deadline, `ingest added nothing in time\n${ingest.stderr()}`);
      const exited = await Promise.race([ingest.exited, sleep(10).then(() => undefined)]);
      assert.equal(exited, undefined, `ingest ended before it could be killed: ${ingest.stdout()} ${ingest.stderr()}`);
    }
    const exit = await crash(ingest);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(ingest.stdout(), '', 'the killed ingest printed no summary');

    ingestedBeforeKill = (await readCatalog(data)).assets.length;
    assert.ok(ingestedBeforeKill >= 3 && ingestedBeforeKill < FILES, `${ingestedBeforeKill} of ${FILES} ingested when killed`);
    // The dead process's lock is still there.
    const lock = await readLock();
    assert.equal(lock.pid, ingest.pid);
    assert.equal(lock.command, 'imagine ingest');
    // Even before any recovery, what the catalog lists is complete on disk.
    await checkConsistency(data);
  });

  test('serve takes the stale lock over and starts on a consistent folder', { timeout: 180_000 }, async () => {
    const server = await startServer(data);
    try {
      const lock = await readLock();
      assert.equal(lock.pid, server.pid);
      assert.equal(lock.url, server.url);
      assert.deepEqual(await listTree(join(data, 'tmp')), [], '<data>/tmp is empty after start');
      const catalog = await checkConsistency(data);
      assert.equal(catalog.assets.length, ingestedBeforeKill);
      for (const asset of catalog.assets) assert.ok(sourceShas.has(asset.versions[0]!.sha256));
      const page = json<{ total: number }>(
        await rawRequest(server.url, '/api/v1/assets?limit=1', { headers: { authorization: `Bearer ${token}` } }),
      );
      assert.equal(page.total, ingestedBeforeKill);
    } finally {
      const exit = await stopChild(server, 'SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
    }
  });

  test('kill -9 of the server in the middle of a large plain POST upload', { timeout: 300_000 }, async () => {
    let server: Server | undefined = await startServer(data);
    const assetsBefore = await assetCount();
    const blobsBefore = (await listTree(join(data, 'blobs'))).length;

    // ~50 MB, sent slowly in 256 KiB chunks.
    let sent = 0;
    async function* slowBody() {
      const chunk = Buffer.alloc(256 * 1024, 0x5a);
      while (sent < UPLOAD_BYTES) {
        sent += chunk.length;
        yield chunk;
        await sleep(15);
      }
    }
    const upload = rawRequest(server.url, '/api/v1/assets', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'image/jpeg',
        'content-length': String(UPLOAD_BYTES),
        'imagine-filename': 'huge.jpg',
      },
      body: slowBody(),
      timeoutMs: 240_000,
    }).then(
      (response) => ({ response }),
      (error: Error) => ({ error }),
    );

    // Wait until the server has written a good part of it into <data>/tmp, then kill it.
    const tmp = join(data, 'tmp');
    let partial = 0;
    const deadline = Date.now() + 180_000;
    while (partial < 10 * 1024 * 1024) {
      assert.ok(Date.now() < deadline, `upload did not progress (sent ${sent})`);
      await sleep(50);
      const files = await listTree(tmp);
      partial = files.length ? Math.max(...(await Promise.all(files.map(async (f) => (await stat(join(tmp, f))).size)))) : 0;
    }
    const exit = await crash(server);
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(sent < UPLOAD_BYTES, 'the server died before the whole body was sent');
    const outcome = await upload;
    assert.ok('error' in outcome, 'the client saw the connection break, not an answer');

    // What the crash left: a partial temp file and a lock of a dead pid; the catalog untouched.
    const leftovers = await listTree(tmp);
    assert.equal(leftovers.length, 1, `left in tmp: ${leftovers.join(', ')}`);
    assert.ok((await stat(join(tmp, leftovers[0]!))).size < UPLOAD_BYTES);
    assert.equal((await readLock()).pid, server.pid);
    assert.equal(await assetCount(), assetsBefore);

    server = await startServer(data);
    try {
      assert.equal((await readLock()).pid, server.pid, 'the stale lock was taken over');
      assert.deepEqual(await listTree(tmp), [], '<data>/tmp is empty after start');
      const catalog = await checkConsistency(data);
      assert.equal(catalog.assets.length, assetsBefore, 'the interrupted upload added nothing');
      assert.equal((await listTree(join(data, 'blobs'))).length, blobsBefore, 'and stored nothing');
      // The server works: a small upload goes through.
      const picture = await readFile(join(src, 'picture-00.jpg'));
      const response = await rawRequest(server.url, '/api/v1/assets', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg', 'imagine-filename': 'picture-00.jpg' },
        body: picture,
      });
      assert.ok([200, 201].includes(response.status), response.body.toString());
    } finally {
      const stopped = await stopChild(server, 'SIGTERM');
      assert.deepEqual(stopped, { code: 0, signal: null }, server.stderr());
    }
  });

  test('a second ingest of the same folder completes the rest, nothing doubled', { timeout: 300_000 }, async () => {
    const before = await checkConsistency(data);
    const already = new Set(before.assets.map((a) => a.versions[0]!.sha256));
    const result = await runCli(['ingest', '--data', data, '--collection', 'Batch', '--json', src], { timeoutMs: 240_000 });
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(lastLine(result.stdout)) as { created: number; duplicates: number; failed: number };
    assert.equal(summary.failed, 0, result.stdout);
    assert.equal(summary.duplicates, already.size);
    assert.equal(summary.created, FILES - already.size);

    const catalog = await checkConsistency(data);
    assert.equal(catalog.assets.length, FILES);
    assert.deepEqual(new Set(catalog.assets.map((a) => a.versions[0]!.sha256)), sourceShas);
    const batch = catalog.collections.filter((c) => c.name === 'Batch');
    assert.equal(batch.length, 1, 'one Batch collection');
    for (const asset of catalog.assets) assert.deepEqual(asset.collections, [batch[0]!.id], asset.filename);
    const created = catalog.changes.filter((c) => c.type === 'asset.created');
    assert.equal(created.length, FILES);
    assert.equal(new Set(created.map((c) => c.assetId)).size, FILES);
    assert.ok(!(await exists(join(data, 'writer.lock'))), 'the ingest released the lock');
    assert.deepEqual(await listTree(join(data, 'tmp')), []);
  });
});
