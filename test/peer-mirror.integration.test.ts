/**
 * Sync between two real library servers on loopback (in one process, each listening on its own
 * port, talking HTTP with signed requests): A mirrors B's collection. The initial copy is
 * equal (sha256 and metadata); then, with every webhook delivery to A refused on purpose, B's
 * creates, updates, deletes and a rights change reach A through the change feed alone; with
 * hints working a change arrives at once. Hostile: a rewound and an unknown cursor (full
 * re-scan, no duplicates), a forged and a stale hint, a peer answering garbage on its feed,
 * and revoked trust (error state, local copies kept).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../companion/app.ts';
import { loadConfig, type ConfigInput } from '../companion/config.ts';
import { nowSeconds, signWebhook } from '../companion/events/standard-webhooks.ts';
import { PEER_SCOPES } from '../companion/federation/peers.ts';
import type { MirrorStatus } from '../companion/federation/mirror-service.ts';
import { libraryServicesOptions, openLibraryServices, type LibraryServices } from '../companion/library/services.ts';
import { currentVersion } from '../companion/library/records.ts';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import { buildDiscoveryDocument } from '../companion/routes/well-known.ts';
import { uniqueJpeg } from './helpers/integration.ts';
import type { AssetMetadata } from '../shared/schemas/asset.ts';

interface Lib {
  name: string;
  dataDir: string;
  app: FastifyInstance;
  services: LibraryServices;
  origin: string;
  host: string;
  admin: string;
  logs: Record<string, unknown>[];
}

const libs: Lib[] = [];
let a: Lib;
let b: Lib;
/** While true, A answers 500 to every webhook delivery (hints dropped on purpose). */
let dropHooks = false;
let hooksDropped = 0;
let fake: HttpServer | undefined;
const tmp = mkdtempSync(join(tmpdir(), 'imagine-peer-mirror-'));

async function startLibrary(name: string, flags: ConfigInput, beforeListen?: (app: FastifyInstance) => void): Promise<Lib> {
  const dataDir = mkdtempSync(join(tmpdir(), `imagine-mirror-${name}-`));
  const config = loadConfig({ flags: { ...flags, dataDir, port: 0, role: 'library' }, readFile: false });
  const services = await openLibraryServices(libraryServicesOptions(config, `${name} test`));
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>));
      done();
    },
  });
  const app = await buildApp(config, { services, logger: { level: 'info', stream } });
  beforeListen?.(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await services.auth.addUser({ name: 'admin', admin: true });
  const admin = (await services.auth.createToken('admin')).token;
  const lib = { name, dataDir, app, services, origin, host: new URL(origin).host, admin, logs };
  libs.push(lib);
  return lib;
}

async function call(lib: Lib, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${lib.admin}`);
  if (typeof init.body === 'string') headers.set('content-type', 'application/json');
  return fetch(`${lib.origin}/api/v1${path}`, { ...init, headers });
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let seed = 100;
async function addPicture(lib: Lib, collection: string, filename: string, title: string): Promise<string> {
  const path = join(tmp, filename);
  await writeFile(path, await uniqueJpeg(seed++));
  const created = await lib.services.library.ingestFile(path, { filename, collection });
  const asset = await lib.services.library.editMetadata(created.asset.id, { title, creator: ['Bea Harbour'] }, { ifMatch: 'v1' });
  return asset.id;
}

async function edit(lib: Lib, id: string, metadata: AssetMetadata): Promise<void> {
  const library = lib.services.library;
  await library.editMetadata(id, metadata, { ifMatch: currentVersion(library.getAsset(id)).id });
}

/** What a faithful copy of B's collection holds: filename, sha256 and title of each current version. */
function expected(collection: string): string[] {
  return b.services.library.catalog.data.assets
    .filter((x) => !x.deleted && x.collections.includes(collection))
    .filter((x) => !/do not distribute/i.test(String(currentVersion(x).metadata.usageTerms ?? '')))
    .map((x) => `${x.filename} ${currentVersion(x).sha256} ${String(currentVersion(x).metadata.title)}`)
    .sort();
}

function mirrored(collection: string | null): string[] {
  if (!collection) return [];
  return a.services.library.catalog.data.assets
    .filter((x) => !x.deleted && x.collections.includes(collection))
    .map((x) => `${x.filename} ${currentVersion(x).sha256} ${String(currentVersion(x).metadata.title)}`)
    .sort();
}

async function status(id: string): Promise<MirrorStatus> {
  const response = await call(a, `/federation/mirrors/${id}`);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as MirrorStatus;
}

async function syncNow(id: string): Promise<MirrorStatus> {
  const response = await call(a, `/federation/mirrors/${id}/sync`, { method: 'POST' });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as MirrorStatus;
}

let harbour = '';
let other = '';
let mirrorId = '';
const pics: Record<string, string> = {};

before(async () => {
  b = await startLibrary('b', { allowPrivateWebhooks: true, webhookRetryBaseMs: 5_000, webhookTimeoutMs: 2_000 });
  a = await startLibrary('a', { mirrorIntervalSeconds: 3 }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (dropHooks && request.url.endsWith('/hook')) {
        hooksDropped++;
        return reply.code(500).send({ dropped: true });
      }
    });
  });
  // Trust: A asks B (signed), B's administrator approves with every scope.
  const asked = await a.app.federation!.signedFetch(a.origin, `${b.origin}/api/v1/federation/requests`, { method: 'POST', body: '{}' });
  assert.equal(asked.status, 202, await asked.text());
  await a.app.federation!.peers.recordOutgoing(b.origin, 'requested', [...PEER_SCOPES]);
  await b.app.federation!.peers.approve(a.host);

  const lib = b.services.library;
  harbour = (await lib.createCollection({ name: 'Harbour', public: true })).id;
  other = (await lib.createCollection({ name: 'Other', public: true })).id;
  pics.dawn = await addPicture(b, harbour, 'dawn.jpg', 'Harbour at dawn');
  pics.noon = await addPicture(b, harbour, 'noon.jpg', 'Harbour at noon');
  pics.dusk = await addPicture(b, harbour, 'dusk.jpg', 'Harbour at dusk');
  await addPicture(b, other, 'elsewhere.jpg', 'Not in the mirrored collection');
}, { timeout: 120_000 });

after(async () => {
  fake?.close();
  for (const lib of libs.reverse()) {
    await lib.app.close();
    await lib.services.close();
    rmSync(lib.dataDir, { recursive: true, force: true });
  }
  await endExiftool();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a mirror of a peer collection', { timeout: 300_000 }, () => {
  test('initial copy: equal sha256 and metadata, provenance kept, subscribed for hints', async () => {
    const started = Date.now();
    const declared = await call(a, '/federation/mirrors', {
      method: 'POST',
      body: JSON.stringify({ collection: `imagine://${b.host}/collections/${harbour}` }),
    });
    assert.equal(declared.status, 201, await declared.clone().text());
    mirrorId = ((await declared.json()) as MirrorStatus).id;
    const ready = await until('the initial copy', async () => {
      const s = await status(mirrorId);
      return s.state === 'following' && !!s.subscription && s.items === 3 && s;
    });
    console.log(`# initial copy of 3 assets and subscription: ${Date.now() - started} ms`);
    assert.deepEqual(mirrored(ready.localCollection), expected(harbour));
    assert.equal(mirrored(ready.localCollection).length, 3);
    const local = a.services.library.catalog.data.assets.filter((x) => x.collections.includes(ready.localCollection!));
    for (const asset of local) {
      const remoteId = Object.entries(pics).find(([name]) => asset.filename === `${name}.jpg`)![1];
      assert.equal(asset.versions[0]!.derivedFrom, `imagine://${b.host}/images/${remoteId}@v2`, 'the remote version is the provenance');
      assert.deepEqual(asset.versions[0]!.metadata.creator, ['Bea Harbour']);
    }
    const collection = a.services.library.findCollection(ready.localCollection!)!;
    assert.equal(collection.name, `Harbour (mirror of ${b.host})`);
    assert.equal(collection.public, false, 'a mirror does not republish');
    // B's subscription belongs to A and covers only the mirrored collection.
    const subs = b.app.events!.subscriptions();
    assert.equal(subs.length, 1);
    assert.equal(subs[0]!.peer, a.origin);
    assert.equal(subs[0]!.collection, harbour);
    // Declaring again answers the same mirror.
    const again = await call(a, '/federation/mirrors', {
      method: 'POST',
      body: JSON.stringify({ collection: `imagine://${b.host}/collections/${harbour}` }),
    });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as MirrorStatus).id, mirrorId);
  });

  test('webhooks dropped on purpose: creates, updates, deletes and a rights change converge through the feed', async () => {
    const before = await status(mirrorId);
    dropHooks = true;
    pics.night = await addPicture(b, harbour, 'night.jpg', 'Harbour at night'); // create
    await edit(b, pics.dawn!, { title: 'Harbour at first light' }); // update: a new version
    await b.services.library.deleteAsset(pics.noon!); // delete
    await edit(b, pics.dusk!, { usageTerms: 'Do not distribute' }); // rights change
    await addPicture(b, other, 'elsewhere-2.jpg', 'Still elsewhere'); // not ours
    const changed = Date.now();
    const converged = await until('convergence through the feed', async () => {
      const s = await status(mirrorId);
      return JSON.stringify(mirrored(s.localCollection)) === JSON.stringify(expected(harbour)) && s;
    });
    const ms = Date.now() - changed;
    console.log(`# converged through the feed alone in ${ms} ms (poll every 3 s), ${hooksDropped} webhook deliveries dropped`);
    assert.equal(mirrored(converged.localCollection).length, 2, 'night and dawn; noon deleted, dusk may no longer be held');
    assert.ok(hooksDropped >= 1, 'deliveries were attempted and refused');
    assert.equal(converged.counters.hints, before.counters.hints, 'no hint got through');
    assert.ok(converged.lastRun!.trigger === 'poll' || converged.lastRun!.trigger === 'declared', converged.lastRun!.trigger);
    // The deleted and the no-longer-distributable copies are tombstones here; dawn has two versions.
    const byName = (name: string) => a.services.library.catalog.data.assets.find((x) => x.filename === name)!;
    assert.ok(byName('noon.jpg').deleted);
    assert.ok(byName('dusk.jpg').deleted);
    assert.equal(byName('dawn.jpg').versions.length, 2);
    assert.match(String(currentVersion(byName('dawn.jpg')).comment), new RegExp(`^Mirrored from imagine://${b.host}/images/${pics.dawn}@v3$`));
    assert.ok(!a.services.library.catalog.data.assets.some((x) => x.filename.startsWith('elsewhere')), 'nothing of other collections');
    const deliveries = b.app.events!.deliveries(b.app.events!.subscriptions()[0]!.id);
    assert.ok(deliveries.length >= 4);
    assert.ok(!deliveries.some((d) => d.status === 'delivered' && d.seq > (before.cursor ? Number(before.cursor) : 0)), 'none delivered');
  });

  test('with hints working, a change arrives at once', async () => {
    dropHooks = false;
    // Start right after a poll, so the next poll is seconds away.
    const last = (await status(mirrorId)).lastRun!.finished;
    await until('a poll', async () => (await status(mirrorId)).lastRun!.finished !== last, 10_000);
    const hintsBefore = (await status(mirrorId)).counters.hints;
    await edit(b, pics.night!, { title: 'Harbour by night' });
    const committed = Date.now();
    const s = await until('the hinted change', async () => {
      const st = await status(mirrorId);
      return JSON.stringify(mirrored(st.localCollection)) === JSON.stringify(expected(harbour)) && st;
    }, 10_000);
    const ms = Date.now() - committed;
    console.log(`# with hints: change applied ${ms} ms after the commit on the peer (poll interval 3000 ms)`);
    assert.ok(s.counters.hints > hintsBefore, 'a hint arrived');
    assert.ok(ms < 2_500, `hinted change took ${ms} ms`);
  });

  test('a rewound or unknown cursor means a full re-scan that converges without duplicates', async () => {
    const mirrors = a.app.mirrors!;
    const before = await status(mirrorId);
    const liveBefore = a.services.library.catalog.data.assets.filter((x) => !x.deleted).length;
    const rescans = () => a.logs.filter((l) => l.msg === 'collection mirror: full re-scan').map((l) => String(l.reason));
    await mirrors.betweenRuns(mirrorId, (m) => {
      m.store.state.position = { cursor: '999999', lastSeq: 999999, lastEvent: null };
    });
    let s = await syncNow(mirrorId);
    assert.equal(s.counters.fullScans, before.counters.fullScans + 1);
    assert.match(rescans().at(-1)!, /feed ends at 999998/);
    assert.equal(s.lastError, null);
    await mirrors.betweenRuns(mirrorId, (m) => {
      m.store.state.position = { cursor: 'not-a-cursor', lastSeq: 0, lastEvent: null };
    });
    s = await syncNow(mirrorId);
    assert.equal(s.counters.fullScans, before.counters.fullScans + 2);
    assert.match(rescans().at(-1)!, /no longer knows the cursor/);
    assert.deepEqual(mirrored(s.localCollection), expected(harbour));
    assert.equal(s.counters.created, before.counters.created, 'nothing copied twice');
    assert.equal(a.services.library.catalog.data.assets.filter((x) => !x.deleted).length, liveBefore);
  });

  test('imagine peers mirror declares a mirror while the server runs; the server picks it up', async () => {
    await a.services.lock.setUrl(a.origin); // what `imagine serve` records for the CLI
    const { runPeersMirror } = await import('../companion/commands/peers.ts');
    const writes: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (writes.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      await runPeersMirror(`imagine://${b.host}/collections/${other}`, { data: a.dataDir, json: true });
    } finally {
      process.stdout.write = write;
    }
    const printed = JSON.parse(writes.join('').trim()) as { id: string; existed: boolean };
    assert.equal(printed.existed, false);
    const started = Date.now();
    const s = await until('the CLI-declared mirror', async () => {
      await a.app.mirrors!.reload();
      const list = a.app.mirrors!.list();
      const found = list.find((m) => m.id === printed.id);
      return found && found.state === 'following' && found.items === 2 && found;
    });
    console.log(`# CLI-declared mirror copied in ${Date.now() - started} ms`);
    assert.deepEqual(mirrored(s.localCollection), expected(other));
  });

  test('hostile: a forged hint and a stale one are refused and logged; a replayed one triggers nothing', async () => {
    const url = `${a.origin}/api/v1/federation/mirrors/${mirrorId}/hook`;
    const body = JSON.stringify({ type: 'asset.updated', data: { subject: `imagine://${b.host}/images/${pics.dawn}` } });
    const before = await status(mirrorId);
    const forged = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signWebhook({ id: 'msg_forged', timestamp: nowSeconds(), body, secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` }) },
      body,
    });
    assert.equal(forged.status, 401);
    assert.equal(((await forged.json()) as { code: string }).code, 'ERR_WEBHOOK_SIGNATURE_INVALID');
    const secret = a.app.mirrors!.mirror(mirrorId).store.state.hookSecret;
    const stale = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signWebhook({ id: 'msg_stale', timestamp: nowSeconds() - 3600, body, secret }) },
      body,
    });
    assert.equal(stale.status, 401);
    // A genuine hint counts once: its webhook-id sent again is a duplicate.
    const genuine = signWebhook({ id: 'msg_replayed', timestamp: nowSeconds(), body, secret });
    const answers: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const sent = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...genuine }, body });
      assert.equal(sent.status, 200);
      answers.push(await sent.json());
    }
    assert.deepEqual(answers, [{ received: true }, { received: true, duplicate: true }], 'the genuine hint once, the replay acknowledged as a duplicate');
    const unknown = await fetch(`${a.origin}/api/v1/federation/mirrors/m_nosuchmirror/hook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(((await unknown.json()) as { code: string }).code, 'ERR_COLLECTION_MIRROR_NOT_FOUND');
    const after = await status(mirrorId);
    assert.equal(after.counters.hintsRefused, before.counters.hintsRefused + 2);
    // At least the genuine hint; the peer's own hints (from the changes of earlier tests) may
    // arrive meanwhile, so the count is not exact.
    assert.ok(after.counters.hints >= before.counters.hints + 1, 'the genuine hint counted');
    assert.ok(a.logs.some((l) => l.msg === 'collection mirror: webhook hint refused' && l.code === 'ERR_WEBHOOK_SIGNATURE_INVALID'));
    // A peer may not subscribe someone else's URL, and an unsigned subscription is refused.
    const unsigned = await fetch(`${b.origin}/api/v1/federation/subscriptions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unsigned.status, 401);
    const elsewhere = await a.app.federation!.signedFetch(a.origin, `${b.origin}/api/v1/federation/subscriptions`, {
      method: 'POST',
      body: JSON.stringify({ url: 'http://127.0.0.1:9/x', secret: secret, collection: harbour }),
    });
    assert.equal(elsewhere.status, 403);
    // Peers still may not use the administrators' webhook routes.
    const adminRoute = await a.app.federation!.signedFetch(a.origin, `${b.origin}/api/v1/webhooks`, {
      method: 'POST',
      body: JSON.stringify({ url: `${a.origin}/x`, events: ['asset.created'] }),
    });
    assert.equal(adminRoute.status, 403);
  });

  test('hostile: a peer answering garbage on its feed leaves the mirror in error, nothing stored', async () => {
    fake = createServer((req, res) => {
      const origin = `http://${req.headers.host}`;
      const path = (req.url ?? '').split('?')[0];
      const json = (value: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (path === '/.well-known/imagine') return json(buildDiscoveryDocument(origin));
      if (path === '/api/v1/collections/x1') {
        return json({ id: 'x1', uri: `imagine://${req.headers.host}/collections/x1`, name: 'Junk', public: true, created: new Date().toISOString(), itemCount: 1 });
      }
      if (path === '/api/v1/changes') return json({ events: [{ seq: 'one', type: 'asset.created' }], next: 7 });
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => fake!.listen(0, '127.0.0.1', resolve));
    const fakeOrigin = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    await a.app.federation!.peers.recordOutgoing(fakeOrigin, 'requested', [...PEER_SCOPES]);
    const assetsBefore = a.services.library.catalog.data.assets.length;
    const collectionsBefore = a.services.library.catalog.data.collections.length;
    const declared = await call(a, '/federation/mirrors', {
      method: 'POST',
      body: JSON.stringify({ collection: `imagine://${new URL(fakeOrigin).host}/collections/x1` }),
    });
    assert.equal(declared.status, 201);
    const id = ((await declared.json()) as MirrorStatus).id;
    const s = await syncNow(id);
    assert.equal(s.state, 'error');
    assert.equal(s.lastError?.code, 'ERR_UPSTREAM_INVALID');
    assert.equal(s.localCollection, null);
    assert.equal(a.services.library.catalog.data.assets.length, assetsBefore);
    assert.equal(a.services.library.catalog.data.collections.length, collectionsBefore);
    const removed = await call(a, `/federation/mirrors/${id}`, { method: 'DELETE' });
    assert.equal(removed.status, 204);
    // Not a peer at all: refused when declared.
    const stranger = await call(a, '/federation/mirrors', { method: 'POST', body: JSON.stringify({ collection: 'imagine://127.0.0.1:9/collections/x' }) });
    assert.equal(((await stranger.json()) as { code: string }).code, 'ERR_PEER_UNKNOWN');
  });

  test('hostile: revoked trust puts the mirror in error with ERR_PEER_UNKNOWN; local copies are kept', async () => {
    const before = await status(mirrorId);
    const kept = mirrored(before.localCollection);
    await b.app.federation!.peers.revoke(a.host);
    await edit(b, pics.dawn!, { title: 'Changed after the revocation' });
    const s = await syncNow(mirrorId);
    assert.equal(s.state, 'error');
    assert.equal(s.lastError?.code, 'ERR_PEER_UNKNOWN');
    assert.deepEqual(mirrored(s.localCollection), kept, 'nothing removed, nothing changed');
    assert.equal(kept.length, 2);
  });
});
