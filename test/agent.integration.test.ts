/**
 * The agent's checkouts, save-back and push queue against a real library server: `imagine serve
 * --role library` runs as a child process on a fixed loopback port (so it can be stopped and
 * started again at the same address), the agent is the real app (`buildApp`, role agent) on
 * another port, and everything goes over HTTP with real files and real exiftool.
 *
 * A small proxy between the agent and the library misbehaves on demand: cuts a download, flips a
 * byte, answers 500 to uploads, cuts an upload in the middle, or swallows the answer of an upload
 * that landed (so only the Idempotency-Key keeps it from becoming two versions).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../companion/app.ts';
import { loadConfig } from '../companion/config.ts';
import { configureAgentWork } from '../companion/agent/work.ts';
import { readPairingToken } from '../companion/agent/pairing.ts';
import { endExiftool, runExiftool } from '../companion/metadata/exiftool.ts';
import type { Checkout, QueueItem } from '../shared/schemas/agent.ts';
import {
  killChildren,
  lastLine,
  runCli,
  sha256,
  startCli,
  stopChild,
  type Started,
} from './helpers/integration.ts';
import { writeXmpBlock, xmpPacket } from './helpers/metadata.ts';

let root: string;
let libraryData: string;
let libraryPort: number;
let library: Started | undefined;
let libraryOrigin: string;
let token: string;
let proxy: Proxy;

// --- the library server ------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startLibrary(): Promise<void> {
  const started = startCli(['serve', '--role', 'library', '--data', libraryData, '--host', '127.0.0.1', '--port', String(libraryPort), '--json']);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`library did not start\n${started.stderr()}`)), 60_000);
    started.child.stdout!.on('data', () => {
      if (started.stdout().includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    started.exited.then(() => reject(new Error(`library exited\n${started.stderr()}`)));
  });
  library = started;
}

async function stopLibrary(): Promise<void> {
  if (library) await stopChild(library);
  library = undefined;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${libraryOrigin}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as object) } });
}

async function versionsOf(assetId: string): Promise<Array<{ id: string; derivedFrom?: string }>> {
  const res = await api(`/assets/${assetId}/versions`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { items: Array<{ id: string; derivedFrom?: string }> }).items;
}

// --- a source image with the metadata a studio cares about -------------------------------------

let seed = 0;
const STUDIO_NS = 'http://studio.example/ns/job/1.0/';

/** A JPEG with XMP (a custom namespace too), IPTC and EXIF, as a DAM would hold it. */
async function richJpeg(path: string): Promise<void> {
  seed++;
  await sharp({
    create: { width: 320, height: 200, channels: 3, background: { r: 20 + seed * 17, g: 90, b: 160 }, noise: { type: 'gaussian', mean: 120, sigma: 25 } },
  })
    .jpeg({ quality: 85 })
    .toFile(path);
  await writeXmpBlock(
    path,
    xmpPacket(
      `<studio:Job>J-${seed}-42</studio:Job><studio:Client>Harbour Board</studio:Client>
<xmpMM:DocumentID>xmp.did:original-${seed}</xmpMM:DocumentID>
<xmpMM:OriginalDocumentID>xmp.did:original-${seed}</xmpMM:OriginalDocumentID>
<xmpMM:InstanceID>xmp.iid:original-${seed}</xmpMM:InstanceID>`,
      { studio: STUDIO_NS },
    ),
  );
  const out = await runExiftool([
    '-overwrite_original',
    '-XMP-dc:Title=Harbour at dawn',
    '-XMP-dc:Creator=Ada Lovelace',
    '-XMP-dc:Subject=harbour',
    '-XMP-dc:Subject=boats',
    '-XMP-dc:Description=Fishing boats at first light',
    '-XMP-dc:Rights=(c) 2024 Ada Lovelace',
    '-XMP-photoshop:Credit=Harbour Board',
    '-IPTC:ObjectName=Harbour at dawn',
    '-IPTC:By-line=Ada Lovelace',
    '-IPTC:Keywords=harbour',
    '-IPTC:Keywords=boats',
    '-IPTC:CopyrightNotice=(c) 2024 Ada Lovelace',
    '-EXIF:Artist=Ada Lovelace',
    '-EXIF:Copyright=(c) 2024 Ada Lovelace',
    path,
  ]);
  assert.deepEqual(out.errors, []);
}

/** What a Photoshop save does: new pixels, metadata gone but for a fresh XMP of its own. */
async function photoshopSave(path: string, tint = 40): Promise<void> {
  const pixels = await sharp(path).modulate({ brightness: 1.1 }).tint({ r: 200, g: 120 + tint, b: 80 }).jpeg({ quality: 90 }).toBuffer();
  await writeFile(path, pixels);
  await writeXmpBlock(
    path,
    xmpPacket(
      `<xmpMM:InstanceID>xmp.iid:photoshop-${Date.now()}</xmpMM:InstanceID>
<xmpMM:DocumentID>xmp.did:photoshop-save-as</xmpMM:DocumentID>
<xmp:CreatorTool xmlns:xmp="http://ns.adobe.com/xap/1.0/">Adobe Photoshop 26.0</xmp:CreatorTool>`,
    ),
  );
}

async function xmpOf(assetId: string, version: string): Promise<string> {
  const res = await api(`/assets/${assetId}/versions/${version}/xmp`);
  assert.equal(res.status, 200);
  return res.text();
}

async function addAsset(): Promise<{ id: string; uri: string; version: string }> {
  const file = join(root, `source-${seed + 1}.jpg`);
  await richJpeg(file);
  const res = await api('/assets', { method: 'POST', body: new Uint8Array(await readFile(file)), headers: { 'content-type': 'image/jpeg', 'imagine-filename': 'harbour.jpg' } });
  assert.equal(res.status, 201, await res.clone().text());
  const asset = (await res.json()) as { id: string; uri: string; currentVersion: string };
  return { id: asset.id, uri: asset.uri, version: asset.currentVersion };
}

// --- the misbehaving proxy ---------------------------------------------------------------------

type ProxyMode = 'pass' | 'cut-download' | 'flip-download' | 'fail-uploads' | 'cut-upload' | 'drop-final-answer';

interface Proxy {
  origin: string;
  mode: ProxyMode;
  /** How many times the current misbehaviour is applied before passing again (Infinity: always). */
  times: number;
  ranges: string[];
  uploadHeads: number;
  uploads: string[];
  close(): Promise<void>;
}

async function startProxy(): Promise<Proxy> {
  const state = { mode: 'pass' as ProxyMode, times: Infinity, ranges: [] as string[], uploadHeads: 0, uploads: [] as string[] };
  const misbehave = (mode: ProxyMode) => {
    if (state.mode !== mode || state.times <= 0) return false;
    state.times--;
    return true;
  };
  const server: HttpServer = createServer((req, res) => {
    const path = req.url ?? '/';
    // Originals only: the agent's thumbnail cache fetches other renditions through the proxy too.
    const isFile = req.method === 'GET' && path.startsWith('/api/v1/files/') && path.split('?')[0]!.endsWith('/original');
    const isUpload = path.startsWith('/api/v1/uploads');
    if (isFile && req.headers.range) state.ranges.push(req.headers.range);
    if (isUpload && req.method === 'HEAD') state.uploadHeads++;
    if (isUpload) {
      const noted = [req.method, req.headers['upload-defer-length'] && 'defer-length', req.headers['upload-length'] && req.method === 'PATCH' && 'length', req.headers['imagine-sha256'] && 'sha256'];
      state.uploads.push(noted.filter(Boolean).join(' '));
    }
    if (isUpload && (req.method === 'POST' || req.method === 'PATCH') && misbehave('fail-uploads')) {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
      return;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: libraryPort, method: req.method, path, headers: req.headers },
      (answer) => {
        if (isFile && answer.statusCode === 200 && misbehave('cut-download')) {
          res.writeHead(200, answer.headers);
          const cutAt = Math.floor(Number(answer.headers['content-length']) / 2);
          let sent = 0;
          answer.on('data', (chunk: Buffer) => {
            if (sent >= cutAt) return;
            const part = chunk.subarray(0, cutAt - sent);
            sent += part.length;
            res.write(part);
            if (sent >= cutAt) {
              // Let the first half arrive, then cut the connection.
              answer.destroy();
              setTimeout(() => res.destroy(), 300);
            }
          });
          return;
        }
        if (isFile && (answer.statusCode === 200 || answer.statusCode === 206) && misbehave('flip-download')) {
          res.writeHead(answer.statusCode, answer.headers);
          let flipped = false;
          answer.on('data', (chunk: Buffer) => {
            if (!flipped && chunk.length > 10) {
              chunk.writeUInt8(chunk.readUInt8(chunk.length - 5) ^ 0xff, chunk.length - 5);
              flipped = true;
            }
            res.write(chunk);
          });
          answer.on('end', () => res.end());
          return;
        }
        if (isUpload && req.method === 'PATCH' && answer.headers['imagine-version'] && misbehave('drop-final-answer')) {
          answer.resume();
          res.destroy(); // the version landed, but the agent never hears of it
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    if (isUpload && req.method === 'PATCH' && misbehave('cut-upload')) {
      let got = 0;
      req.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got < 30_000) upstream.write(chunk);
        else {
          // The server vanishes mid-upload: both sides of the connection are cut.
          upstream.destroy();
          req.destroy();
          res.destroy();
        }
      });
      return;
    }
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    get mode() {
      return state.mode;
    },
    set mode(mode: ProxyMode) {
      state.mode = mode;
    },
    get times() {
      return state.times;
    },
    set times(n: number) {
      state.times = n;
    },
    get ranges() {
      return state.ranges;
    },
    set ranges(v: string[]) {
      state.ranges = v;
    },
    get uploadHeads() {
      return state.uploadHeads;
    },
    /** Upload requests seen: method, and `defer-length`, `length` (on a PATCH), `sha256` when they carry them. */
    get uploads() {
      return state.uploads;
    },
    set uploads(v: string[]) {
      state.uploads = v;
    },
    set uploadHeads(v: number) {
      state.uploadHeads = v;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  } as Proxy;
}

// --- the agent ---------------------------------------------------------------------------------

interface Agent {
  dataDir: string;
  app: FastifyInstance;
  origin: string;
  pairing: string;
  call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

async function startAgent(dataDir?: string): Promise<Agent> {
  const dir = dataDir ?? (await mkdtemp(join(root, 'agent-')));
  const config = loadConfig({ flags: { dataDir: dir, role: 'agent', port: 0, agentRetryMaxSeconds: 1 }, readFile: false });
  const { openAgentServices } = await import('../companion/agent/services.ts');
  const services = await openAgentServices(config);
  configureAgentWork(services, { retryBaseMs: 100, retryDelayMs: 50, settleMs: 150 });
  const app = await buildApp(config, { logger: false, agent: services });
  app.addHook('onClose', async () => services.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  services.origin = origin;
  const pairing = (await readPairingToken(join(dir, 'agent')))!;
  assert.ok(pairing, 'the agent has a pairing token');
  return {
    dataDir: dir,
    app,
    origin,
    pairing,
    async call(method, path, body) {
      const res = await fetch(`${origin}/agent/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${pairing}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    close: () => app.close(),
  };
}

async function connect(agent: Agent, origin: string): Promise<string> {
  const res = await agent.call('POST', '/connections', { url: origin, token });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id as string;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function checkoutReady(agent: Agent, uri: string, extra: Record<string, unknown> = {}): Promise<Checkout> {
  const res = await agent.call<Checkout>('POST', '/checkouts', { uri, ...extra });
  assert.ok(res.status === 201 || res.status === 200, JSON.stringify(res.body));
  return until('the checkout', async () => {
    const { body } = await agent.call<Checkout>('GET', `/checkouts/${res.body.id}`);
    if (body.state === 'failed') throw new Error(`checkout failed: ${JSON.stringify(body.error)}`);
    return body.state === 'ready' ? body : undefined;
  });
}

async function settledItem(agent: Agent, id: string, states = ['done', 'conflict', 'failed']): Promise<QueueItem> {
  return until(`push ${id}`, async () => {
    const { body } = await agent.call<QueueItem>('GET', `/queue/${id}`);
    return states.includes(body.state) ? body : undefined;
  });
}

async function push(agent: Agent, checkout: Checkout, body: Record<string, unknown> = {}): Promise<QueueItem> {
  const res = await agent.call<QueueItem>('POST', `/checkouts/${checkout.id}/push`, body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body;
}

let agent: Agent;
let direct: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-agent-it-'));
  libraryData = join(root, 'library');
  libraryPort = await freePort();
  libraryOrigin = `http://127.0.0.1:${libraryPort}`;
  assert.equal((await runCli(['users', 'add', 'ada', '--admin', '--data', libraryData])).code, 0);
  const created = await runCli(['tokens', 'create', '--user', 'ada', '--data', libraryData]);
  assert.equal(created.code, 0, created.stderr);
  token = lastLine(created.stdout).trim();
  await startLibrary();
  proxy = await startProxy();
  agent = await startAgent();
  direct = await connect(agent, libraryOrigin);
});

after(async () => {
  await agent?.close().catch(() => {});
  await proxy?.close().catch(() => {});
  await stopLibrary().catch(() => {});
  killChildren();
  await endExiftool();
  await rm(root, { recursive: true, force: true });
});

describe('checkout', () => {
  test('downloads, verifies, names the file readably, and reuses it for the same version', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, asset.uri);
    assert.equal(checkout.baseVersion, asset.version);
    assert.equal(checkout.connection, direct);
    assert.match(basename(checkout.path), new RegExp(`^harbour-at-dawn_${asset.id.slice(0, 4)}_v1\\.jpg$`));
    const bytes = await readFile(checkout.path);
    const ticket = (await (await api(`/assets/${asset.id}/download`)).json()) as { sha256: string; size: number };
    assert.equal(sha256(bytes), ticket.sha256);
    assert.equal(checkout.sha256, ticket.sha256);
    assert.deepEqual(checkout.progress, { done: ticket.size, total: ticket.size });

    const again = await agent.call<Checkout>('POST', '/checkouts', { uri: asset.uri });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, checkout.id);
    assert.equal(again.body.path, checkout.path);
  });

  test('the events route streams snapshots until the checkout is ready', async () => {
    const asset = await addAsset();
    const res = await agent.call<Checkout>('POST', '/checkouts', { uri: asset.uri });
    const events = await fetch(`${agent.origin}/agent/v1/checkouts/${res.body.id}/events`, { headers: { authorization: `Bearer ${agent.pairing}` } });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await events.text(); // ends when the checkout is ready
    const snapshots = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as Checkout);
    assert.ok(snapshots.length >= 1);
    assert.equal(snapshots.at(-1)!.state, 'ready');
  });

  test('an unknown checkout, a URI of no connection and a bad URI are refused with their codes', async () => {
    assert.equal((await agent.call('GET', '/checkouts/nope')).body.code, 'ERR_CHECKOUT_NOT_FOUND');
    assert.equal((await agent.call('POST', '/checkouts', { uri: 'imagine://elsewhere.example/images/abc' })).body.code, 'ERR_CONNECTION_NOT_FOUND');
    assert.equal((await agent.call('POST', '/checkouts', { uri: 'https://x/y' })).body.code, 'ERR_URI_INVALID');
  });
});

describe('save back', () => {
  test('a Photoshop-style save keeps every original field, and the new version points at its base', async () => {
    const asset = await addAsset();
    const before = await (await api(`/assets/${asset.id}`)).json() as { metadata: Record<string, unknown> };
    const checkout = await checkoutReady(agent, asset.uri);
    await photoshopSave(checkout.path);
    const edited = await runExiftool(['-j', '-XMP-dc:Title', '-IPTC:By-line', checkout.path]);
    assert.doesNotMatch(edited.stdout, /Harbour at dawn|Ada Lovelace/, 'the save dropped the metadata');
    const saved = await readFile(checkout.path);

    const item = await push(agent, checkout, { comment: 'warmer' });
    assert.equal(item.state === 'queued' || item.state === 'uploading' || item.state === 'done', true);
    const done = await settledItem(agent, item.id);
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.equal(done.result!.version, 'v2');
    assert.equal(done.result!.uri, `${asset.uri}@v2`);

    const versions = await versionsOf(asset.id);
    assert.deepEqual(versions.map((v) => v.id), ['v1', 'v2']);
    assert.equal(versions[1]!.derivedFrom, 'v1');
    const after = (await (await api(`/assets/${asset.id}`)).json()) as { metadata: Record<string, unknown> };
    for (const [field, value] of Object.entries(before.metadata)) {
      assert.deepEqual(after.metadata[field], value, `field ${field} kept`);
    }
    const xmp = await xmpOf(asset.id, 'v2');
    assert.match(xmp, /J-\d+-42/, 'the custom namespace came back');
    assert.match(xmp, /Harbour Board/);
    assert.match(xmp, new RegExp(`xmp\\.did:original-\\d+`), 'DocumentID is the original one');
    assert.doesNotMatch(xmp, /xmp\.did:photoshop-save-as<\/xmpMM:DocumentID>/);
    assert.match(xmp, /stRef:versionID[^>]*>v1<|stRef:versionID="v1"/, 'DerivedFrom names the base version');
    assert.ok(xmp.includes(`${asset.uri}@v1`), 'DerivedFrom carries the base URI');

    // The checkout moved on: its base is the new version, and its working file is untouched.
    const { body: moved } = await agent.call<Checkout>('GET', `/checkouts/${checkout.id}`);
    assert.equal(moved.state, 'pushed');
    assert.equal(moved.baseVersion, 'v2');
    assert.ok((await readFile(checkout.path)).equals(saved), 'the working file is exactly as the editor saved it');
  });
});

describe('conflicts', () => {
  test('two checkouts of one base pushed one after the other: one version, one conflict, both files kept', async () => {
    const asset = await addAsset();
    const first = await checkoutReady(agent, asset.uri);
    // A second designer (a second agent) checks out the same base.
    const other = await startAgent();
    try {
      await connect(other, libraryOrigin);
      const second = await checkoutReady(other, asset.uri);
      assert.equal(second.baseVersion, first.baseVersion);
      await photoshopSave(first.path, 10);
      await photoshopSave(second.path, 90);
      const firstShaBefore = sha256(await readFile(first.path));
      const secondShaBefore = sha256(await readFile(second.path));

      const a = await settledItem(agent, (await push(agent, first)).id);
      assert.equal(a.state, 'done');
      const b = await settledItem(other, (await push(other, second)).id);
      assert.equal(b.state, 'conflict');
      assert.equal(b.error?.code, 'ERR_PRECONDITION_FAILED');
      assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
      assert.equal((await other.call<Checkout>('GET', `/checkouts/${second.id}`)).body.state, 'conflict');
      // Both working files are there, untouched; the conflicting push's prepared file too.
      assert.equal(sha256(await readFile(first.path)), firstShaBefore);
      assert.equal(sha256(await readFile(second.path)), secondShaBefore);
      assert.ok((await stat(b.path)).size > 0);
      // A second push of a checkout in conflict is refused until it is resolved.
      assert.equal((await other.call('POST', `/checkouts/${second.id}/push`, {})).body.code, 'ERR_CONFLICT');
      assert.equal((await other.call('POST', `/queue/${a.id}/resolve`, { action: 'discard' })).status, 404);

      // Save as a new asset derived from the newest version.
      const resolved = await other.call<QueueItem>('POST', `/queue/${b.id}/resolve`, { action: 'new-asset' });
      assert.equal(resolved.status, 202, JSON.stringify(resolved.body));
      const forked = await settledItem(other, b.id);
      assert.equal(forked.state, 'done', JSON.stringify(forked.error));
      assert.notEqual(forked.result!.assetId, asset.id);
      const xmp = await xmpOf(forked.result!.assetId, 'v1');
      assert.ok(xmp.includes(`${asset.uri}@v2`), 'the new asset is derived from the newest version');
      const fork = (await (await api(`/assets/${forked.result!.assetId}`)).json()) as { metadata: Record<string, unknown> };
      assert.deepEqual(fork.metadata.creator, ['Ada Lovelace'], 'creator untouched');
      assert.equal((await other.call('POST', `/queue/${b.id}/resolve`, { action: 'discard' })).body.code, 'ERR_NOT_IN_CONFLICT');
    } finally {
      await other.close();
    }
  });

  test('push-on-top makes the conflicting file the next version', async () => {
    const asset = await addAsset();
    const first = await checkoutReady(agent, asset.uri);
    const old = await checkoutReady(agent, asset.uri, { version: 'v1' });
    assert.equal(old.id, first.id, 'same version: the same checkout');
    await photoshopSave(first.path, 20);
    assert.equal((await settledItem(agent, (await push(agent, first)).id)).state, 'done');
    // The base moved on; a checkout of v1 now is a new one, with its own file.
    const stale = await checkoutReady(agent, asset.uri, { version: 'v1' });
    assert.notEqual(stale.id, first.id);
    assert.notEqual(stale.path, first.path);
    await photoshopSave(stale.path, 70);
    const conflict = await settledItem(agent, (await push(agent, stale)).id);
    assert.equal(conflict.state, 'conflict');
    await agent.call('POST', `/queue/${conflict.id}/resolve`, { action: 'push-on-top' });
    const done = await settledItem(agent, conflict.id);
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.equal(done.result!.version, 'v3');
    assert.deepEqual((await versionsOf(asset.id)).map((v) => v.derivedFrom ?? null), [null, 'v1', 'v2']);
  });
});

describe('bad input', () => {
  let viaProxy: string;
  before(async () => {
    viaProxy = await connect(agent, proxy.origin);
  });
  /** The asset's URI as the proxy's server names it. */
  const proxied = (uri: string) => uri.replace(`127.0.0.1:${libraryPort}`, proxy.origin.slice('http://'.length));

  test('a cut download resumes with Range and ends verified', async () => {
    const asset = await addAsset();
    proxy.mode = 'cut-download';
    proxy.times = 1;
    proxy.ranges = [];
    try {
      const checkout = await checkoutReady(agent, proxied(asset.uri));
      assert.equal(checkout.connection, viaProxy);
      assert.ok(proxy.ranges.some((r) => /^bytes=[1-9]\d*-$/.test(r)), `a Range request was made: ${proxy.ranges}`);
      const ticket = (await (await api(`/assets/${asset.id}/download`)).json()) as { sha256: string };
      assert.equal(sha256(await readFile(checkout.path)), ticket.sha256);
    } finally {
      proxy.mode = 'pass';
    }
  });

  test('a corrupted download fails with ERR_DIGEST_MISMATCH and leaves no working file', async () => {
    const asset = await addAsset();
    proxy.mode = 'flip-download';
    proxy.times = Infinity;
    try {
      const res = await agent.call<Checkout>('POST', '/checkouts', { uri: proxied(asset.uri) });
      const failed = await until('the failure', async () => {
        const { body } = await agent.call<Checkout>('GET', `/checkouts/${res.body.id}`);
        return body.state === 'failed' ? body : undefined;
      });
      assert.equal(failed.error?.code, 'ERR_DIGEST_MISMATCH');
      await assert.rejects(stat(failed.path), { code: 'ENOENT' });
      // Once the network behaves, checking out again starts over and succeeds.
      proxy.mode = 'pass';
      const again = await agent.call<Checkout>('POST', '/checkouts', { uri: proxied(asset.uri) });
      assert.equal(again.body.id, failed.id);
      await until('the retry', async () => ((await agent.call<Checkout>('GET', `/checkouts/${failed.id}`)).body.state === 'ready' ? true : undefined));
    } finally {
      proxy.mode = 'pass';
    }
  });

  test('a push of a file that is gone is refused with ERR_FILE_MISSING, nothing queued', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, asset.uri);
    const queued = (await agent.call<{ items: QueueItem[] }>('GET', '/queue')).body.items.length;
    await rm(checkout.path);
    const res = await agent.call('POST', `/checkouts/${checkout.id}/push`, {});
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'ERR_FILE_MISSING');
    const other = await agent.call('POST', `/checkouts/${checkout.id}/push`, { path: join(root, 'never-saved.jpg') });
    assert.equal(other.body.code, 'ERR_FILE_MISSING');
    assert.equal((await agent.call<{ items: QueueItem[] }>('GET', '/queue')).body.items.length, queued);
    assert.equal((await agent.call<Checkout>('GET', `/checkouts/${checkout.id}`)).body.state, 'ready');
  });

  test('a push of a file still being written is refused with ERR_FILE_BUSY', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, asset.uri);
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await appendFile(checkout.path, Buffer.alloc(4096, 1));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const res = await agent.call('POST', `/checkouts/${checkout.id}/push`, {});
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'ERR_FILE_BUSY');
    } finally {
      writing = false;
      await writer;
    }
  });

  test('the file is sent while it is prepared (a head start), then finished by the worker: one upload, one version', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, proxied(asset.uri));
    await photoshopSave(checkout.path);
    proxy.uploads = [];
    const item = await push(agent, checkout);
    const done = await settledItem(agent, item.id);
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.deepEqual(proxy.uploads.filter((u) => u.startsWith('POST')), ['POST defer-length'], proxy.uploads.join(', '));
    assert.equal(proxy.uploads.at(-1), 'PATCH length sha256', 'the worker declared the length and the digest');
    assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
    const { body: moved } = await agent.call<Checkout>('GET', `/checkouts/${checkout.id}`);
    const stored = (await (await api(`/assets/${asset.id}`)).json()) as { versions: Array<{ id: string; sha256: string }> };
    assert.equal(stored.versions.find((v) => v.id === 'v2')?.sha256, moved.sha256, 'the server holds the prepared file');
  });

  test('a push refused after its head start began (workflow policy) abandons that upload', async () => {
    const policyFile = join(libraryData, 'workflow-policy.json');
    await writeFile(policyFile, JSON.stringify({ requiredFields: ['headline'] }));
    try {
      const asset = await addAsset();
      const checkout = await checkoutReady(agent, proxied(asset.uri));
      await photoshopSave(checkout.path);
      await runExiftool(['-overwrite_original', '-XMP-photoshop:Headline=', '-IPTC:Headline=', checkout.path]);
      proxy.uploads = [];
      const refused = await agent.call('POST', `/checkouts/${checkout.id}/push`, {});
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      for (let i = 0; i < 100 && !proxy.uploads.includes('DELETE'); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(proxy.uploads[0], 'POST defer-length', 'the head start had begun');
      assert.ok(proxy.uploads.includes('DELETE'), proxy.uploads.join(', '));
      assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1']);
    } finally {
      await rm(policyFile, { force: true });
    }
  });

  test('a server answering 500 is retried with backoff until the push lands once', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, proxied(asset.uri));
    await photoshopSave(checkout.path);
    proxy.mode = 'fail-uploads';
    proxy.times = 3;
    const item = await push(agent, checkout);
    const done = await settledItem(agent, item.id);
    proxy.mode = 'pass';
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.ok(done.attempts >= 2, `retried (${done.attempts} attempts)`);
    assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
  });

  test('a server vanishing mid-upload: the upload resumes from its offset, one version', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, proxied(asset.uri));
    // Big enough that the cut comes before the end.
    const big = await sharp({ create: { width: 900, height: 700, channels: 3, background: '#446688', noise: { type: 'gaussian', mean: 128, sigma: 60 } } })
      .jpeg({ quality: 95 })
      .toBuffer();
    await writeFile(checkout.path, big);
    proxy.mode = 'cut-upload';
    proxy.times = 1;
    proxy.uploadHeads = 0;
    const item = await push(agent, checkout);
    const done = await settledItem(agent, item.id);
    proxy.mode = 'pass';
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.ok(proxy.uploadHeads >= 1, 'the upload offset was asked for (resumed)');
    assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
  });

  test('an upload whose answer is lost is not pushed twice (Idempotency-Key)', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, proxied(asset.uri));
    await photoshopSave(checkout.path);
    proxy.mode = 'drop-final-answer';
    proxy.times = 1;
    const item = await push(agent, checkout);
    const done = await settledItem(agent, item.id);
    proxy.mode = 'pass';
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.ok(done.attempts >= 2, 'the answer was lost, so it was tried again');
    assert.equal(done.result!.version, 'v2');
    assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
  });

  test('a push repeated with the same requestId (the panel retrying after a lost answer) is queued once', async () => {
    const asset = await addAsset();
    const checkout = await checkoutReady(agent, asset.uri);
    await photoshopSave(checkout.path);
    const first = await push(agent, checkout, { comment: 'once', requestId: 'save-42' });
    const again = await agent.call<QueueItem>('POST', `/checkouts/${checkout.id}/push`, { comment: 'once', requestId: 'save-42' });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.id, first.id);
    const done = await settledItem(agent, first.id);
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    const later = await agent.call<QueueItem>('POST', `/checkouts/${checkout.id}/push`, { requestId: 'save-42' });
    assert.equal(later.status, 200, 'still the same push once it has landed');
    assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
  });

  test('a proxy checkout cannot be pushed', async () => {
    const asset = await addAsset();
    const proxyCheckout = await checkoutReady(agent, asset.uri, { rendition: 'proxy' });
    assert.match(basename(proxyCheckout.path), /_proxy\.jpg$/);
    const res = await agent.call('POST', `/checkouts/${proxyCheckout.id}/push`, {});
    assert.equal(res.body.code, 'ERR_BAD_REQUEST');
  });
});

describe('offline queue', () => {
  test('server stopped, push, agent restarted, server started: exactly one new version', async () => {
    const asset = await addAsset();
    const own = await startAgent();
    let restarted: Agent | undefined;
    try {
      await connect(own, libraryOrigin);
      const checkout = await checkoutReady(own, asset.uri);
      await photoshopSave(checkout.path);
      await stopLibrary();
      const item = await push(own, checkout, { comment: 'offline' });
      assert.ok(['queued', 'uploading', 'retrying'].includes(item.state), item.state);
      await until('a failed attempt', async () => {
        const { body } = await own.call<QueueItem>('GET', `/queue/${item.id}`);
        return body.state === 'retrying' ? body : undefined;
      });
      const status = (await own.call<{ queue: { pending: number } }>('GET', '/status')).body;
      if (status?.queue) assert.ok(status.queue.pending >= 1);
      await own.close();
      restarted = await startAgent(own.dataDir);
      const listed = (await restarted.call<{ items: QueueItem[] }>('GET', '/queue')).body.items.find((i) => i.id === item.id);
      assert.ok(listed && listed.state !== 'done', 'the push survived the restart');
      await startLibrary();
      const done = await settledItem(restarted, item.id);
      assert.equal(done.state, 'done', JSON.stringify(done.error));
      // Give a duplicate every chance to show up.
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual((await versionsOf(asset.id)).map((v) => v.id), ['v1', 'v2']);
    } finally {
      if (!library) await startLibrary();
      await restarted?.close();
      await own.close().catch(() => {});
    }
  });
});

describe('workflow policy', () => {
  test('published in capabilities, shown by the agent, enforced before queueing', async () => {
    const policyFile = join(libraryData, 'workflow-policy.json');
    await writeFile(policyFile, JSON.stringify({ requiredFields: ['creator', 'headline'], allowedMediaTypes: ['image/jpeg'], description: 'House rules' }));
    try {
      const caps = (await (await fetch(`${libraryOrigin}/.well-known/imagine/capabilities`)).json()) as { extensions: Array<{ name: string; spec: string }> };
      const extension = caps.extensions.find((e) => e.name === 'org.imagine.workflow-policy');
      assert.ok(extension, 'the extension is published');
      assert.equal((await fetch(extension.spec)).status, 200);
      assert.deepEqual(await (await api('/workflow-policy')).json(), { requiredFields: ['creator', 'headline'], allowedMediaTypes: ['image/jpeg'], description: 'House rules' });
      const shown = await agent.call('GET', `/policy/${direct}`);
      assert.equal(shown.status, 200);
      assert.equal(shown.body.description, 'House rules');

      const asset = await addAsset();
      const checkout = await checkoutReady(agent, asset.uri);
      await photoshopSave(checkout.path);
      const refused = await agent.call('POST', `/checkouts/${checkout.id}/push`, {});
      assert.equal(refused.status, 422);
      assert.equal(refused.body.code, 'ERR_POLICY_VIOLATION');
      assert.deepEqual(refused.body.issues.map((i: { field?: string }) => i.field), ['headline'], 'creator was restored, headline is missing');
      await runExiftool(['-overwrite_original', '-XMP-photoshop:Headline=Dawn', checkout.path]);
      const accepted = await agent.call<QueueItem>('POST', `/checkouts/${checkout.id}/push`, {});
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
      assert.equal((await settledItem(agent, accepted.body.id)).state, 'done');
    } finally {
      await rm(policyFile, { force: true });
    }
    assert.deepEqual((await agent.call('GET', `/policy/${direct}`)).body, {});
    assert.equal((await agent.call('GET', '/policy/nope')).body.code, 'ERR_CONNECTION_NOT_FOUND');
  });
});

describe('CLI twins', () => {
  test('imagine checkout, push and queue drive a running agent', async () => {
    const asset = await addAsset();
    const data = await mkdtemp(join(root, 'cli-agent-'));
    const serve = startCli(['serve', '--role', 'agent', '--data', data, '--host', '127.0.0.1', '--port', '0', '--json']);
    try {
      await until('the agent', async () => (serve.stdout().includes('\n') ? true : undefined));
      const connected = await runCli(['connect', libraryOrigin, '--token', token, '--data', data]);
      assert.equal(connected.code, 0, connected.stderr);

      const checkout = await runCli(['checkout', asset.uri, '--data', data]);
      assert.equal(checkout.code, 0, checkout.stderr);
      const path = lastLine(checkout.stdout);
      assert.match(basename(path), /^harbour-at-dawn_.*_v1\.jpg$/);
      const json = await runCli(['checkout', asset.uri, '--json', '--data', data]);
      assert.equal((JSON.parse(json.stdout) as Checkout).path, path, 'the same version reuses the file');

      await photoshopSave(path);
      const pushed = await runCli(['push', path, '--comment', 'from a script', '--wait', '--data', data]);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.equal(lastLine(pushed.stdout), `${asset.uri}@v2`);

      const queue = await runCli(['queue', '--json', '--data', data]);
      assert.equal(queue.code, 0, queue.stderr);
      const items = (JSON.parse(queue.stdout) as { items: QueueItem[] }).items;
      assert.equal(items.length, 1);
      assert.equal(items[0]!.state, 'done');
      assert.equal(items[0]!.comment, 'from a script');
      const plain = await runCli(['queue', '--data', data]);
      assert.match(plain.stdout, /\tdone\t1 attempt\(s\)\t100%/);

      const missing = await runCli(['push', join(root, 'nope.jpg'), '--data', data]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /ERR_CHECKOUT_NOT_FOUND/);
      const bad = await runCli(['checkout', 'imagine://nowhere.example/images/x', '--data', data]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^imagine: .*\[ERR_CONNECTION_NOT_FOUND\]\n$/);
    } finally {
      await stopChild(serve);
    }
    const gone = await runCli(['queue', '--data', data]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /ERR_AGENT_NOT_RUNNING/);
  });
});
