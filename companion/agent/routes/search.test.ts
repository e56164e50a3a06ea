// The agent's search fan-out against small protocol servers on real sockets: each source's
// status (ok, slow, failed, offline) instead of one failure, answers from the assets seen
// before when a server is unreachable (no mirror here), the combined cursor, connection states.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { loadConfig } from '../../config.ts';
import { installProblemHandlers } from '../../http/problem.ts';
import { openAgentServices, type AgentServices } from '../services.ts';
import { connectionIdOf } from '../connections.ts';
import { decodeCursor, encodeCursor } from '../search-cursor.ts';
import { searchRoutes } from './search.ts';
import type { AgentSearchPage } from '../../../shared/schemas/agent.ts';

function asset(origin: string, id: string, title: string) {
  const authority = origin.slice('http://'.length);
  return {
    id,
    uri: `imagine://${authority}/images/${id}`,
    filename: `${id}.jpg`,
    mediaType: 'image/jpeg',
    created: '2026-01-01T00:00:00.000Z',
    updated: '2026-01-01T00:00:00.000Z',
    currentVersion: 'v1',
    metadata: { title },
    versions: [],
    rights: { doNotDistribute: false, expired: false },
    collections: [],
    thumbnail: `${origin}/api/v1/assets/${id}/thumbnail?v=v1`,
    iiif: null,
  };
}

interface Fake {
  app: FastifyInstance;
  origin: string;
  searches: number;
}

/** A minimal protocol server: discovery and search (two pages of one item each, or a failure). */
async function fakeServer(behaviour: 'ok' | 'slow' | 'refuse'): Promise<Fake> {
  const app = Fastify();
  const fake = { app, origin: '', searches: 0 } as Fake;
  app.get('/.well-known/imagine', async () => ({
    protocol: 'imagine',
    version: '0.1',
    server: { origin: fake.origin, domain: fake.origin.slice('http://'.length) },
    endpoints: { api: `${fake.origin}/api/v1` },
    links: { capabilities: `${fake.origin}/.well-known/imagine/capabilities`, metadataProfile: `${fake.origin}/.well-known/imagine/metadata-profile` },
  }));
  app.get<{ Querystring: { cursor?: string; q?: string } }>('/api/v1/assets', async (request, reply) => {
    fake.searches += 1;
    if (behaviour === 'refuse') {
      return reply.code(401).type('application/problem+json').send({ type: 'urn:imagine:error:ERR_TOKEN_INVALID', title: 'Token is not valid', status: 401, code: 'ERR_TOKEN_INVALID', detail: 'token revoked' });
    }
    if (behaviour === 'slow') await new Promise((resolve) => setTimeout(resolve, 1_500));
    const second = request.query.cursor === 'p2';
    const id = `${behaviour}${second ? 2 : 1}`;
    return { items: [asset(fake.origin, id, `harbour ${id}`)], next: second ? null : 'p2', total: 2 };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  fake.origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return fake;
}

const dataDir = mkdtempSync(join(tmpdir(), 'imagine-agent-search-'));
let services: AgentServices;
let app: FastifyInstance;
let ok: Fake;
let slow: Fake;
let refuse: Fake;
let gone: Fake;

async function add(fake: Fake) {
  const now = new Date().toISOString();
  const id = connectionIdOf(fake.origin);
  await services.connections.add({ id, origin: fake.origin, domain: id, name: id, authenticated: false, state: 'unknown', added: now });
  return id;
}

before(async () => {
  [ok, slow, refuse, gone] = await Promise.all([fakeServer('ok'), fakeServer('slow'), fakeServer('refuse'), fakeServer('ok')]);
  services = await openAgentServices(loadConfig({ flags: { dataDir, role: 'agent' }, readFile: false }));
  services.mirror = undefined; // this test is about the agent without its mirror
  services.origin = 'http://127.0.0.1:7420';
  for (const fake of [ok, slow, refuse, gone]) await add(fake);
  // The same validation options as the companion's app (companion/app.ts).
  app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } } });
  installProblemHandlers(app);
  await app.register(searchRoutes, { services, deadlineMs: 300 });
  await app.ready();
});

after(async () => {
  await app?.close();
  await services?.close();
  await Promise.all([ok, slow, refuse, gone].map((f) => f?.app.close()));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('GET /search', () => {
  let first: AgentSearchPage;

  test('one page from every source, each with its status', async () => {
    // `gone` is seen once while it runs, then stops.
    const warm = await app.inject({ url: `/search?connection=${connectionIdOf(gone.origin)}` });
    assert.equal(warm.statusCode, 200, warm.body);
    await gone.app.close();

    const started = Date.now();
    const response = await app.inject({ url: '/search?q=harbour' });
    assert.equal(response.statusCode, 200, response.body);
    assert.ok(Date.now() - started < 1_400, 'the slow source did not hold the page up');
    first = response.json();
    const by = Object.fromEntries(first.sources.map((s) => [s.connection, s]));
    assert.equal(by[connectionIdOf(ok.origin)]!.state, 'ok');
    assert.equal(by[connectionIdOf(ok.origin)]!.total, 2);
    assert.equal(by[connectionIdOf(slow.origin)]!.state, 'slow');
    assert.equal(by[connectionIdOf(refuse.origin)]!.state, 'failed');
    assert.equal(by[connectionIdOf(refuse.origin)]!.error?.code, 'ERR_TOKEN_INVALID');
    assert.equal(by[connectionIdOf(gone.origin)]!.state, 'offline');
    assert.equal(by[connectionIdOf(gone.origin)]!.local, true);
    assert.deepEqual(first.items.map((a) => a.id).sort(), ['ok1', 'ok1']);
    assert.deepEqual(new Set(first.items.map((a) => a.connection)), new Set([connectionIdOf(ok.origin), connectionIdOf(gone.origin)]));
    for (const item of first.items) assert.match(item.thumbnailUrl!, /^\/agent\/v1\/thumbs\//);
  });

  test('records each connection state', () => {
    const state = (f: Fake) => services.connections.get(connectionIdOf(f.origin))!.state;
    assert.equal(state(ok), 'ok');
    assert.equal(state(refuse), 'unauthorized');
    assert.equal(state(gone), 'offline');
    assert.equal(services.connections.get(connectionIdOf(refuse.origin))!.lastError?.code, 'ERR_TOKEN_INVALID');
  });

  test('the combined cursor continues only the sources that have more', async () => {
    const cursor = decodeCursor(first.next!);
    assert.deepEqual(Object.keys(cursor).sort(), [connectionIdOf(ok.origin)]);
    const response = await app.inject({ url: `/search?q=harbour&cursor=${first.next}` });
    const page = response.json() as AgentSearchPage;
    assert.deepEqual(page.items.map((a) => a.id), ['ok2']);
    assert.equal(page.next, null);
  });

  test('a slow source answers later, and what it answered is kept for offline use', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.ok(services.assetCache.get(connectionIdOf(slow.origin), 'slow1'), 'the late page was remembered');
  });

  test('refuses cursors it did not make, and hostile ones', async () => {
    for (const cursor of ['x', 'not base64!', Buffer.from('{"v":2,"s":{}}').toString('base64url'),
      Buffer.from('{"v":1,"s":{"a":{"c":1}}}').toString('base64url'),
      Buffer.from('{"v":1,"s":{"a":{"c":"x","z":1}}}').toString('base64url')]) {
      const response = await app.inject({ url: `/search?cursor=${encodeURIComponent(cursor)}` });
      assert.equal(response.statusCode, 400, `${cursor}: ${response.body}`);
      assert.equal(response.json().code, 'ERR_VALIDATION');
    }
    assert.equal(encodeCursor({}), null);
    // `__proto__` is a name like any other: no connection has it, nothing is polluted.
    const proto = Buffer.from('{"v":1,"s":{"__proto__":{"c":"x"}}}').toString('base64url');
    const response = await app.inject({ url: `/search?cursor=${proto}` });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json().items, []);
    assert.equal(({} as { c?: string }).c, undefined);
  });

  test('rejects unknown parameters and bad values', async () => {
    assert.equal((await app.inject({ url: '/search?limit=0' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/search?sort=sideways' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/search?evil=1' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/search?connection=nobody' })).json().code, 'ERR_CONNECTION_NOT_FOUND');
  });
});

describe('the seen-asset cache', () => {
  test('searches what was seen: terms, filters, pages', () => {
    const cache = services.assetCache;
    const id = 'cache.example';
    cache.remember(id, [asset('http://cache.example', 'a1', 'Harbour at dawn'), asset('http://cache.example', 'a2', 'Field'), asset('http://cache.example', 'a3', 'harbour wall')]);
    assert.deepEqual(cache.search(id, { q: 'harbour' }).items.map((a) => a.id), ['a3', 'a1']);
    assert.deepEqual(cache.search(id, { q: 'harbour dawn' }).items.map((a) => a.id), ['a1']);
    const page = cache.search(id, { limit: 2 });
    assert.equal(page.items.length, 2);
    assert.equal(cache.search(id, { limit: 2, cursor: page.next! }).items.length, 1);
    assert.throws(() => cache.search(id, { cursor: 'garbage' }), { code: 'ERR_VALIDATION' });
    cache.forget(id, 'a1');
    assert.equal(cache.get(id, 'a1'), undefined);
    cache.forget(id);
    assert.equal(cache.knows(id), false);
  });
});
