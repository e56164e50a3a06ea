import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError, isProtocolError } from '../../../shared/errors.ts';
import type { Connection } from '../../../shared/schemas/agent.ts';
import { Mirror, mirrorFolderOf, type MirrorHost } from './mirror.ts';
import { FakeLibrary } from './testing/fake-library.ts';
import { FakeThumbs } from './testing/fake-thumbs.ts';

const root = mkdtempSync(join(tmpdir(), 'imagine-mirror-service-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function connection(id: string): Connection {
  return { id, origin: `https://${id}`, domain: id, name: id, authenticated: true, state: 'ok', added: '2025-01-01T00:00:00Z' };
}

function host(libraries: Record<string, FakeLibrary>) {
  const list = Object.keys(libraries).map(connection);
  const states: Array<[string, string]> = [];
  const thumbs = new FakeThumbs();
  const value: MirrorHost & { list: Connection[] } = {
    list,
    dir: join(root, `agent${n++}`),
    config: { syncIntervalSeconds: 3600, agentCacheBytes: 1_000_000 },
    connections: {
      list: () => list,
      markState: async (id, state) => {
        states.push([id, state]);
      },
    },
    client: (id) => {
      const library = libraries[id];
      if (!library) throw new ProtocolError('ERR_CONNECTION_NOT_FOUND', id);
      return library;
    },
    thumbs,
  };
  return { host: value, thumbs, states };
}

function library(count: number, authority: string): FakeLibrary {
  const lib = new FakeLibrary(authority);
  for (let i = 0; i < count; i++) lib.create(`${authority[0]}${i}`, { title: i % 2 ? `Harbour ${i}` : `Forest ${i}` });
  return lib;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Mirror', () => {
  test('syncs every connection once started, answers searches and assets, reports status', async () => {
    const a = library(12, 'alpha.example');
    const b = library(5, 'beta.example');
    const { host: h, thumbs, states } = host({ 'alpha.example': a, 'beta.example': b });
    const mirror = await Mirror.open(h, { engine: { searchLimit: 5 } });
    assert.equal(await mirror.search('alpha.example', { q: 'harbour' }), undefined, 'nothing before the first sync');
    mirror.start();
    await until('both synced', () => mirror.status().every((s) => s.state === 'idle' && s.lastSync !== null));
    const page = await mirror.search('alpha.example', { q: 'harbour' });
    assert.equal(page?.total, 6);
    assert.equal((await mirror.getAsset('beta.example', 'b3'))?.id, 'b3');
    assert.equal(await mirror.getAsset('beta.example', 'nope'), undefined);
    await mirror.thumbnailsIdle('alpha.example');
    await mirror.thumbnailsIdle('beta.example');
    const status = mirror.statusOf('alpha.example');
    assert.equal(status.assets, 12);
    assert.equal(status.phase, 'incremental');
    assert.equal(status.thumbnails.cached, 12);
    assert.equal(status.bytesOnDisk, status.metadataBytes + 12 * thumbs.size);
    assert.ok(status.lagSeconds !== null && status.lagSeconds < 60);
    assert.equal(status.lastError, undefined);
    assert.ok(status.nextSync, 'the next run is scheduled');
    assert.ok(states.some(([id, state]) => id === 'beta.example' && state === 'ok'));
    await mirror.close();
  });

  test('an unreachable server: offline with its error, local answers kept; recovery clears it', async () => {
    const a = library(6, 'alpha.example');
    const { host: h, states } = host({ 'alpha.example': a });
    const mirror = await Mirror.open(h, { firstBackoffMs: 60_000 });
    await mirror.syncNow('alpha.example', { wait: true });
    a.fault = () => new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'connection refused');
    const offline = await mirror.syncNow('alpha.example', { wait: true });
    assert.equal(offline.state, 'offline');
    assert.equal(offline.lastError?.code, 'ERR_UPSTREAM_UNREACHABLE');
    assert.equal((await mirror.search('alpha.example', {}))?.total, 6, 'the mirror still answers');
    assert.deepEqual(states.at(-1), ['alpha.example', 'offline']);
    a.fault = undefined;
    a.create('a-new', { title: 'After the outage' });
    const back = await mirror.syncNow('alpha.example', { wait: true });
    assert.equal(back.state, 'idle');
    assert.equal(back.lastError, undefined);
    assert.equal(back.assets, 7);
    await mirror.close();
  });

  test('a first sync that never got anywhere leaves no mirror to answer from', async () => {
    const a = library(3, 'alpha.example');
    a.fault = () => new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'down');
    const { host: h } = host({ 'alpha.example': a });
    const mirror = await Mirror.open(h);
    const status = await mirror.syncNow('alpha.example', { wait: true });
    assert.equal(status.state, 'offline');
    assert.equal(status.phase, 'initial');
    assert.equal(await mirror.search('alpha.example', {}), undefined);
    assert.equal(await mirror.isAvailable('alpha.example'), false);
    assert.throws(() => mirror.statusOf('nope'), (e) => isProtocolError(e, 'ERR_CONNECTION_NOT_FOUND'));
    await mirror.close();
  });

  test('garbage from a server: error state with the reason, mirror untouched, and it resumes', async () => {
    const a = library(4, 'alpha.example');
    const { host: h } = host({ 'alpha.example': a });
    const mirror = await Mirror.open(h);
    await mirror.syncNow('alpha.example', { wait: true });
    a.update('a1', { title: 'edited' });
    a.mangle = (page) => ({ ...page, events: page.events.map((e) => ({ ...e, subject: 'not a uri' })) });
    const status = await mirror.syncNow('alpha.example', { wait: true });
    assert.equal(status.state, 'error');
    assert.equal(status.lastError?.code, 'ERR_UPSTREAM_INVALID');
    assert.equal((await mirror.getAsset('alpha.example', 'a1'))?.metadata.title, 'Harbour 1');
    a.mangle = undefined;
    const back = await mirror.syncNow('alpha.example', { wait: true });
    assert.equal(back.state, 'idle');
    assert.equal((await mirror.getAsset('alpha.example', 'a1'))?.metadata.title, 'edited');
    await mirror.close();
  });

  test('keeps the mirror across a restart, and deletes it with its connection', async () => {
    const a = library(5, 'alpha.example');
    const { host: h, thumbs } = host({ 'alpha.example': a });
    const first = await Mirror.open(h);
    await first.syncNow('alpha.example', { wait: true });
    await first.thumbnailsIdle('alpha.example');
    await first.close();

    const second = await Mirror.open(h);
    assert.equal((await second.search('alpha.example', {}))?.total, 5, 'answers before any sync');
    const folder = join(h.dir, 'mirror', mirrorFolderOf('alpha.example'));
    assert.ok(existsSync(folder));
    h.list.splice(0, 1);
    assert.deepEqual(second.status(), []);
    await until('the folder is removed', () => !existsSync(folder));
    await until('the thumbnails are removed', () => thumbs.stats('alpha.example').count === 0);
    await second.close();
  });

  test('a connection added later is noticed and synced', async () => {
    const a = library(2, 'alpha.example');
    const libs: Record<string, FakeLibrary> = { 'alpha.example': a };
    const { host: h } = host(libs);
    const mirror = await Mirror.open(h, { intervalMs: 3_600_000 });
    mirror.start();
    libs['beta.example'] = library(3, 'beta.example');
    h.list.push(connection('beta.example'));
    await until('beta synced', () => mirror.status().some((s) => s.connection === 'beta.example' && s.assets === 3));
    await mirror.close();
  });

  test('mirror folders of unsafe connection ids are hashed', () => {
    assert.equal(mirrorFolderOf('images.example'), 'images.example');
    assert.match(mirrorFolderOf('../etc'), /^h-[0-9a-f]{32}$/);
  });
});
