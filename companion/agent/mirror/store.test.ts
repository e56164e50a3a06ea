import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProtocolError } from '../../../shared/errors.ts';
import { LOG_FILE, MirrorStore, SNAPSHOT_FILE, initialState, type MirrorState } from './store.ts';
import { makeAsset } from './testing/fake-library.ts';

const root = mkdtempSync(join(tmpdir(), 'imagine-mirror-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `s${n++}`);

const asset = (id: string, title = `Asset ${id}`) => makeAsset('fake.example', id, { title });
const withCursor = (cursor: string, seq: number): MirrorState => ({ ...initialState(), cursor, lastSeq: seq });

describe('MirrorStore', () => {
  test('keeps assets and state across a reopen', async () => {
    const dir = freshDir();
    const store = await MirrorStore.open(dir);
    assert.equal(store.size, 0);
    await store.apply({ put: [asset('a'), asset('b')], state: withCursor('2', 2) });
    await store.apply({ put: [asset('a', 'renamed')], delete: ['b'], state: withCursor('4', 4) });
    assert.equal(store.get('a')?.metadata.title, 'renamed');
    assert.equal(store.has('b'), false);
    await store.close();

    const again = await MirrorStore.open(dir);
    assert.deepEqual(again.ids(), ['a']);
    assert.equal(again.get('a')?.metadata.title, 'renamed');
    assert.equal(again.state.cursor, '4');
    assert.deepEqual(again.stats().loadWarnings, []);
    await again.close();
  });

  test('reports what each batch changed to listeners', async () => {
    const store = await MirrorStore.open(freshDir());
    const seen: unknown[] = [];
    store.onApply((c) => seen.push({ cleared: c.cleared, put: c.put.map((a) => a.id), deleted: c.deleted }));
    await store.apply({ put: [asset('a'), asset('b')] });
    await store.apply({ delete: ['a', 'missing'] });
    await store.apply({ clear: true, put: [asset('c')] });
    assert.deepEqual(seen, [
      { cleared: false, put: ['a', 'b'], deleted: [] },
      { cleared: false, put: [], deleted: ['a'] },
      { cleared: true, put: ['c'], deleted: [] },
    ]);
    assert.deepEqual(store.ids(), ['c']);
    await store.close();
  });

  test('a torn last batch (a crash mid-append) is dropped whole, with its cursor', async () => {
    const dir = freshDir();
    const store = await MirrorStore.open(dir);
    await store.apply({ put: [asset('a')], state: withCursor('1', 1) });
    await store.close();
    // A second batch whose assets made it to disk but not its state line, then half a line.
    const line = (op: unknown) => `${JSON.stringify(op)}\n`;
    await appendFile(join(dir, LOG_FILE), line({ put: asset('b'), s: 0 }) + '{"put":{"id":"c","fil');
    const again = await MirrorStore.open(dir);
    assert.deepEqual(again.ids(), ['a']);
    assert.equal(again.state.cursor, '1');
    assert.match(again.stats().loadWarnings.join(' '), /interrupted write/);
    // The log was rewritten clean: a further reopen has nothing to complain about.
    await again.apply({ put: [asset('d')], state: withCursor('3', 3) });
    await again.close();
    const third = await MirrorStore.open(dir);
    assert.deepEqual(third.ids().sort(), ['a', 'd']);
    assert.deepEqual(third.stats().loadWarnings, []);
    await third.close();
  });

  test('compaction writes a snapshot, and a log of an older generation is ignored', async () => {
    const dir = freshDir();
    const store = await MirrorStore.open(dir);
    await store.apply({ put: [asset('a'), asset('b')], state: withCursor('2', 2) });
    const oldLog = await readFile(join(dir, LOG_FILE), 'utf8');
    await store.compact();
    await store.apply({ delete: ['a'], state: withCursor('3', 3) });
    await store.close();
    // A crash between the new snapshot and the new log would leave the old log behind.
    await writeFile(join(dir, LOG_FILE), oldLog);
    const again = await MirrorStore.open(dir);
    assert.deepEqual(again.ids().sort(), ['a', 'b'], 'the snapshot as compacted; the stale log replays nothing');
    assert.equal(again.state.cursor, '2');
    assert.match(again.stats().loadWarnings.join(' '), /generation/);
    await again.close();
  });

  test('compacts by itself once the log outgrows the snapshot, and loads the result', async () => {
    const dir = freshDir();
    const store = await MirrorStore.open(dir);
    for (let batch = 0; batch < 30; batch++) {
      const put = Array.from({ length: 100 }, (_, i) => asset(`a${batch * 100 + i}`));
      await store.apply({ put, state: withCursor(String(batch + 1), batch + 1) });
    }
    assert.ok(store.stats().logOps < 3000, 'the log was compacted along the way');
    await store.close();
    const again = await MirrorStore.open(dir);
    assert.equal(again.size, 3000);
    assert.equal(again.state.cursor, '30');
    await again.close();
  });

  test('a damaged snapshot is set aside and the mirror starts over (a full sync), with a clear error', async () => {
    const dir = freshDir();
    const store = await MirrorStore.open(dir);
    await store.apply({ put: [asset('a')], state: withCursor('1', 1) });
    await store.compact();
    await store.close();
    await writeFile(join(dir, SNAPSHOT_FILE), 'this is not a snapshot\n');
    const again = await MirrorStore.open(dir);
    assert.equal(again.size, 0);
    assert.equal(again.state.cursor, null);
    assert.equal(again.state.lastError?.code, 'ERR_MIRROR_UNAVAILABLE');
    assert.ok((await readdir(dir)).some((f) => f.startsWith(`${SNAPSHOT_FILE}.corrupt-`)));
    await again.close();
  });

  test('a full disk fails the batch with ERR_DISK_FULL and changes nothing, in memory or on disk', async () => {
    const dir = freshDir();
    let full = false;
    // The log handle writes half of what it is given, then fails like a full disk.
    const faulty: typeof open = (async (...args: Parameters<typeof open>) => {
      const handle = await open(...args);
      const write = handle.write.bind(handle) as (...a: unknown[]) => Promise<{ bytesWritten: number }>;
      (handle as unknown as { write: unknown }).write = async (buffer: Buffer, offset: number, length: number, position: number) => {
        if (!full) return write(buffer, offset, length, position);
        await write(buffer, offset, Math.floor(length / 2), position);
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      };
      return handle;
    }) as typeof open;
    const store = await MirrorStore.open(dir, { open: faulty });
    await store.apply({ put: [asset('a')], state: withCursor('1', 1) });
    const before = await readFile(join(dir, LOG_FILE), 'utf8');
    full = true;
    await assert.rejects(store.apply({ put: [asset('b')], delete: ['a'], state: withCursor('2', 2) }), (error) =>
      isProtocolError(error, 'ERR_DISK_FULL'),
    );
    assert.deepEqual(store.ids(), ['a']);
    assert.equal(store.state.cursor, '1');
    assert.equal(await readFile(join(dir, LOG_FILE), 'utf8'), before, 'the half-written batch was cut off again');
    full = false;
    await store.apply({ put: [asset('c')], state: withCursor('3', 3) });
    await store.close();
    const again = await MirrorStore.open(dir);
    assert.deepEqual(again.ids().sort(), ['a', 'c']);
    assert.equal(again.state.cursor, '3');
    assert.deepEqual(again.stats().loadWarnings, []);
    await again.close();
  });

  test('destroy removes the files', async () => {
    const dir = freshDir();
    const store = await MirrorStore.open(dir);
    await store.apply({ put: [asset('a')] });
    await store.destroy();
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
    await assert.rejects(store.apply({ put: [asset('b')] }), (e) => isProtocolError(e, 'ERR_SERVICE_UNAVAILABLE'));
  });
});
