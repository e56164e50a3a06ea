import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProtocolError, ProtocolError } from '../../../shared/errors.ts';
import type { ChangesPage } from '../../../shared/schemas/changes.ts';
import { MirrorStore } from './store.ts';
import { SyncEngine } from './sync-engine.ts';
import { FakeLibrary } from './testing/fake-library.ts';

const root = mkdtempSync(join(tmpdir(), 'imagine-mirror-engine-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function setup(library: FakeLibrary, options: { searchLimit?: number; feedLimit?: number } = {}) {
  const dir = join(root, `e${n++}`);
  const store = await MirrorStore.open(dir);
  const engine = new SyncEngine({ store, source: () => library, searchLimit: options.searchLimit ?? 7, feedLimit: options.feedLimit ?? 5 });
  return { dir, store, engine };
}

function populate(library: FakeLibrary, count: number): void {
  for (let i = 0; i < count; i++) library.create(`a${String(i).padStart(3, '0')}`, { title: `Picture ${i}` });
}

/** The mirror equals the server's live assets, field by field. */
function assertConverged(store: MirrorStore, library: FakeLibrary): void {
  const live = library.live().sort((a, b) => a.id.localeCompare(b.id));
  const mirrored = [...store.assets()].sort((a, b) => a.id.localeCompare(b.id));
  assert.deepEqual(mirrored, live);
}

describe('SyncEngine', () => {
  test('a first sync scans the library and takes the feed from its end', async () => {
    const library = new FakeLibrary();
    populate(library, 40);
    const { store, engine } = await setup(library);
    const report = await engine.run();
    assert.deepEqual(report.fullSyncs, ['first sync']);
    assertConverged(store, library);
    assert.equal(store.state.cursor, '40');
    assert.equal(store.state.lastSeq, 40);
    assert.equal(store.state.seqCursors, true);
    assert.ok(store.state.lastSync);
    assert.equal(library.calls.getAsset, 0, 'the scan reads whole pages, not one asset at a time');
    await store.close();
  });

  test('updates, deletions, rights changes and collection moves propagate through the feed', async () => {
    const library = new FakeLibrary();
    populate(library, 20);
    const { store, engine } = await setup(library, { feedLimit: 1000 });
    await engine.run();
    library.update('a001', { title: 'Changed' });
    library.update('a002', { usageTerms: 'Do not distribute' });
    library.remove('a003');
    library.create('new1', { title: 'Brand new' });
    library.addToCollection('col1', ['a004', 'a005']);
    library.update('new1', { keywords: ['late'] });
    library.remove('new1');
    const report = await engine.run();
    assert.deepEqual(report.fullSyncs, []);
    assertConverged(store, library);
    assert.equal(store.get('a002')?.rights.doNotDistribute, true);
    assert.deepEqual(store.get('a004')?.collections, ['col1']);
    assert.equal(store.has('a003'), false);
    assert.equal(store.has('new1'), false);
    assert.equal(library.calls.getAsset, 4, 'each named asset fetched once; deleted ones not at all');
    await store.close();
  });

  test('a crash in the middle of the first scan resumes where it stopped', async () => {
    const library = new FakeLibrary();
    populate(library, 50);
    const { dir, store, engine } = await setup(library);
    library.fault = (op) => (op === 'search' && library.calls.search === 4 ? new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'cut') : undefined);
    await assert.rejects(engine.run(), (e) => isProtocolError(e, 'ERR_UPSTREAM_UNREACHABLE'));
    assert.equal(store.size, 21, 'three pages of seven stored');
    assert.equal(store.state.initial?.page, '21');
    await store.close();

    library.fault = undefined;
    library.create('during', { title: 'made while the agent was down' });
    const reopened = await MirrorStore.open(dir);
    const searchesBefore = library.calls.search;
    const again = new SyncEngine({ store: reopened, source: () => library, searchLimit: 7, feedLimit: 5 });
    const report = await again.run();
    assert.deepEqual(report.fullSyncs, ['first sync']);
    assertConverged(reopened, library);
    // 29 assets left from offset 21 = 5 pages, plus the final count.
    assert.equal(library.calls.search - searchesBefore, 5 + 1);
    await reopened.close();
  });

  test('a cursor the server no longer knows means a full sync, not an error', async () => {
    const library = new FakeLibrary();
    populate(library, 15);
    const { store, engine } = await setup(library);
    await engine.run();
    library.remove('a000');
    library.update('a001', { title: 'x' });
    library.prunedThrough = library.nextSeq - 1; // the feed forgot everything the mirror had not read
    const report = await engine.run();
    assert.equal(report.fullSyncs.length, 1);
    assert.match(report.fullSyncs[0]!, /no longer knows/);
    assertConverged(store, library);
    assert.equal(store.state.resyncs, 1);
    assert.match(store.state.lastResync?.reason ?? '', /no longer knows/);
    await store.close();
  });

  test('a server restored from an older backup is detected and resynced (feed behind the cursor)', async () => {
    const library = new FakeLibrary();
    populate(library, 10);
    const backup = library.backup();
    library.create('lost1');
    library.update('a001', { title: 'lost edit' });
    const { store, engine } = await setup(library);
    await engine.run();
    assert.ok(store.has('lost1'));
    library.restore(backup);
    const report = await engine.run();
    assert.equal(report.fullSyncs.length, 1);
    assert.match(report.fullSyncs[0]!, /restored from a backup/);
    assertConverged(store, library);
    assert.equal(store.has('lost1'), false);
    await store.close();
  });

  test('a restored server that has since passed the old cursor is detected by the event at the cursor', async () => {
    const library = new FakeLibrary();
    populate(library, 10);
    const backup = library.backup();
    library.create('lost1');
    library.create('lost2');
    const { store, engine } = await setup(library);
    await engine.run();
    library.restore(backup);
    library.create('after1');
    library.create('after2');
    library.create('after3'); // seq 13: past the mirror's cursor (12), with other events at 11 and 12
    const report = await engine.run();
    assert.equal(report.fullSyncs.length, 1);
    assert.match(report.fullSyncs[0]!, /restored from a backup/);
    assertConverged(store, library);
    await store.close();
  });

  test('a feed that goes backwards inside the next page is a restore, not garbage', async () => {
    const library = new FakeLibrary();
    populate(library, 6);
    const { store, engine } = await setup(library);
    await engine.run();
    // A server whose cursors are not seq numbers (no probe): its next page starts at an old seq.
    await store.apply({ state: { ...store.state, seqCursors: false } });
    const real = library.changes.bind(library);
    let served = false;
    library.changes = async (since, limit) => {
      if (since === '6' && !served) {
        served = true;
        return { events: [{ seq: 3, id: 'evt-x', type: 'asset.created', time: '2025-01-02T00:00:00Z', subject: library.uri('a000') }], next: '7', hasMore: false };
      }
      return real(since, limit);
    };
    const report = await engine.run();
    assert.match(report.fullSyncs[0] ?? '', /restored from a backup/);
    assertConverged(store, library);
    await store.close();
  });

  const garbage: Array<[string, (page: ChangesPage, since: string | undefined) => unknown]> = [
    ['seq going backwards inside a page', (p) => ({ ...p, events: [{ ...p.events[0]!, seq: 100 }, { ...p.events[0]!, seq: 99 }] })],
    ['a subject that is not an imagine:// URI', (p) => ({ ...p, events: p.events.map((e) => ({ ...e, subject: 'http://evil.example/x' })) })],
    ['a collection event about an image', (p) => ({ ...p, events: [{ ...p.events[0]!, type: 'collection.items_added', items: [] }] })],
    ['more promised without moving the cursor', (_p, since) => ({ events: [], next: since, hasMore: true })],
    ['an empty cursor', (p) => ({ ...p, next: '' })],
  ];
  for (const [what, mangle] of garbage) {
    test(`garbage from the feed (${what}) stops the run and leaves the mirror as it was`, async () => {
      const library = new FakeLibrary();
      populate(library, 20);
      const { store, engine } = await setup(library, { feedLimit: 1000 });
      await engine.run();
      library.update('a001', { title: 'changed' });
      library.remove('a002');
      const before = JSON.stringify([...store.assets()]);
      const stateBefore = store.state;
      library.mangle = (page, since) => (page.events.length > 0 || what.startsWith('more') ? mangle(page, since) : page);
      await assert.rejects(engine.run(), (e) => isProtocolError(e, 'ERR_UPSTREAM_INVALID'));
      assert.equal(JSON.stringify([...store.assets()]), before);
      assert.equal(store.state.cursor, stateBefore.cursor);
      library.mangle = undefined;
      await engine.run();
      assertConverged(store, library);
      await store.close();
    });
  }

  test('an asset that fails to fetch (not gone) fails the page; nothing of it is applied', async () => {
    const library = new FakeLibrary();
    populate(library, 5);
    const { store, engine } = await setup(library);
    await engine.run();
    library.update('a001', { title: 'one' });
    library.update('a002', { title: 'two' });
    library.fault = (op, id) => (op === 'getAsset' && id === 'a002' ? new ProtocolError('ERR_UPSTREAM_INVALID', 'bad asset') : undefined);
    await assert.rejects(engine.run(), (e) => isProtocolError(e, 'ERR_UPSTREAM_INVALID'));
    assert.equal(store.get('a001')?.metadata.title, 'Picture 1');
    library.fault = undefined;
    await engine.run();
    assertConverged(store, library);
    await store.close();
  });

  test('an asset deleted during the scan cannot make it skip another: the count catches it', async () => {
    const library = new FakeLibrary();
    populate(library, 30);
    const { store, engine } = await setup(library);
    // After the first page (7 assets), an asset from that page is deleted: offsets shift by one.
    library.fault = (op) => {
      if (op === 'search' && library.calls.search === 2 && library.assets.get('a000')?.deleted === undefined) library.remove('a000');
      return undefined;
    };
    const report = await engine.run();
    library.fault = undefined;
    assertConverged(store, library);
    assert.ok(report.fullSyncs.length >= 1);
    await store.close();
  });

  test('mirroring chosen collections keeps only their assets, and follows moves in and out', async () => {
    const library = new FakeLibrary();
    populate(library, 12);
    library.addToCollection('c1', ['a000', 'a001', 'a002']);
    library.addToCollection('c2', ['a003']);
    const { store, engine } = await setup(library);
    await engine.setCollections(['c1']);
    await engine.run();
    assert.deepEqual(store.ids().sort(), ['a000', 'a001', 'a002']);
    library.addToCollection('c1', ['a005']);
    library.update('a006', { title: 'not in scope' });
    await engine.run();
    assert.deepEqual(store.ids().sort(), ['a000', 'a001', 'a002', 'a005']);
    await engine.setCollections(null);
    const report = await engine.run();
    assert.match(report.fullSyncs[0] ?? '', /collections changed/);
    assertConverged(store, library);
    await store.close();
  });

  test('an unreachable server fails the run with its code; the next run picks up', async () => {
    const library = new FakeLibrary();
    populate(library, 8);
    const { store, engine } = await setup(library);
    await engine.run();
    library.update('a000', { title: 'while offline' });
    library.fault = () => new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'connection refused');
    await assert.rejects(engine.run(), (e) => isProtocolError(e, 'ERR_UPSTREAM_UNREACHABLE'));
    await engine.noteError({ code: 'ERR_UPSTREAM_UNREACHABLE', message: 'connection refused' });
    assert.equal(store.state.lastError?.code, 'ERR_UPSTREAM_UNREACHABLE');
    library.fault = undefined;
    await engine.run();
    assertConverged(store, library);
    assert.equal(store.state.lastError, null);
    await store.close();
  });
});
