/**
 * The offline-first mirror (issue 9) end to end, with real processes:
 *
 * - a library server (`imagine serve`, role library) with 1,000 ingested images, and an agent
 *   (`imagine serve`, role agent) on its own data folder: the first sync brings every asset
 *   and its grid thumbnail; the mirror is compared field by field with the server;
 * - the agent is stopped, assets are edited, deleted, re-righted, moved into a collection and
 *   created through the API; the agent restarts and the mirror converges exactly;
 * - hostile servers, through a tampering proxy in front of a second, small library: a change
 *   feed answering garbage, a cursor the server no longer knows, a server restored from an old
 *   backup, a thumbnail that cannot be rendered;
 * - the library server stops: `imagine search` (the CLI) and the agent's routes answer from
 *   the mirror, and `imagine sync status` says the server is offline.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ProtocolClient } from '../shared/client.ts';
import type { AgentSearchPage, Connection } from '../shared/schemas/agent.ts';
import type { Asset } from '../shared/schemas/asset.ts';
import { callAgent } from '../companion/commands/agent-call.ts';
import type { MirrorStatus } from '../companion/agent/mirror/mirror.ts';
import { killChildren, lastLine, runCli, startServer, stopChild, type Server } from './helpers/integration.ts';

const ASSETS = 1000;
const HARBOUR = 300; // in the "Harbour" collection; the other 700 are forests
const SMALL = 40;

let work: string;
let libDir: string;
let smallDir: string;
let agentDir: string;
let library: Server;
let small: Server;
let agent: Server;
let proxy: TamperingProxy;
let token: string;
let smallToken: string;
let harbourCollection: string;

// --- helpers ----------------------------------------------------------------------------------

async function makeImages(dir: string, prefix: string, from: number, count: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = from; i < from + count; i++) {
    const background = { r: i % 256, g: (i * 7) % 256, b: ((i >> 8) * 53) % 256 };
    await sharp({ create: { width: 24 + (i % 3) * 8, height: 16 + (i % 2) * 8, channels: 3, background } })
      .jpeg({ quality: 70 })
      .toFile(join(dir, `${prefix}-${String(i).padStart(4, '0')}.jpg`));
  }
}

async function cli(args: string[]): Promise<string> {
  const result = await runCli(args, { timeoutMs: 300_000 });
  assert.equal(result.code, 0, `imagine ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

async function adminToken(dataDir: string): Promise<string> {
  await cli(['users', 'add', 'admin', '--admin', '--data', dataDir]);
  return (JSON.parse(lastLine(await cli(['tokens', 'create', '--user', 'admin', '--data', dataDir, '--json']))) as { token: string }).token;
}

const startLibrary = (dataDir: string) => startServer(dataDir, { env: { IMAGINE_ROLE: 'library' } });
const startAgentProcess = () => startServer(agentDir, { env: { IMAGINE_ROLE: 'agent' } });

function agentCall<T>(method: string, path: string, body?: unknown): Promise<T> {
  return callAgent(agentDir, method, path, body, { timeoutMs: 240_000 }) as Promise<T>;
}

const syncNow = (connection: string) => agentCall<MirrorStatus>('POST', `/sync/${encodeURIComponent(connection)}?wait=true`);
const statusOf = async (connection: string) =>
  (await agentCall<{ items: MirrorStatus[] }>('GET', '/sync')).items.find((s) => s.connection === connection)!;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every live asset of a server, by id. */
async function serverAssets(client: ProtocolClient): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>();
  for await (const asset of client.searchAll({ limit: 200, sort: 'created' })) out.set(asset.id, asset);
  return out;
}

/** Every asset of a connection's mirror (through the agent's local search), as the server presents it. */
async function mirroredAssets(connection: string): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>();
  let cursor: string | null = null;
  do {
    const query: string = new URLSearchParams({ connection, limit: '200', sort: 'created', ...(cursor ? { cursor } : {}) }).toString();
    const page: AgentSearchPage = await agentCall<AgentSearchPage>('GET', `/sync/search?${query}`);
    for (const item of page.items) {
      const { connection: _c, origin: _o, thumbnailUrl: _t, ...asset } = item;
      out.set(asset.id, asset as Asset);
    }
    cursor = page.next;
  } while (cursor);
  return out;
}

/** The mirror holds exactly the server's live assets, every field equal. */
async function assertConverged(connection: string, client: ProtocolClient): Promise<number> {
  const [expected, actual] = await Promise.all([serverAssets(client), mirroredAssets(connection)]);
  const missing = [...expected.keys()].filter((id) => !actual.has(id));
  const extra = [...actual.keys()].filter((id) => !expected.has(id));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'the mirror holds the same assets as the server');
  for (const [id, asset] of expected) {
    const mirrored = actual.get(id)!;
    for (const field of new Set([...Object.keys(asset), ...Object.keys(mirrored)])) {
      assert.deepEqual(
        (mirrored as Record<string, unknown>)[field],
        (asset as Record<string, unknown>)[field],
        `asset ${id}: field "${field}" differs between the mirror and the server`,
      );
    }
  }
  return expected.size;
}

// --- a proxy that tampers with the change feed --------------------------------------------------

type ProxyMode = 'pass' | 'garbage' | 'not-json' | 'forget';

interface TamperingProxy {
  url: string;
  upstream: number;
  mode: ProxyMode;
  /** In `forget` mode: cursors below this are answered as unknown (the feed was pruned). */
  forgetBelow: number;
  /** An asset whose thumbnail the "server" cannot render. */
  brokenThumbnail?: string;
  close(): Promise<void>;
}

function problem(res: import('node:http').ServerResponse, status: number, code: string, detail: string): void {
  res.writeHead(status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify({ type: `urn:imagine:error:${code}`, title: code, status, code, detail }));
}

async function startProxy(upstream: number): Promise<TamperingProxy> {
  const state = { upstream, mode: 'pass' as ProxyMode, forgetBelow: 0, brokenThumbnail: undefined as string | undefined };
  const server: HttpServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    if (url.pathname === '/api/v1/changes' && state.mode !== 'pass') {
      const since = url.searchParams.get('since');
      if (state.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ events: [{ seq: 'one', type: 'asset.exploded', subject: 42 }], next: 7, hasMore: 'maybe' }));
        return;
      }
      if (state.mode === 'not-json') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>502 Bad Gateway (nginx)</body></html>');
        return;
      }
      if (state.mode === 'forget' && since !== null && Number(since) < state.forgetBelow) {
        problem(res, 400, 'ERR_VALIDATION', `cursor ${since} is older than this feed keeps`);
        return;
      }
    }
    if (state.brokenThumbnail && url.pathname === `/api/v1/assets/${state.brokenThumbnail}/download` && url.searchParams.get('rendition') === 'thumbnail') {
      problem(res, 500, 'ERR_INTERNAL', 'The server failed to handle this request.');
      return;
    }
    const forward = httpRequest(
      { host: '127.0.0.1', port: state.upstream, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy()); // the upstream is down: so is the "server"
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.defineProperties(
    {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    },
    {
      upstream: { get: () => state.upstream, set: (v: number) => (state.upstream = v), enumerable: true },
      mode: { get: () => state.mode, set: (v: ProxyMode) => (state.mode = v), enumerable: true },
      forgetBelow: { get: () => state.forgetBelow, set: (v: number) => (state.forgetBelow = v), enumerable: true },
      brokenThumbnail: { get: () => state.brokenThumbnail, set: (v?: string) => (state.brokenThumbnail = v), enumerable: true },
    },
  ) as TamperingProxy;
}

// --- the scenario ------------------------------------------------------------------------------

describe('offline-first mirror (real library server and agent)', { timeout: 15 * 60_000 }, () => {
  let connection: Connection;
  let client: ProtocolClient;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'imagine-mirror-it-'));
    libDir = join(work, 'library');
    smallDir = join(work, 'small');
    agentDir = join(work, 'agent');
    await Promise.all([
      makeImages(join(work, 'harbour'), 'harbour', 0, HARBOUR),
      makeImages(join(work, 'forest'), 'forest', HARBOUR, ASSETS - HARBOUR),
      makeImages(join(work, 'lake'), 'lake', 0, SMALL),
    ]);
    // The two libraries are ingested side by side; each ingest holds its own data folder.
    await Promise.all([
      (async () => {
        await cli(['ingest', '--data', libDir, '--collection', 'Harbour', '--json', join(work, 'harbour')]);
        await cli(['ingest', '--data', libDir, '--json', join(work, 'forest')]);
        token = await adminToken(libDir);
      })(),
      (async () => {
        await cli(['ingest', '--data', smallDir, '--json', join(work, 'lake')]);
        smallToken = await adminToken(smallDir);
      })(),
    ]);
    await mkdir(agentDir, { recursive: true });
    // Syncs happen when asked (and once at start), so the test decides when.
    await writeFile(join(agentDir, 'config.json'), JSON.stringify({ syncIntervalSeconds: 3600 }));
    [library, small, agent] = await Promise.all([startLibrary(libDir), startLibrary(smallDir), startAgentProcess()]);
    proxy = await startProxy(small.port);
    client = new ProtocolClient({ origin: library.url, fetch, token });
    harbourCollection = (await client.listCollections()).find((c) => c.name === 'Harbour')!.id;
  });

  after(async () => {
    for (const child of [agent, library, small]) if (child) await stopChild(child).catch(() => undefined);
    await proxy?.close();
    killChildren();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test(`the first sync mirrors ${ASSETS} assets and their thumbnails`, async () => {
    connection = await agentCall<Connection>('POST', '/connections', { url: library.url, token });
    const started = performance.now();
    const status = await syncNow(connection.id);
    const metadataSeconds = (performance.now() - started) / 1000;
    assert.equal(status.state, 'idle', JSON.stringify(status.lastError));
    assert.equal(status.assets, ASSETS);
    assert.equal(status.phase, 'incremental');
    const filled = await until('the thumbnails', async () => {
      const s = await statusOf(connection.id);
      return s.thumbnails.cached >= ASSETS && !s.thumbnails.filling ? s : undefined;
    });
    const totalSeconds = (performance.now() - started) / 1000;
    assert.equal(filled.thumbnails.failed, 0);
    assert.ok(filled.bytesOnDisk > filled.metadataBytes, 'the size on disk counts the thumbnails');
    assert.ok(filled.lagSeconds !== null && filled.lagSeconds < 600);
    console.log(`# first sync: ${ASSETS} assets in ${metadataSeconds.toFixed(1)} s (metadata), ${totalSeconds.toFixed(1)} s with thumbnails`);
    assert.equal(await assertConverged(connection.id, client), ASSETS);
  });

  test('changes made while the agent is stopped arrive when it restarts, exactly', async () => {
    await stopChild(agent);
    const all = [...(await serverAssets(client)).values()].sort((a, b) => a.filename.localeCompare(b.filename));
    const forests = all.filter((a) => a.filename.startsWith('forest'));
    const edited = forests.slice(0, 15);
    const deleted = forests.slice(15, 25);
    const rerighted = all.filter((a) => a.filename.startsWith('harbour')).slice(0, 10);
    const moved = forests.slice(25, 30);
    for (const [i, asset] of edited.entries()) {
      await client.editMetadata(asset.id, { title: `Edited forest ${i}`, keywords: ['edited', 'forest'] }, { baseVersion: asset.currentVersion });
    }
    for (const asset of deleted) await client.deleteAsset(asset.id);
    for (const asset of rerighted) {
      await client.editMetadata(asset.id, { usageTerms: 'Editorial use only. Do not distribute.', copyrightNotice: '© 2025 Test' }, { baseVersion: asset.currentVersion });
    }
    await client.addToCollection(harbourCollection, moved.map((a) => a.id));
    const fresh = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().toBuffer();
    await client.createAsset(fresh, { filename: 'harbour-new.jpg', contentType: 'image/jpeg', collection: harbourCollection });

    agent = await startAgentProcess();
    const started = performance.now();
    const status = await syncNow(connection.id);
    console.log(`# catch-up after restart: ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(status.state, 'idle', JSON.stringify(status.lastError));
    assert.equal(status.resyncs, 0, 'the feed was enough: no full sync');
    assert.equal(await assertConverged(connection.id, client), ASSETS - deleted.length + 1);
    const restricted = await agentCall<AgentSearchPage>('GET', `/sync/search?connection=${connection.id}&rights=restricted&limit=200`);
    assert.deepEqual(new Set(restricted.items.map((a) => a.id)), new Set(rerighted.map((a) => a.id)));
    const inHarbour = await agentCall<AgentSearchPage>('GET', `/sync/search?connection=${connection.id}&collection=${harbourCollection}&limit=1`);
    assert.equal(inHarbour.sources[0]?.total, HARBOUR + moved.length + 1);
  });

  test('mirroring one collection, then everything again (imagine sync collections)', async () => {
    const narrowed = await runCli(['sync', 'collections', connection.id, harbourCollection, '--data', agentDir, '--json']);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    let status = await syncNow(connection.id);
    assert.equal(status.state, 'idle', JSON.stringify(status.lastError));
    assert.deepEqual(status.collections, [harbourCollection]);
    assert.match(status.lastResync?.reason ?? '', /collections changed/);
    const inHarbour = (await client.search({ collection: harbourCollection, limit: 1 })).total;
    assert.equal(status.assets, inHarbour);
    const all = await runCli(['sync', 'collections', connection.id, '--all', '--data', agentDir]);
    assert.equal(all.code, 0, all.stderr);
    status = await syncNow(connection.id);
    assert.equal(status.collections, null);
    await assertConverged(connection.id, client);
  });

  describe('hostile servers (a tampering proxy in front of a small library)', () => {
    let hostile: Connection;
    let smallClient: ProtocolClient;

    before(async () => {
      smallClient = new ProtocolClient({ origin: proxy.url, fetch, token: smallToken });
      hostile = await agentCall<Connection>('POST', '/connections', { url: proxy.url, token: smallToken });
      const status = await syncNow(hostile.id);
      assert.equal(status.state, 'idle', JSON.stringify(status.lastError));
      assert.equal(status.assets, SMALL);
    });

    const firstLake = async () => [...(await serverAssets(smallClient)).values()].sort((a, b) => a.filename.localeCompare(b.filename))[0]!;

    for (const mode of ['garbage', 'not-json'] as const) {
      test(`a change feed answering ${mode === 'garbage' ? 'nonsense JSON' : 'an HTML page'}: error status, mirror untouched, then it resumes`, async () => {
        const lake = await firstLake();
        await smallClient.editMetadata(lake.id, { title: `Changed behind a broken feed (${mode})` }, { baseVersion: lake.currentVersion });
        const before = await mirroredAssets(hostile.id);
        proxy.mode = mode;
        const broken = await syncNow(hostile.id);
        assert.equal(broken.state, 'error');
        assert.equal(broken.lastError?.code, 'ERR_UPSTREAM_INVALID');
        assert.match(broken.lastError?.message ?? '', /changes/);
        assert.deepEqual(await mirroredAssets(hostile.id), before, 'nothing changed in the mirror');
        const listed = JSON.parse(lastLine(await cli(['sync', 'status', '--data', agentDir, '--json']))) as { items: MirrorStatus[] };
        assert.equal(listed.items.find((s) => s.connection === hostile.id)?.lastError?.code, 'ERR_UPSTREAM_INVALID');
        proxy.mode = 'pass';
        const back = await syncNow(hostile.id);
        assert.equal(back.state, 'idle');
        assert.equal(back.lastError, undefined);
        await assertConverged(hostile.id, smallClient);
      });
    }

    test('a cursor the server no longer knows: a full sync, not a crash', async () => {
      const lake = await firstLake();
      await smallClient.editMetadata(lake.id, { title: 'Changed while the feed was pruned' }, { baseVersion: lake.currentVersion });
      const head = await smallClient.changes(undefined, 1000);
      let next = head;
      while (next.hasMore) next = await smallClient.changes(next.next, 1000);
      // The feed now keeps nothing before its head: the mirror's cursor is older.
      proxy.forgetBelow = Number(next.next);
      proxy.mode = 'forget';
      const before = await statusOf(hostile.id);
      const status = await syncNow(hostile.id);
      proxy.mode = 'pass';
      assert.equal(status.state, 'idle', JSON.stringify(status.lastError));
      assert.equal(status.resyncs, before.resyncs + 1);
      assert.match(status.lastResync?.reason ?? '', /no longer knows/);
      await assertConverged(hostile.id, smallClient);
    });

    test('a server restored from an older backup is detected and resynced', async () => {
      const backupDir = join(work, 'small-backup');
      await stopChild(small);
      await cp(smallDir, backupDir, { recursive: true });
      small = await startLibrary(smallDir);
      proxy.upstream = small.port;
      const fresh = await sharp({ create: { width: 30, height: 20, channels: 3, background: { r: 9, g: 99, b: 199 } } }).jpeg().toBuffer();
      const created = await smallClient.createAsset(fresh, { filename: 'lake-after-backup.jpg', contentType: 'image/jpeg' });
      const lake = await firstLake();
      await smallClient.deleteAsset(lake.id);
      let status = await syncNow(hostile.id);
      assert.equal(status.assets, SMALL);
      assert.ok((await mirroredAssets(hostile.id)).has(created.id));

      // The server's disk dies; the administrator restores last night's backup.
      await stopChild(small);
      await rm(smallDir, { recursive: true, force: true });
      await cp(backupDir, smallDir, { recursive: true });
      small = await startLibrary(smallDir);
      proxy.upstream = small.port;
      const before = await statusOf(hostile.id);
      status = await syncNow(hostile.id);
      assert.equal(status.state, 'idle', JSON.stringify(status.lastError));
      assert.equal(status.resyncs, before.resyncs + 1);
      assert.match(status.lastResync?.reason ?? '', /restored from a backup/);
      await assertConverged(hostile.id, smallClient);
      const mirrored = await mirroredAssets(hostile.id);
      assert.equal(mirrored.has(created.id), false, 'what the backup does not have is gone');
      assert.equal(mirrored.has(lake.id), true, 'what the backup still has is back');
    });

    test('a thumbnail the server cannot render: noted in the status, the rest fills, sync unaffected', async () => {
      const lake = await firstLake();
      proxy.brokenThumbnail = lake.id;
      await smallClient.editMetadata(lake.id, { title: 'Its new thumbnail will not render' }, { baseVersion: lake.currentVersion });
      const other = [...(await serverAssets(smallClient)).values()].find((a) => a.id !== lake.id)!;
      await smallClient.editMetadata(other.id, { title: 'Its new thumbnail renders' }, { baseVersion: other.currentVersion });
      const status = await syncNow(hostile.id);
      assert.equal(status.state, 'idle');
      const settled = await until('the thumbnail pass', async () => {
        const s = await statusOf(hostile.id);
        return !s.thumbnails.filling && s.thumbnails.failed >= 1 ? s : undefined;
      });
      assert.equal(settled.state, 'idle');
      assert.equal(settled.thumbnails.failed, 1);
      assert.ok(settled.thumbnails.lastError, 'the thumbnail error is reported');
      assert.equal(settled.lastError, undefined, 'the sync itself is fine');
      proxy.brokenThumbnail = undefined;
      await assertConverged(hostile.id, smallClient);
    });
  });

  test('with the library server down, search and asset details answer from the mirror (CLI and agent)', async () => {
    // Ties in relevance have no defined order, so order is compared on sorted queries and sets on the others.
    const online = await client.search({ q: 'harbour', sort: 'title', limit: 20 });
    const byTitle = await client.search({ collection: harbourCollection, sort: '-title', limit: 15 });
    const edited = await client.search({ q: 'edited forest', limit: 50 });
    const one = online.items[0]!;
    await stopChild(library);

    const started = performance.now();
    const result = await runCli(['search', 'harbour', '--data', agentDir, '--connection', connection.id, '--sort', 'title', '--limit', '20', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const page = JSON.parse(lastLine(result.stdout)) as AgentSearchPage;
    console.log(`# imagine search with the server down: ${(performance.now() - started).toFixed(0)} ms (process start included)`);
    assert.deepEqual(page.items.map((a) => a.id), online.items.map((a) => a.id), 'same results, same order as the server gave');
    assert.equal(page.sources[0]?.total, online.total);
    assert.equal(page.sources[0]?.local, true);
    assert.ok(page.items.every((a) => a.connection === connection.id && a.origin === library.url), 'each result says where it comes from');

    const filtered = await agentCall<AgentSearchPage>('GET', `/sync/search?connection=${connection.id}&collection=${harbourCollection}&sort=-title&limit=15`);
    assert.deepEqual(filtered.items.map((a) => a.id), byTitle.items.map((a) => a.id));
    const locallyEdited = await agentCall<AgentSearchPage>('GET', `/sync/search?connection=${connection.id}&q=edited+forest&limit=50`);
    assert.equal(locallyEdited.sources[0]?.total, edited.total);
    assert.deepEqual(new Set(locallyEdited.items.map((a) => a.id)), new Set(edited.items.map((a) => a.id)));

    const human = await runCli(['search', 'harbour', '--data', agentDir]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`# ${connection.id.replace(/\./g, '\\.')}: \\d+ of ${online.total} from the local mirror`));

    // The panel's routes fall back to the mirror too.
    const detail = await agentCall<Asset & { local?: boolean }>('GET', `/assets/${connection.id}/${one.id}`);
    assert.equal(detail.id, one.id);
    assert.equal(detail.local, true);
    const panelSearch = await agentCall<AgentSearchPage>('GET', `/search?q=harbour&sort=title&connection=${connection.id}&limit=20`);
    assert.equal(panelSearch.sources[0]?.local, true);
    assert.deepEqual(panelSearch.items.map((a) => a.id), online.items.map((a) => a.id));

    // Opening an original that is not on this computer says why it cannot be done.
    const opened = await callAgent(agentDir, 'POST', '/checkouts', { uri: one.uri }).then(
      () => undefined,
      (error: unknown) => error as { code?: string; message?: string },
    );
    assert.ok(opened, 'a checkout of an original that is not on disk fails while the server is down');
    assert.match(opened.code ?? '', /^ERR_(UPSTREAM|DISCOVERY)_(UNREACHABLE|TIMEOUT)$/, `${opened.code}: ${opened.message}`);

    const now = await runCli(['sync', 'now', connection.id, '--data', agentDir]);
    assert.notEqual(now.code, 0);
    assert.match(now.stderr, /ERR_UPSTREAM_UNREACHABLE/);
    const statusText = await runCli(['sync', 'status', '--data', agentDir]);
    assert.equal(statusText.code, 0, statusText.stderr);
    assert.match(statusText.stdout, new RegExp(`${connection.id.replace(/\./g, '\\.')}: offline`));
    assert.match(statusText.stdout, /last error .*ERR_UPSTREAM_UNREACHABLE/);
    assert.match(statusText.stdout, /on disk +\d/);
    const listed = JSON.parse(lastLine((await runCli(['sync', 'status', '--data', agentDir, '--json'])).stdout)) as { items: MirrorStatus[] };
    const mine = listed.items.find((s) => s.connection === connection.id)!;
    assert.equal(mine.state, 'offline');
    assert.equal(mine.assets, ASSETS - 10 + 1);
    assert.ok(mine.lagSeconds !== null && mine.lagSeconds >= 0);
  });
});
