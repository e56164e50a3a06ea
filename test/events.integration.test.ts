/**
 * Webhooks end to end on loopback: a real library server (fastify listening on 127.0.0.1) and a
 * real receiver (node:http) that verifies every delivery with companion/events/receiver.ts.
 * Subscriptions verified by challenge (and refused when the challenge is not echoed, or the
 * URL is private on a default server), the six change events delivered thin and signed,
 * retries with backoff after failures, giving up, 410 ending a subscription, and an outbox
 * that survives a restart (including a change committed while the server was down).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../companion/app.ts';
import { loadConfig } from '../companion/config.ts';
import { createWebhookReceiver, type WebhookMessage } from '../companion/events/receiver.ts';
import { generateSecret, signatureOf, signWebhook, verifyWebhook } from '../companion/events/standard-webhooks.ts';
import { libraryServicesOptions, openLibraryServices, type LibraryServices } from '../companion/library/services.ts';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import { isProtocolError, PROBLEM_CONTENT_TYPE } from '../shared/errors.ts';
import { startTestLibrary } from './helpers/test-library.ts';
import { uniqueJpeg } from './helpers/integration.ts';

const ALL_EVENTS = ['asset.created', 'asset.updated', 'asset.deleted', 'rights.changed', 'collection.items_added', 'collection.items_removed'];

// ---- the receiver -------------------------------------------------------------------------

interface Hook {
  secret?: string;
  /** How to answer the challenge. */
  challenge: 'echo' | 'wrong' | 'status-404';
  /** Status of the answer to the n-th delivery attempt (1-based), after processing it. */
  answer: (attempt: number) => number;
  challenges: { body: WebhookMessage; signatureValid?: boolean }[];
  processed: { id: string; message: WebhookMessage; at: number }[];
  duplicates: string[];
  attempts: { id: string; at: number }[];
  refused: number;
  receive?: ReturnType<typeof createWebhookReceiver>;
}

const hooks = new Map<string, Hook>();
let receiver: Server;
let receiverOrigin = '';

function hook(name: string, options: Partial<Pick<Hook, 'secret' | 'challenge' | 'answer'>> = {}): { url: string; hook: Hook } {
  const h: Hook = { challenge: 'echo', answer: () => 200, challenges: [], processed: [], duplicates: [], attempts: [], refused: 0, ...options };
  hooks.set(name, h);
  return { url: `${receiverOrigin}/hooks/${name}`, hook: h };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function handleHook(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const name = (req.url ?? '').split('/')[2] ?? '';
  const h = hooks.get(name);
  const raw = await readBody(req);
  if (!h || req.method !== 'POST') return void res.writeHead(404).end();
  const message = JSON.parse(raw.toString('utf8')) as WebhookMessage;
  if (message.type === 'webhook.challenge') {
    let signatureValid: boolean | undefined;
    if (h.secret) {
      try {
        verifyWebhook({ headers: req.headers, body: raw, secret: h.secret });
        signatureValid = true;
      } catch {
        signatureValid = false;
      }
    }
    h.challenges.push({ body: message, signatureValid });
    if (h.challenge === 'status-404') return void res.writeHead(404).end();
    const echoed = h.challenge === 'echo' ? message.challenge : 'not-the-challenge';
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ challenge: echoed }));
  }
  h.attempts.push({ id: String(req.headers['webhook-id']), at: Date.now() });
  if (!h.receive) return void res.writeHead(503).end(); // no secret yet
  const count = h.attempts.filter((a) => a.id === String(req.headers['webhook-id'])).length;
  try {
    const result = h.receive(req.headers, raw);
    if (result.status === 'duplicate') {
      // Already processed: not done again; answered as scripted.
      h.duplicates.push(result.id);
      return void res.writeHead(h.answer(count)).end();
    }
    h.processed.push({ id: result.id, message: result.message, at: Date.now() });
  } catch (error) {
    h.refused++;
    const problem = isProtocolError(error) ? { code: error.code, status: 401, detail: error.message } : { code: 'ERR_INTERNAL', status: 500 };
    return void res.writeHead(problem.status, { 'content-type': PROBLEM_CONTENT_TYPE }).end(JSON.stringify(problem));
  }
  res.writeHead(h.answer(count)).end();
}

// ---- the library --------------------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), 'imagine-events-'));
let app: FastifyInstance;
let services: LibraryServices;
let origin = '';
let admin = '';
/** What the server logged (warn and above). */
const logLines: Record<string, unknown>[] = [];

async function startLibrary(): Promise<void> {
  const config = loadConfig({
    flags: {
      dataDir,
      port: 0,
      role: 'library',
      allowPrivateWebhooks: true,
      webhookRetryBaseMs: 60,
      webhookRetryMaxMs: 400,
      webhookMaxAttempts: 4,
      webhookTimeoutMs: 1500,
    },
    readFile: false,
  });
  services = await openLibraryServices(libraryServicesOptions(config, 'events test'));
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>));
      done();
    },
  });
  app = await buildApp(config, { services, logger: { level: 'warn', stream } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function stopLibrary(): Promise<void> {
  await app.close();
  await services.close();
}

async function call(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? admin : init.token;
  if (token) headers.set('authorization', `Bearer ${token}`);
  if (typeof init.body === 'string') headers.set('content-type', 'application/json');
  return fetch(`${origin}${path}`, { ...init, headers });
}

async function subscribe(url: string, events = ALL_EVENTS, extra: Record<string, unknown> = {}) {
  const response = await call('/api/v1/webhooks', { method: 'POST', body: JSON.stringify({ url, events, ...extra }) });
  return { response, body: (await response.json()) as Record<string, any> };
}

async function activate(name: string, options: Partial<Pick<Hook, 'answer'>> = {}, events = ALL_EVENTS) {
  const { url, hook: h } = hook(name, options);
  const { response, body } = await subscribe(url, events);
  assert.equal(response.status, 201, JSON.stringify(body));
  h.secret = body.secret;
  h.receive = createWebhookReceiver({ secret: body.secret });
  return { id: body.id as string, hook: h };
}

async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function deliveries(id: string): Promise<any[]> {
  const response = await call(`/api/v1/webhooks/${id}/deliveries`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { items: any[] }).items;
}

async function addAsset(seed: number, collection?: string): Promise<string> {
  const response = await call('/api/v1/assets', {
    method: 'POST',
    body: new Uint8Array(await uniqueJpeg(seed)),
    headers: { 'content-type': 'image/jpeg', 'imagine-filename': `event-${seed}.jpg`, ...(collection ? { 'imagine-collection': collection } : {}) },
  });
  assert.equal(response.status, 201, await response.clone().text());
  return ((await response.json()) as { id: string }).id;
}

before(async () => {
  receiver = createServer((req, res) => {
    handleHook(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverOrigin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  await startLibrary();
  await services.auth.addUser({ name: 'admin', admin: true });
  admin = (await services.auth.createToken('admin')).token;
  await services.auth.addUser({ name: 'reader' });
});

after(async () => {
  await stopLibrary().catch(() => undefined);
  await endExiftool();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('subscriptions', () => {
  test('are verified by a signed challenge the URL echoes; the secret is shown once', async () => {
    const secret = generateSecret();
    const { url, hook: h } = hook('verified', { secret });
    const { response, body } = await subscribe(url, ['asset.created', 'asset.created'], { secret, description: 'CMS' });
    assert.equal(response.status, 201, JSON.stringify(body));
    assert.match(body.id, /^wh_[0-9a-z]{16}$/);
    assert.equal(body.secret, secret);
    assert.deepEqual(body.events, ['asset.created']);
    assert.equal(body.status, 'active');
    assert.equal(response.headers.get('location'), `${origin}/api/v1/webhooks/${body.id}`);
    assert.equal(h.challenges.length, 1);
    assert.equal(h.challenges[0]!.body.type, 'webhook.challenge');
    assert.ok((h.challenges[0]!.body.challenge ?? '').length >= 32);
    assert.equal(h.challenges[0]!.signatureValid, true, 'the challenge is signed with the subscription secret');

    const list = (await (await call('/api/v1/webhooks')).json()) as { items: Record<string, unknown>[] };
    const listed = list.items.find((s) => s.id === body.id);
    assert.ok(listed);
    assert.equal(listed.secret, undefined, 'the secret is never listed');
    assert.equal(listed.url, url);
    const one = await call(`/api/v1/webhooks/${body.id}`);
    assert.equal(((await one.json()) as Record<string, unknown>).secret, undefined);

    const generated = await subscribe(hook('generated').url, ['asset.deleted']);
    assert.equal(generated.response.status, 201);
    assert.match(generated.body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);

    assert.equal((await call(`/api/v1/webhooks/${body.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await call(`/api/v1/webhooks/${body.id}`)).status, 404);
    const again = await call(`/api/v1/webhooks/${body.id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(((await again.json()) as { code: string }).code, 'ERR_WEBHOOK_NOT_FOUND');
  });

  test('are refused, with nothing stored, when the URL does not echo the challenge', async () => {
    const before = ((await (await call('/api/v1/webhooks')).json()) as { items: unknown[] }).items.length;
    for (const [name, challenge] of [['wrong-echo', 'wrong'], ['not-found', 'status-404']] as const) {
      const { body, response } = await subscribe(hook(name, { challenge }).url);
      assert.equal(response.status, 422, JSON.stringify(body));
      assert.equal(body.code, 'ERR_WEBHOOK_VERIFICATION_FAILED');
    }
    // Nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const dead = await subscribe(`http://127.0.0.1:${deadPort}/hook`);
    assert.equal(dead.response.status, 422);
    assert.match(dead.body.detail, /ERR_UPSTREAM_UNREACHABLE/);
    const after = ((await (await call('/api/v1/webhooks')).json()) as { items: unknown[] }).items.length;
    assert.equal(after, before);
    const logged = logLines.filter((l) => l.msg === 'webhook subscription refused');
    assert.ok(logged.length >= 3, 'each refusal is logged');
    assert.ok(logged.every((l) => l.code === 'ERR_WEBHOOK_VERIFICATION_FAILED'));
  });

  test('hostile input: bad URLs, bad events, no token, a non-administrator', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/', 'http://user:pw@127.0.0.1/', 'not a url']) {
      const { response, body } = await subscribe(url);
      assert.equal(response.status, 400, url);
      assert.equal(body.code, 'ERR_VALIDATION');
    }
    assert.equal((await subscribe(hook('x').url, ['asset.exploded'])).response.status, 400);
    assert.equal((await subscribe(hook('x').url, [])).response.status, 400);
    assert.equal((await subscribe(hook('x').url, ALL_EVENTS, { secret: 'whsec_short' })).response.status, 400);
    const anonymous = await call('/api/v1/webhooks', { token: null });
    assert.equal(anonymous.status, 401);
    const reader = (await services.auth.createToken('reader')).token;
    const forbidden = await call('/api/v1/webhooks', { method: 'POST', token: reader, body: JSON.stringify({ url: hook('r').url, events: ALL_EVENTS }) });
    assert.equal(forbidden.status, 403);
    assert.equal(hooks.get('r')!.challenges.length, 0, 'no challenge is sent for a refused caller');
  });

  test('a server with default settings refuses private and loopback URLs', async () => {
    const strict = await startTestLibrary({ name: 'events-ssrf', flags: { role: 'library' } });
    try {
      const { url, hook: h } = hook('private');
      for (const target of [url, url.replace('127.0.0.1', 'localhost'), 'http://169.254.169.254/latest/meta-data', 'http://[::1]:9/x', 'http://10.0.0.1/x']) {
        const response = await fetch(`${strict.origin}/api/v1/webhooks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${strict.admin}`, 'content-type': 'application/json' },
          body: JSON.stringify({ url: target, events: ALL_EVENTS }),
        });
        const body = (await response.json()) as { code: string };
        assert.equal(response.status, 400, target);
        assert.equal(body.code, 'ERR_ADDRESS_FORBIDDEN', target);
      }
      assert.equal(h.challenges.length, 0);
      const listed = await fetch(`${strict.origin}/api/v1/webhooks`, { headers: { authorization: `Bearer ${strict.admin}` } });
      assert.deepEqual(((await listed.json()) as { items: unknown[] }).items, []);
    } finally {
      await strict.close();
    }
  });
});

describe('deliveries', () => {
  test('the six events, thin (imagine:// URIs), signed and verifiable', async () => {
    const { id, hook: h } = await activate('all');
    const collection = (await (await call('/api/v1/collections', { method: 'POST', body: JSON.stringify({ name: 'Press', public: true }) })).json()) as { id: string };
    const assetId = await addAsset(1, collection.id);
    const current = (await (await call(`/api/v1/assets/${assetId}`)).json()) as { versions: { id: string }[] };
    const edited = await call(`/api/v1/assets/${assetId}/metadata`, {
      method: 'PATCH',
      body: JSON.stringify({ metadata: { copyrightNotice: '© Events Test 2025' } }),
      headers: { 'if-match': `"${current.versions.at(-1)!.id}"` },
    });
    assert.equal(edited.status, 201, await edited.clone().text());
    assert.equal((await call(`/api/v1/collections/${collection.id}/items/${assetId}`, { method: 'DELETE' })).status, 204);
    assert.equal((await call(`/api/v1/assets/${assetId}`, { method: 'DELETE' })).status, 204);

    await waitFor('six event types', () => new Set(h.processed.map((p) => p.message.type)).size === 6);
    assert.equal(h.refused, 0, 'every delivery verified');
    const byType = new Map(h.processed.map((p) => [p.message.type, p]));
    for (const type of ALL_EVENTS) {
      const p = byType.get(type);
      assert.ok(p, type);
      assert.match(p.id, new RegExp(`^msg_${id}_\\d+$`));
      const data = p.message.data as Record<string, unknown>;
      assert.equal(data.type, type);
      assert.match(String(data.subject), /^imagine:\/\/127\.0\.0\.1(:\d+)?\/(images|collections)\//);
      assert.ok(Date.parse(String(p.message.timestamp)));
      // Thin: what changed and where, never the asset itself.
      for (const key of Object.keys(data)) assert.ok(['seq', 'id', 'type', 'time', 'subject', 'version', 'items'].includes(key), key);
    }
    const added = byType.get('collection.items_added')!.message.data as { subject: string; items: string[] };
    assert.match(added.subject, /\/collections\//);
    assert.deepEqual(added.items.map((u) => u.split('/').pop()), [assetId]);
    assert.match(added.items[0]!, /^imagine:\/\//);
    assert.match(String((byType.get('asset.created')!.message.data as { subject: string }).subject), new RegExp(`/images/${assetId}$`));

    // The receiver has the messages; the server records each answer just after.
    const recorded = await waitFor('every delivery recorded', async () => {
      const items = await deliveries(id);
      return items.length >= 6 && items.every((d) => d.status !== 'pending') && items;
    });
    for (const d of recorded) {
      assert.equal(d.status, 'delivered');
      assert.equal(d.attemptCount, 1);
      assert.equal(d.attempts[0].status, 200);
      assert.equal(d.body, undefined, 'bodies are not listed');
    }
  });

  test('only the subscribed types, and only changes after the subscription', async () => {
    const { id, hook: h } = await activate('only-deleted', {}, ['asset.deleted']);
    const assetId = await addAsset(2);
    assert.equal((await call(`/api/v1/assets/${assetId}`, { method: 'DELETE' })).status, 204);
    await waitFor('the deletion', () => h.processed.length === 1);
    await app.events!.dispatcher.idle();
    assert.deepEqual(h.processed.map((p) => p.message.type), ['asset.deleted']);
    assert.equal((await deliveries(id)).length, 1);
  });

  test('retried with backoff after failures; the receiver processes each webhook-id once', async () => {
    // The receiver processes the message, then answers 500 twice (as if it crashed after doing the work).
    const { id, hook: h } = await activate('flaky', { answer: (attempt) => (attempt <= 2 ? 500 : 200) }, ['asset.created']);
    await addAsset(3);
    const [delivery] = await waitFor('a delivered delivery', async () => {
      const items = await deliveries(id);
      return items.length === 1 && items[0].status === 'delivered' && items;
    });
    assert.deepEqual(delivery.attempts.map((a: { status: number }) => a.status), [500, 500, 200]);
    assert.equal(h.processed.length, 1, 'processed once');
    assert.equal(h.duplicates.length, 2, 'the retries were recognised by their webhook-id');
    assert.equal(new Set(h.attempts.map((a) => a.id)).size, 1, 'the same webhook-id on every attempt');
    const gaps = h.attempts.slice(1).map((a, i) => a.at - h.attempts[i]!.at);
    // Base 60 ms with equal jitter: the first retry waits 30-60 ms, the second 60-120 ms.
    assert.ok(gaps[0]! >= 25, `first gap ${gaps[0]}`);
    assert.ok(gaps[1]! >= 55, `second gap ${gaps[1]}`);
  });

  test('given up after the configured attempts, then marked failed', async () => {
    const { id, hook: h } = await activate('down', { answer: () => 503 }, ['asset.created']);
    await addAsset(4);
    const [delivery] = await waitFor('a failed delivery', async () => {
      const items = await deliveries(id);
      return items.length === 1 && items[0].status === 'failed' && items;
    });
    assert.equal(delivery.attemptCount, 4);
    assert.deepEqual(delivery.attempts.map((a: { status: number }) => a.status), [503, 503, 503, 503]);
    assert.equal(delivery.nextAttempt, undefined);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(h.attempts.length, 4, 'no attempt after giving up');
  });

  test('410 Gone ends the subscription', async () => {
    const { id, hook: h } = await activate('gone', { answer: () => 410 }, ['asset.created']);
    await addAsset(5);
    const sub = await waitFor('the subscription disabled', async () => {
      const body = (await (await call(`/api/v1/webhooks/${id}`)).json()) as { status: string; disabledReason?: string };
      return body.status === 'disabled' && body;
    });
    assert.match(String(sub.disabledReason), /410/);
    const [first] = await deliveries(id);
    assert.equal(first.status, 'cancelled');
    assert.deepEqual(first.attempts.map((a: { status: number }) => a.status), [410]);
    await addAsset(6);
    await app.events!.dispatcher.idle();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(h.attempts.length, 1, 'nothing more is sent');
    assert.equal((await deliveries(id)).length, 1, 'nothing more is queued');
  });

  test('a receiver refuses a bad signature and a stale timestamp, and stores nothing', async () => {
    const { hook: h } = await activate('guarded', {}, ['asset.deleted']);
    const body = JSON.stringify({ type: 'asset.deleted', timestamp: new Date().toISOString(), data: { subject: 'imagine://evil/images/x' } });
    const now = Math.floor(Date.now() / 1000);
    const forged = { 'webhook-id': 'msg_forged', 'webhook-timestamp': String(now), 'webhook-signature': `v1,${signatureOf('msg_forged', now, body, generateSecret())}` };
    const stale = signWebhook({ id: 'msg_stale', timestamp: now - 3600, body, secret: h.secret! });
    for (const headers of [forged, stale]) {
      const response = await fetch(`${receiverOrigin}/hooks/guarded`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
      assert.equal(response.status, 401);
      assert.equal(((await response.json()) as { code: string }).code, 'ERR_WEBHOOK_SIGNATURE_INVALID');
    }
    assert.equal(h.refused, 2);
    assert.deepEqual(h.processed, []);
  });
});

describe('the outbox', () => {
  test('survives a restart: a pending delivery is sent again, and a change made while down is delivered', async () => {
    let up = false;
    const { id, hook: h } = await activate('restart', { answer: () => (up ? 200 : 503) }, ['asset.created', 'asset.deleted']);
    const assetId = await addAsset(7);
    await waitFor('a first failed attempt', () => h.attempts.length >= 1);
    await stopLibrary();

    const onDisk = JSON.parse(readFileSync(join(dataDir, 'events', 'outbox.json'), 'utf8')) as { deliveries: { subscriptionId: string; status: string; id: string }[] };
    const pending = onDisk.deliveries.filter((d) => d.subscriptionId === id && d.status === 'pending');
    assert.equal(pending.length, 1, 'the delivery is pending on disk');

    // While the server is down, the library changes (as `imagine` would with the lock).
    const offline = await openLibraryServices({ dataDir, command: 'offline edit', maxUploadBytes: 1e9, signedUrlTtlSeconds: 300, clockSkewSeconds: 60 });
    await offline.library.deleteAsset(assetId);
    await offline.close();

    up = true;
    const attemptsBefore = h.attempts.length;
    await startLibrary();
    await waitFor('both events after the restart', () => h.processed.length === 2);
    const types = h.processed.map((p) => p.message.type).sort();
    assert.deepEqual(types, ['asset.created', 'asset.deleted']);
    assert.equal(h.processed.find((p) => p.message.type === 'asset.created')!.id, pending[0]!.id, 'same webhook-id as before the restart');
    assert.ok(h.attempts.length > attemptsBefore);
    const items = await waitFor('both recorded as delivered', async () => {
      const all = await deliveries(id);
      return all.every((d) => d.status !== 'pending') && all;
    });
    assert.deepEqual(items.map((d) => d.status), ['delivered', 'delivered']);
  });
});
