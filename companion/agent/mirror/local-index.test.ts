import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProtocolError } from '../../../shared/errors.ts';
import { parseSearchQuery } from '../../library/search-index.ts';
import { LocalIndex } from './local-index.ts';
import { MirrorStore } from './store.ts';
import { makeAsset } from './testing/fake-library.ts';

const root = mkdtempSync(join(tmpdir(), 'imagine-mirror-index-'));
after(() => rmSync(root, { recursive: true, force: true }));

const assets = [
  makeAsset('x', 'h1', { title: 'Harbour at dawn', keywords: ['harbour', 'boat'], collections: ['c1'], created: '2024-01-01T00:00:00Z', width: 800, height: 600, creator: ['Ada Moreau'] }),
  makeAsset('x', 'h2', { title: 'Harbour lights', keywords: ['harbour', 'night'], created: '2024-02-01T00:00:00Z', width: 600, height: 800, mediaType: 'image/png' }),
  makeAsset('x', 'm1', { title: 'Mountain lake', keywords: ['lake'], collections: ['c1'], created: '2024-03-01T00:00:00Z', usageTerms: 'Editorial only. Do not distribute.' }),
  makeAsset('x', 'v1', { title: 'Valparaíso stairs', keywords: ['stairs'], created: '2024-04-01T00:00:00Z', width: 500, height: 500 }),
];

async function indexed() {
  const store = await MirrorStore.open(join(root, `i${Math.random().toString(36).slice(2)}`));
  await store.apply({ put: assets });
  const index = new LocalIndex(store);
  await index.ready;
  return { store, index };
}

const ids = (page: { items: { id: string }[] }) => page.items.map((a) => a.id);

describe('LocalIndex', () => {
  test('answers the server query language: full text, filters, sorts, totals', async () => {
    const { store, index } = await indexed();
    assert.deepEqual(ids(index.search({ q: 'harbour' })).sort(), ['h1', 'h2']);
    assert.deepEqual(ids(index.search({ q: 'harb' })).sort(), ['h1', 'h2'], 'the last term is a prefix');
    assert.deepEqual(ids(index.search({ q: 'valparaiso' })), ['v1'], 'accents folded');
    assert.deepEqual(ids(index.search({ format: 'png' })), ['h2']);
    assert.deepEqual(ids(index.search({ orientation: 'portrait' })), ['h2']);
    assert.deepEqual(ids(index.search({ orientation: 'square' })), ['v1']);
    assert.deepEqual(ids(index.search({ collection: 'c1', sort: 'created' })), ['h1', 'm1']);
    assert.deepEqual(ids(index.search({ creator: 'ada moreau' })), ['h1']);
    assert.deepEqual(ids(index.search({ keyword: 'lake' })), ['m1']);
    assert.deepEqual(ids(index.search({ rights: 'restricted' })), ['m1']);
    assert.deepEqual(ids(index.search({ createdAfter: '2024-02-15' , sort: 'created' })), ['m1', 'v1']);
    assert.deepEqual(ids(index.search({ sort: 'title' })), ['h1', 'h2', 'm1', 'v1']);
    const first = index.search({ sort: '-created', limit: 3 });
    assert.deepEqual(ids(first), ['v1', 'm1', 'h2']);
    assert.equal(first.total, 4);
    const second = index.search({ sort: '-created', limit: 3, cursor: first.next! });
    assert.deepEqual(ids(second), ['h1']);
    assert.equal(second.next, null);
    assert.deepEqual(index.search({ q: 'dawn' }).items[0], assets.find((a) => a.id === 'h1'), 'whole assets come back');
    await store.close();
  });

  test('rejects what the server rejects (parsed the same way)', async () => {
    const { store, index } = await indexed();
    assert.throws(() => index.search({ q: 'harbour', cursor: 'nonsense!' }), (e) => isProtocolError(e, 'ERR_BAD_REQUEST'));
    const page = index.search({ q: 'harbour', limit: 1 });
    assert.throws(() => index.search({ q: 'lake', cursor: page.next! }), (e) => isProtocolError(e, 'ERR_BAD_REQUEST'));
    assert.throws(() => parseSearchQuery({ orientation: 'diagonal' }), (e) => isProtocolError(e, 'ERR_VALIDATION'));
    await store.close();
  });

  test('follows the store: writes, deletions, a clear', async () => {
    const { store, index } = await indexed();
    await store.apply({ put: [makeAsset('x', 'h3', { title: 'Harbour wall' })], delete: ['h1'] });
    assert.deepEqual(ids(index.search({ q: 'harbour' })).sort(), ['h2', 'h3']);
    await store.apply({ put: [{ ...assets[1]!, metadata: { title: 'Night market' } }] });
    assert.deepEqual(ids(index.search({ q: 'harbour' })), ['h3']);
    assert.deepEqual(ids(index.search({ q: 'market' })), ['h2']);
    await store.apply({ clear: true, put: [makeAsset('x', 'z', { title: 'Only one' })] });
    assert.deepEqual(ids(index.search({})), ['z']);
    assert.equal(index.size, 1);
    await store.close();
  });
});
