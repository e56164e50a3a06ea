// The agent core end to end, on real sockets: two real library servers and a real agent
// (companion/main.ts startServer, role agent, port 0), driven over HTTP and through the CLI
// twins (`imagine pair`, `imagine connect` as child processes). Pairing, connecting by origin,
// bare domain and imagine:// URI, tokens checked, search fanned out with one server stopped,
// thumbnails cached (and evicted over the bound), offline browsing, and the guard's refusals.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../companion/config.ts';
import { startServer as startCompanion, type RunningServer } from '../companion/main.ts';
import { callAgent } from '../companion/commands/agent-call.ts';
import { AgentUrlSigner } from '../companion/agent/url-signer.ts';
import { ThumbCache } from '../companion/agent/thumb-cache.ts';
import { ProtocolClient } from '../shared/client.ts';
import type { AgentAsset, AgentSearchPage, Connection } from '../shared/schemas/agent.ts';
import { startTestLibrary, type TestLibrary } from './helpers/test-library.ts';
import { json, killChildren, lastLine, listTree, rawRequest, runCli, uniqueJpeg } from './helpers/integration.ts';

const tmp = mkdtempSync(join(tmpdir(), 'imagine-agent-core-'));
let lib1: TestLibrary;
let lib2: TestLibrary;
let agent: RunningServer;
let agentData: string;
let token: string;
const lib1Requests: string[] = [];
const lib2Requests: string[] = [];
let lib2Stopped = false;

async function addAssets(lib: TestLibrary, names: string[], seed: number) {
  const client = new ProtocolClient({ origin: lib.origin, fetch, token: lib.admin });
  const out = [];
  for (const [i, name] of names.entries()) {
    const body = await uniqueJpeg(seed + i, 200, 150);
    out.push(await client.createAsset(new Uint8Array(body), { filename: name, contentType: 'image/jpeg' }));
  }
  return out;
}

async function startAgent(dataDir: string, flags: Record<string, unknown> = {}): Promise<RunningServer> {
  const config = loadConfig({
    flags: { dataDir, role: 'agent', host: '127.0.0.1', port: 0, logLevel: 'warn', ...flags },
    readFile: false,
  });
  return startCompanion(config);
}

function agentFetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  return fetch(`${agent.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
  });
}

before(async () => {
  lib1 = await startTestLibrary({ name: 'agent-core-1', flags: { role: 'library' } });
  lib2 = await startTestLibrary({ name: 'agent-core-2', flags: { role: 'library' } });
  lib1.app.server.on('request', (req: { url?: string }) => lib1Requests.push(req.url ?? ''));
  lib2.app.server.on('request', (req: { url?: string }) => lib2Requests.push(req.url ?? ''));
  await addAssets(lib1, ['harbour-dawn.jpg', 'harbour-noon.jpg', 'field.jpg'], 10);
  await addAssets(lib2, ['harbour-dusk.jpg', 'forest.jpg'], 20);
  agentData = join(tmp, 'agent');
  agent = await startAgent(agentData);
});

after(async () => {
  killChildren();
  await agent?.close();
  await lib1?.close();
  await lib2?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('pairing', () => {
  test('imagine pair prints the token as its last line, and as JSON', async () => {
    const run = await runCli(['pair', '--data', agentData]);
    assert.equal(run.code, 0, run.stderr);
    token = lastLine(run.stdout);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await readFile(join(agentData, 'agent', 'pairing-token'), 'utf8')).trim(), token);
    assert.equal((await stat(join(agentData, 'agent', 'pairing-token'))).mode & 0o777, 0o600);
    const asJson = await runCli(['pair', '--data', agentData, '--json']);
    assert.equal(asJson.code, 0, asJson.stderr);
    const parsed = JSON.parse(asJson.stdout) as { token: string; agent: string };
    assert.equal(parsed.token, token);
    assert.equal(parsed.agent, `${agent.url}/agent/v1`);
  });

  test('agent.json tells the CLI where the agent is', async () => {
    const info = JSON.parse(await readFile(join(agentData, 'agent', 'agent.json'), 'utf8')) as { url: string; pid: number };
    assert.equal(info.url, agent.url);
    assert.equal(info.pid, process.pid);
    const status = (await callAgent(agentData, 'GET', '/status')) as { origin: string };
    assert.equal(status.origin, agent.url);
  });

  test('callAgent says when no agent runs, and turns problems into their codes', async () => {
    await assert.rejects(callAgent(join(tmp, 'no-agent-here'), 'GET', '/status'), { code: 'ERR_AGENT_NOT_RUNNING' });
    await assert.rejects(callAgent(agentData, 'GET', '/connections/x/y'), { code: 'ERR_ROUTE_NOT_FOUND' });
    await assert.rejects(callAgent(agentData, 'DELETE', '/connections/nobody'), { code: 'ERR_CONNECTION_NOT_FOUND' });
  });
});

describe('connections', () => {
  test('imagine connect URL --token adds a server, by origin', async () => {
    const run = await runCli(['connect', lib1.origin, '--token', lib1.admin, '--data', agentData, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const connection = JSON.parse(run.stdout) as Connection;
    assert.equal(connection.origin, lib1.origin);
    assert.equal(connection.id, lib1.origin.slice('http://'.length).replace(':', '_'));
    assert.equal(connection.authenticated, true);
    assert.equal(connection.state, 'ok');
    assert.equal((connection as { token?: string }).token, undefined, 'the token never leaves the agent');
  });

  test('a wrong token is refused with its code and nothing is stored', async () => {
    const response = await agentFetch('/agent/v1/connections', {
      method: 'POST',
      body: JSON.stringify({ url: lib2.origin, token: 'not-a-real-token' }),
    });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { code: string }).code, 'ERR_TOKEN_INVALID');
    const run = await runCli(['connect', lib2.origin, '--token', 'nope', '--data', agentData]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /ERR_TOKEN_INVALID/);
    const list = (await callAgent(agentData, 'GET', '/connections')) as { items: Connection[] };
    assert.deepEqual(list.items.map((c) => c.origin), [lib1.origin]);
  });

  test('by a bare domain, then again by an imagine:// URI after removing it', async () => {
    const port = new URL(lib2.origin).port;
    const byDomain = await agentFetch('/agent/v1/connections', {
      method: 'POST',
      body: JSON.stringify({ url: `localhost:${port}`, token: lib2.admin, name: 'Second library' }),
    });
    assert.equal(byDomain.status, 201, await byDomain.clone().text());
    const first = (await byDomain.json()) as Connection;
    assert.equal(first.origin, `http://localhost:${port}`);
    assert.equal(first.name, 'Second library');

    const again = await agentFetch('/agent/v1/connections', {
      method: 'POST',
      body: JSON.stringify({ url: `imagine://localhost:${port}/images/whatever`, token: lib2.admin }),
    });
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { code: string }).code, 'ERR_CONNECTION_EXISTS');

    const removed = await agentFetch(`/agent/v1/connections/${encodeURIComponent(first.id)}`, { method: 'DELETE' });
    assert.equal(removed.status, 204);

    const byUri = await agentFetch('/agent/v1/connections', {
      method: 'POST',
      body: JSON.stringify({ url: `imagine://127.0.0.1:${port}`, token: lib2.admin }),
    });
    assert.equal(byUri.status, 201);
    assert.equal(((await byUri.json()) as Connection).origin, lib2.origin);
  });

  test('garbage is refused with a code', async () => {
    for (const url of ['http://', 'ftp://example.org', 'imagine://', 'http://example.org', '   ']) {
      const response = await agentFetch('/agent/v1/connections', { method: 'POST', body: JSON.stringify({ url }) });
      assert.equal(response.status, 400, url);
      assert.match(((await response.json()) as { code: string }).code, /^ERR_(ORIGIN|URI)_INVALID|ERR_VALIDATION$/, url);
    }
    const extra = await agentFetch('/agent/v1/connections', { method: 'POST', body: JSON.stringify({ url: lib1.origin, admin: true }) });
    assert.equal(extra.status, 400);
  });
});

describe('changing a connection in place', () => {
  const patch = (id: string, body: unknown) =>
    agentFetch(`/agent/v1/connections/${encodeURIComponent(id)}`, { method: 'PATCH', body: JSON.stringify(body) });
  const stored = async (id: string) =>
    ((await callAgent(agentData, 'GET', '/connections')) as { items: Connection[] }).items.find((c) => c.id === id)!;
  const lib1Id = () => lib1.origin.slice('http://'.length).replace(':', '_');

  test('a refused token leaves the old one in place', async () => {
    const response = await patch(lib1Id(), { token: 'not-a-real-token' });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { code: string }).code, 'ERR_TOKEN_INVALID');
    assert.equal((await stored(lib1Id())).authenticated, true);
    const saved = JSON.parse(await readFile(join(agentData, 'agent', 'connections.json'), 'utf8')) as { connections: Array<{ id: string; token?: string }> };
    assert.equal(saved.connections.find((c) => c.id === lib1Id())?.token, lib1.admin);
  });

  test('anonymous drops the token, a good one signs in again, the name changes alone', async () => {
    const anonymous = await patch(lib1Id(), { anonymous: true });
    assert.equal(anonymous.status, 200, await anonymous.clone().text());
    assert.equal(((await anonymous.json()) as Connection).authenticated, false);
    const signedIn = await patch(lib1Id(), { token: lib1.admin, name: 'Studio library' });
    assert.equal(signedIn.status, 200);
    const connection = (await signedIn.json()) as Connection;
    assert.equal(connection.authenticated, true);
    assert.equal(connection.name, 'Studio library');
    assert.equal((connection as { token?: string }).token, undefined, 'the token never leaves the agent');
    const renamed = (await (await patch(lib1Id(), { name: 'First library' })).json()) as Connection;
    assert.equal(renamed.name, 'First library');
    assert.equal(renamed.authenticated, true);
  });

  test('imagine connect on a server already connected changes its token or name in place', async () => {
    const renamed = await runCli(['connect', lib1.origin, '--name', 'Via the CLI', '--data', agentData, '--json']);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.equal((JSON.parse(renamed.stdout) as Connection).name, 'Via the CLI');
    const refused = await runCli(['connect', lib1.origin, '--token', 'nope', '--data', agentData]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /ERR_TOKEN_INVALID/);
    assert.equal((await stored(lib1Id())).authenticated, true);
    const plain = await runCli(['connect', lib1.origin, '--data', agentData]);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /ERR_CONNECTION_EXISTS/);
    const back = await runCli(['connect', lib1.origin, '--token', lib1.admin, '--name', 'First library', '--data', agentData, '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((JSON.parse(back.stdout) as Connection).authenticated, true);
  });

  test('an unknown connection is 404, an empty or unknown change 400', async () => {
    const unknown = await patch('nobody', { name: 'x' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { code: string }).code, 'ERR_CONNECTION_NOT_FOUND');
    const bodies = [{}, { url: 'http://example.org' }, { token: '' }, { token: null }, { anonymous: false }, { token: lib1.admin, anonymous: true }, { name: 'x'.repeat(201) }];
    for (const body of bodies) {
      const response = await patch(lib1Id(), body);
      assert.equal(response.status, 400, JSON.stringify(body));
    }
    assert.equal((await stored(lib1Id())).authenticated, true);
  });
});

describe('search and thumbnails', () => {
  let page: AgentSearchPage;

  test('fans out to every connection and merges the pages', async () => {
    const response = await agentFetch('/agent/v1/search?q=harbour');
    assert.equal(response.status, 200);
    page = (await response.json()) as AgentSearchPage;
    assert.deepEqual(page.sources.map((s) => [s.state, s.count]).sort(), [['ok', 1], ['ok', 2]]);
    assert.deepEqual(page.items.map((a) => a.filename).sort(), ['harbour-dawn.jpg', 'harbour-dusk.jpg', 'harbour-noon.jpg']);
    for (const item of page.items) {
      assert.ok(item.connection && item.origin.startsWith('http://127.0.0.1:'));
      assert.match(item.uri, /^imagine:\/\//);
      assert.match(item.thumbnailUrl ?? '', /^\/agent\/v1\/thumbs\/[^?]+\?exp=\d+&sig=[A-Za-z0-9_-]{43}$/);
    }
    assert.equal(page.next, null);
  });

  test('pages through every source with one combined cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await agentFetch(`/agent/v1/search?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(response.status, 200);
      const p = (await response.json()) as AgentSearchPage;
      seen.push(...p.items.map((a) => a.filename));
      cursor = p.next;
      pages += 1;
    } while (cursor && pages < 10);
    assert.equal(pages, 3);
    assert.equal(seen.length, 5);
    assert.equal(new Set(seen).size, 5);
    const bad = await agentFetch('/agent/v1/search?cursor=bm90LWEtY3Vyc29y');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'ERR_VALIDATION');
  });

  test('searches one connection when asked', async () => {
    const id = page.items.find((a) => a.filename === 'harbour-dusk.jpg')!.connection;
    const p = (await (await agentFetch(`/agent/v1/search?connection=${id}`)).json()) as AgentSearchPage;
    assert.deepEqual(p.sources.map((s) => s.connection), [id]);
    assert.deepEqual(p.items.map((a) => a.filename).sort(), ['forest.jpg', 'harbour-dusk.jpg']);
    const none = await agentFetch('/agent/v1/search?connection=nobody.example');
    assert.equal(none.status, 404);
  });

  test('thumbnails load without the token, come from the server once, then from the cache', async () => {
    // The mirror may fetch thumbnails ahead (its filler shares the cache): each is fetched once, by whoever comes first.
    const fetchesOf = (id: string) => [...lib1Requests, ...lib2Requests].filter((url) => url.startsWith(`/api/v1/files/${id}/`)).length;
    for (const item of page.items) {
      const first = await fetch(`${agent.url}${item.thumbnailUrl}`);
      assert.equal(first.status, 200, await first.clone().text());
      assert.equal(first.headers.get('content-type'), 'image/jpeg');
      assert.match(first.headers.get('imagine-cache') ?? '', /^(hit|miss)$/);
      assert.match(first.headers.get('cache-control') ?? '', /immutable/);
      const bytes = Buffer.from(await first.arrayBuffer());
      assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8]);
      assert.equal(fetchesOf(item.id), 1, 'fetched from the server once');

      const second = await fetch(`${agent.url}${item.thumbnailUrl}`);
      assert.equal(second.status, 200);
      assert.equal(second.headers.get('imagine-cache'), 'hit');
      assert.deepEqual(Buffer.from(await second.arrayBuffer()), bytes);
      assert.equal(fetchesOf(item.id), 1, 'the second load did not touch the server');

      const notModified = await fetch(`${agent.url}${item.thumbnailUrl}`, { headers: { 'if-none-match': first.headers.get('etag')! } });
      assert.equal(notModified.status, 304);
    }
    const status = (await callAgent(agentData, 'GET', '/status')) as { cache: { count: number; bytes: number } };
    assert.ok(status.cache.count >= 3);
    assert.ok(status.cache.bytes > 0);
  });

  test('one asset by connection and id, and by imagine:// URI', async () => {
    const item = page.items[0]!;
    const byId = await agentFetch(`/agent/v1/assets/${item.connection}/${item.id}`);
    assert.equal(byId.status, 200);
    const asset = (await byId.json()) as AgentAsset;
    assert.equal(asset.uri, item.uri);
    assert.equal(asset.connection, item.connection);
    const resolved = await agentFetch(`/agent/v1/resolve?uri=${encodeURIComponent(item.uri)}`);
    assert.equal(resolved.status, 200);
    assert.equal(((await resolved.json()) as AgentAsset).id, item.id);
    const missing = await agentFetch(`/agent/v1/assets/${item.connection}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_ASSET_NOT_FOUND');
    const unknown = await agentFetch(`/agent/v1/resolve?uri=${encodeURIComponent('imagine://elsewhere.example/images/a1')}`);
    assert.equal(((await unknown.json()) as { code: string }).code, 'ERR_CONNECTION_NOT_FOUND');
    const garbage = await agentFetch('/agent/v1/resolve?uri=javascript:alert(1)');
    assert.equal(((await garbage.json()) as { code: string }).code, 'ERR_URI_INVALID');
  });

  test('with one server stopped, search still answers: its status says so, its results come from the cache', async () => {
    const stoppedId = page.items.find((a) => a.filename === 'harbour-dusk.jpg')!.connection;
    await lib2.app.close();
    lib2Stopped = true;
    const response = await agentFetch('/agent/v1/search?q=harbour');
    assert.equal(response.status, 200);
    const p = (await response.json()) as AgentSearchPage;
    const stopped = p.sources.find((s) => s.connection === stoppedId)!;
    assert.equal(stopped.state, 'offline');
    assert.equal(stopped.local, true);
    assert.match(stopped.error?.code ?? '', /UNREACHABLE/);
    const running = p.sources.find((s) => s.connection !== stoppedId)!;
    assert.equal(running.state, 'ok');
    assert.deepEqual(p.items.map((a) => a.filename).sort(), ['harbour-dawn.jpg', 'harbour-dusk.jpg', 'harbour-noon.jpg']);

    const list = (await callAgent(agentData, 'GET', '/connections')) as { items: Connection[] };
    assert.equal(list.items.find((c) => c.id === stoppedId)!.state, 'offline');
  });

  test('offline browsing: the stopped library\'s assets and thumbnails still come from the cache', async () => {
    assert.ok(lib2Stopped);
    const item = page.items.find((a) => a.filename === 'harbour-dusk.jpg')!;
    const asset = await agentFetch(`/agent/v1/assets/${item.connection}/${item.id}`);
    assert.equal(asset.status, 200);
    assert.equal(asset.headers.get('imagine-local'), 'true');
    const thumb = await fetch(`${agent.url}${item.thumbnailUrl}`);
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get('imagine-cache'), 'hit');
    // Never seen: nothing to show, and the reason is the server being unreachable.
    const unseen = await agentFetch(`/agent/v1/assets/${item.connection}/never-seen`);
    assert.equal(unseen.status, 502);
    assert.match(((await unseen.json()) as { code: string }).code, /UNREACHABLE/);
  });
});

describe('the guard, on a real socket', () => {
  test('refuses a foreign Host (DNS rebinding)', async () => {
    const port = new URL(agent.url).port;
    const response = await rawRequest(agent.url, '/agent/v1/status', {
      headers: { host: `rebind.evil.example:${port}`, authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 403);
    assert.equal(json(response).code, 'ERR_HOST_FORBIDDEN');
  });

  test('refuses a foreign Origin, and gives it no CORS headers', async () => {
    const response = await agentFetch('/agent/v1/connections', { headers: { origin: 'https://evil.example' } });
    assert.equal(response.status, 403);
    assert.equal(((await response.json()) as { code: string }).code, 'ERR_ORIGIN_FORBIDDEN');
    assert.equal(response.headers.get('access-control-allow-origin'), null);
    const post = await agentFetch('/agent/v1/connections', {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
      body: JSON.stringify({ url: 'https://attacker.example' }),
    });
    assert.equal(post.status, 403);
  });

  test('refuses a missing or wrong pairing token', async () => {
    const missing = await fetch(`${agent.url}/agent/v1/connections`);
    assert.equal(missing.status, 401);
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_PAIRING_REQUIRED');
    const wrong = await fetch(`${agent.url}/agent/v1/connections`, { headers: { authorization: `Bearer ${token.slice(0, -1)}x` } });
    assert.equal(wrong.status, 401);
  });

  test('refuses a tampered or expired image signature', async () => {
    const list = (await callAgent(agentData, 'GET', '/search?q=harbour-dawn')) as AgentSearchPage;
    const url = list.items[0]!.thumbnailUrl!;
    const tampered = url.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`);
    const t = await fetch(`${agent.url}${tampered}`);
    assert.equal(t.status, 403);
    assert.equal(((await t.json()) as { code: string }).code, 'ERR_SIGNATURE_INVALID');
    const longer = url.replace(/exp=(\d+)/, (_m, e: string) => `exp=${Number(e) + 3600}`);
    assert.equal((await fetch(`${agent.url}${longer}`)).status, 403);
    const past = await AgentUrlSigner.open(join(agentData, 'agent'), { now: () => Date.now() - 7 * 24 * 3600_000 });
    const expired = await fetch(`${agent.url}${past.sign(url.split('?')[0]!)}`);
    assert.equal(expired.status, 403);
    assert.equal(((await expired.json()) as { code: string }).code, 'ERR_SIGNATURE_EXPIRED');
  });
});

describe('plain IIIF sources', () => {
  test("browses the library's own IIIF collection and manifests, thumbnails relayed and cached", async () => {
    const client = new ProtocolClient({ origin: lib1.origin, fetch, token: lib1.admin });
    const collection = await client.createCollection({ name: 'Public harbour', public: true });
    const items = (await client.search({ q: 'harbour' })).items;
    await client.addToCollection(collection.id, items.map((a) => a.id));

    const url = `${lib1.origin}/iiif/collections/${collection.id}`;
    const response = await agentFetch(`/agent/v1/iiif?url=${encodeURIComponent(url)}`);
    assert.equal(response.status, 200, await response.clone().text());
    const source = (await response.json()) as { kind: string; label: string; items: { kind: string; id: string; label: string }[] };
    assert.equal(source.kind, 'collection');
    assert.equal(source.items.length, 2);
    assert.ok(source.items.every((i) => i.kind === 'manifest'));

    const manifest = await agentFetch(`/agent/v1/iiif?url=${encodeURIComponent(source.items[0]!.id)}`);
    assert.equal(manifest.status, 200, await manifest.clone().text());
    const m = (await manifest.json()) as { kind: string; items: { kind: string; id: string; thumbnailUrl: string | null; width?: number }[] };
    assert.equal(m.kind, 'manifest');
    assert.equal(m.items.length, 1);
    assert.equal(m.items[0]!.kind, 'image');
    assert.ok(m.items[0]!.id.startsWith(`${lib1.origin}/iiif/`));
    assert.equal(m.items[0]!.width, 200);

    const thumb = await fetch(`${agent.url}${m.items[0]!.thumbnailUrl}`);
    assert.equal(thumb.status, 200, await thumb.clone().text());
    assert.equal(thumb.headers.get('content-type'), 'image/jpeg');
    assert.equal(thumb.headers.get('imagine-cache'), 'miss');
    const again = await fetch(`${agent.url}${m.items[0]!.thumbnailUrl}`);
    assert.equal(again.headers.get('imagine-cache'), 'hit');

    const info = await agentFetch(`/agent/v1/iiif?url=${encodeURIComponent(`${m.items[0]!.id}/info.json`)}`);
    assert.equal(info.status, 200);
    assert.equal(((await info.json()) as { kind: string }).kind, 'image');
  });

  test('garbage input is refused with codes', async () => {
    for (const [url, code] of [
      ['ftp://example.org/manifest.json', 'ERR_VALIDATION'],
      [`${lib1.origin}/.well-known/imagine`, 'ERR_IIIF_SOURCE_INVALID'],
      [`${lib1.origin}/iiif/manifests/does-not-exist`, 'ERR_UPSTREAM_ERROR'],
    ] as const) {
      const response = await agentFetch(`/agent/v1/iiif?url=${encodeURIComponent(url)}`);
      assert.equal(((await response.json()) as { code: string }).code, code, url);
    }
  });
});

describe('the thumbnail cache bound', () => {
  test('evicts the least recently used thumbnails over the bound, and remembers across restarts', async () => {
    // Sizes of lib1's thumbnails, to set a bound that holds two of the three.
    const client = new ProtocolClient({ origin: lib1.origin, fetch, token: lib1.admin });
    const items = (await client.search({})).items;
    assert.equal(items.length, 3);
    const sizes = await Promise.all(items.map(async (a) => (await client.downloadTicket(a.id, { rendition: 'thumbnail' })).size));
    const bound = sizes[1]! + sizes[2]! + Math.min(...sizes) - 1;
    // A cache of its own (no mirror filling it ahead), on lib1.
    const options = {
      dir: join(tmp, 'small-cache'),
      maxBytes: bound,
      fetch,
      client: () => client,
      credentials: () => ({ origin: lib1.origin, token: lib1.admin }),
    };
    const id = 'lib1';
    let thumbs = await ThumbCache.open(options);
    try {
      for (const item of items) await thumbs.ensure(id, item.id, item.currentVersion);
      assert.ok(!thumbs.has(id, items[0]!.id, items[0]!.currentVersion), 'the oldest was evicted');
      assert.ok(thumbs.has(id, items[1]!.id, items[1]!.currentVersion));
      assert.ok(thumbs.has(id, items[2]!.id, items[2]!.currentVersion));
      assert.ok(thumbs.stats().bytes <= bound);
      assert.equal(thumbs.stats(id).count, 2);
      assert.equal((await listTree(join(options.dir, 'images'))).length, 2, 'the evicted file is gone from disk');

      // Used again, the second becomes the most recent: loading the first evicts the third.
      assert.equal((await thumbs.ensure(id, items[1]!.id, items[1]!.currentVersion)).hit, true);
      assert.equal((await thumbs.ensure(id, items[0]!.id, items[0]!.currentVersion)).hit, false);
      assert.ok(!thumbs.has(id, items[2]!.id, items[2]!.currentVersion));
      assert.ok(thumbs.has(id, items[1]!.id, items[1]!.currentVersion));

      await thumbs.close();
      thumbs = await ThumbCache.open(options);
      assert.equal(thumbs.stats().count, 2, 'the index survived the restart');
      const before = lib1Requests.length;
      assert.equal((await thumbs.ensure(id, items[1]!.id, items[1]!.currentVersion)).hit, true);
      assert.equal(lib1Requests.length, before);

      // A smaller bound at the next start evicts down to it.
      await thumbs.close();
      thumbs = await ThumbCache.open({ ...options, maxBytes: Math.max(...sizes) });
      assert.equal(thumbs.stats().count, 1);
    } finally {
      await thumbs.close();
    }
  });

  test('serving both roles, the agent connects to its own library (once per origin)', async () => {
    const dataDir = join(tmp, 'both');
    const flags = { role: 'both' };
    let both = await startAgent(dataDir, flags);
    try {
      const list = both.app.agent!.connections.list();
      assert.equal(list.length, 1);
      assert.equal(list[0]!.origin, both.url);
      assert.equal(list[0]!.state, 'ok');
      await both.close();
      both = await startAgent(dataDir, flags);
      const again = both.app.agent!.connections.list();
      assert.equal(again.length, 1, 'the connection of the previous port was replaced');
      assert.equal(again[0]!.origin, both.url);
    } finally {
      await both.close();
    }
  });

  test('a stopped agent leaves no agent.json behind', async () => {
    const dataDir = join(tmp, 'short-lived');
    const short = await startAgent(dataDir);
    await stat(join(dataDir, 'agent', 'agent.json'));
    await short.close();
    await assert.rejects(stat(join(dataDir, 'agent', 'agent.json')), { code: 'ENOENT' });
    await assert.rejects(callAgent(dataDir, 'GET', '/status'), { code: 'ERR_AGENT_NOT_RUNNING' });
    writeFileSync(join(dataDir, 'agent', 'agent.json'), JSON.stringify({ url: short.url, pid: process.pid }));
    await assert.rejects(callAgent(dataDir, 'GET', '/status'), { code: 'ERR_AGENT_NOT_RUNNING' }, 'a stale file is not an agent');
  });
});
