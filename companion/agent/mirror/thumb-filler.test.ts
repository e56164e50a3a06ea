import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError } from '../../../shared/errors.ts';
import { MirrorStore } from './store.ts';
import { ThumbFiller, type ThumbsLike } from './thumb-filler.ts';
import { makeAsset } from './testing/fake-library.ts';
import { FakeThumbs, unrenderable } from './testing/fake-thumbs.ts';

const root = mkdtempSync(join(tmpdir(), 'imagine-mirror-thumbs-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function setup(count: number, maxBytes: number) {
  const store = await MirrorStore.open(join(root, `t${n++}`));
  const put = Array.from({ length: count }, (_, i) => ({
    ...makeAsset('x', `a${i}`),
    updated: new Date(Date.UTC(2024, 0, 1 + i)).toISOString(),
  }));
  put.push({ ...makeAsset('x', 'nothumb'), thumbnail: null, iiif: null });
  put.push({ ...makeAsset('x', 'gone'), deleted: '2024-01-01T00:00:00Z' });
  await store.apply({ put });
  const thumbs = new FakeThumbs();
  let clock = 0;
  const filler = new ThumbFiller({ connectionId: 'c', store, thumbs, maxBytes, concurrency: 2, now: () => clock });
  return { store, thumbs, filler, advance: (ms: number) => (clock += ms) };
}

describe('ThumbFiller', () => {
  test('fetches the missing thumbnails, newest first, skipping assets without one', async () => {
    const { store, thumbs, filler } = await setup(10, 1_000_000);
    filler.wake();
    await filler.idle();
    assert.equal(thumbs.images.size, 10);
    assert.equal(thumbs.asked[0], 'c/a9/a9-v1');
    assert.ok(!thumbs.asked.some((k) => k.includes('nothumb') || k.includes('gone')));
    filler.wake();
    await filler.idle();
    assert.equal(thumbs.asked.length, 10, 'nothing fetched twice');
    assert.deepEqual(filler.status(), { cached: 10, bytes: 1000, failed: 0, filling: false });
    await store.close();
  });

  test('stops before the cache is full rather than evict what the user looked at', async () => {
    const { store, thumbs, filler } = await setup(20, 1000);
    filler.wake();
    await filler.idle();
    assert.ok(thumbs.stats().bytes <= 1000 && thumbs.images.size >= 8, `${thumbs.images.size} fetched`);
    assert.match(filler.status().stopped ?? '', /nearly full/);
    await store.close();
  });

  test('a thumbnail that cannot be made is noted and not asked for again for a while', async () => {
    const { store, thumbs, filler, advance } = await setup(4, 1_000_000);
    thumbs.fail = (key) => (key === 'c/a2/a2-v1' ? unrenderable() : undefined);
    filler.wake();
    await filler.idle();
    assert.equal(thumbs.images.size, 3);
    const status = filler.status();
    assert.equal(status.failed, 1);
    assert.equal(status.lastError?.code, 'ERR_NOT_AN_IMAGE');
    filler.wake();
    await filler.idle();
    assert.equal(thumbs.asked.filter((k) => k === 'c/a2/a2-v1').length, 1);
    advance(2 * 60 * 60_000);
    thumbs.fail = undefined;
    filler.wake();
    await filler.idle();
    assert.equal(thumbs.images.size, 4);
    assert.equal(filler.status().failed, 0);
    await store.close();
  });

  test('failures of assets deleted or changed since no longer count', async () => {
    const { store, thumbs, filler } = await setup(4, 1_000_000);
    thumbs.fail = (key) => (key === 'c/a1/a1-v1' || key === 'c/a2/a2-v1' ? unrenderable() : undefined);
    filler.wake();
    await filler.idle();
    assert.equal(filler.status().failed, 2);
    await store.apply({ delete: ['a1'], put: [{ ...makeAsset('x', 'a2'), currentVersion: 'a2-v2' }] });
    assert.equal(filler.status().failed, 0, 'a1 is gone and a2 has a new version to try');
    await store.close();
  });

  test('a failure of an asset removed while its thumbnail was fetched is not reported', async () => {
    const { store, thumbs } = await setup(3, 1_000_000);
    const deletingThumbs: ThumbsLike = {
      has: (c, a, v) => thumbs.has(c, a, v),
      remove: (c, a) => thumbs.remove(c, a),
      stats: (c) => thumbs.stats(c),
      async ensure(connectionId, assetId, version) {
        if (assetId !== 'a1') return thumbs.ensure(connectionId, assetId, version);
        await store.apply({ delete: ['a1'] });
        throw new ProtocolError('ERR_ASSET_GONE', 'deleted meanwhile');
      },
    };
    const filler = new ThumbFiller({ connectionId: 'c', store, thumbs: deletingThumbs, maxBytes: 1_000_000 });
    filler.wake();
    await filler.idle();
    const status = filler.status();
    assert.equal(status.failed, 0);
    assert.equal(status.lastError, undefined);
    assert.equal(status.cached, 2);
    await store.close();
  });

  test('an unreachable server ends the pass without marking anything failed', async () => {
    const { store, thumbs, filler } = await setup(6, 1_000_000);
    thumbs.fail = () => new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'refused');
    filler.wake();
    await filler.idle();
    assert.ok(thumbs.asked.length <= 2, 'each worker stops at its first refusal');
    assert.equal(filler.status().failed, 0);
    assert.match(filler.status().stopped ?? '', /unreachable/);
    thumbs.fail = undefined;
    filler.wake();
    await filler.idle();
    assert.equal(thumbs.images.size, 6);
    await filler.forget(['a1', 'a2']);
    assert.equal(thumbs.images.size, 4);
    await store.close();
  });
});
