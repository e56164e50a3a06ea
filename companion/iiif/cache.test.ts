import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKey, DiskCache } from './cache.ts';
import { BusyError, Limiter, SingleFlight } from './limit.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-cache-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const kb = (n: number, fill = 1) => Buffer.alloc(n * 1024, fill);

describe('DiskCache', () => {
  test('keys are content addresses; put then get, across a restart', async () => {
    const folder = join(dir, 'a');
    const cache = new DiskCache({ dir: folder, maxBytes: 1024 * 1024 });
    await cache.init();
    const key = cacheKey('source-sha', 'full/max/0/default.jpg');
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(await cache.get(key), undefined);
    await cache.put(key, kb(3));
    assert.equal((await cache.get(key))?.length, 3 * 1024);
    const again = new DiskCache({ dir: folder, maxBytes: 1024 * 1024 });
    await again.init();
    assert.equal(again.size.entries, 1);
    assert.equal((await again.get(key))?.length, 3 * 1024);
    assert.throws(() => cache.pathOf('../../etc/passwd'));
  });

  test('evicts least recently used entries beyond the bound, never pinned ones', async () => {
    const cache = new DiskCache({ dir: join(dir, 'b'), maxBytes: 10 * 1024 });
    await cache.init();
    const keys = Array.from({ length: 5 }, (_, i) => cacheKey(String(i)));
    for (const key of keys.slice(0, 4)) await cache.put(key, kb(3));
    // 4 x 3 KiB > 10 KiB: the oldest went.
    assert.equal(cache.has(keys[0]!), false);
    assert.ok(cache.size.bytes <= 10 * 1024);
    await cache.get(keys[1]!); // now most recent
    const unpin = cache.pin(keys[2]!);
    await cache.put(keys[4]!, kb(3));
    assert.equal(cache.has(keys[1]!), true, 'recently used stays');
    assert.equal(cache.has(keys[2]!), true, 'pinned stays');
    assert.equal(cache.has(keys[3]!), false, 'least recently used unpinned went');
    unpin();
    const files = (await readdir(join(dir, 'b'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(String(f)));
    assert.equal(files.length, cache.size.entries, 'index and disk agree');
  });

  test('the index is rebuilt oldest first and trimmed to the bound at start', async () => {
    const folder = join(dir, 'c');
    const cache = new DiskCache({ dir: folder, maxBytes: 100 * 1024 });
    await cache.init();
    const old = cacheKey('old');
    const recent = cacheKey('recent');
    await cache.put(old, kb(6));
    await cache.put(recent, kb(6));
    await utimes(cache.pathOf(old), new Date(1000), new Date(1000));
    const small = new DiskCache({ dir: folder, maxBytes: 8 * 1024 });
    await small.init();
    assert.equal(small.has(old), false);
    assert.equal(small.has(recent), true);
  });

  test('a file removed behind its back is a miss, not an error', async () => {
    const cache = new DiskCache({ dir: join(dir, 'd'), maxBytes: 100 * 1024 });
    await cache.init();
    const key = cacheKey('gone');
    await cache.put(key, kb(1));
    await rm(cache.pathOf(key));
    assert.equal(await cache.get(key), undefined);
    assert.equal(cache.has(key), false);
  });
});

describe('Limiter and SingleFlight', () => {
  test('at most `active` run, at most `queue` wait, the rest are refused', async () => {
    const limiter = new Limiter({ active: 2, queue: 1 });
    let running = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const task = () =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => release.push(r));
        running--;
      });
    const started = [task(), task(), task()];
    await assert.rejects(task(), BusyError);
    await new Promise((r) => setImmediate(r));
    assert.equal(limiter.running, 2);
    assert.equal(limiter.waiting, 1);
    while (release.length) {
      release.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(started);
    assert.equal(peak, 2);
    assert.equal(limiter.running, 0);
  });

  test('equal keys share one run', async () => {
    const flight = new SingleFlight<number>();
    let calls = 0;
    const run = () => flight.run('k', async () => (await new Promise((r) => setTimeout(r, 10)), ++calls));
    assert.deepEqual(await Promise.all([run(), run(), run()]), [1, 1, 1]);
    assert.equal(await run(), 2);
  });
});
