/**
 * Webmention end to end on loopback: library servers (fastify on 127.0.0.1) and a plain source
 * site (node:http). A webmention is accepted (202), verified in the background and shown in the
 * asset's IIIF manifest; refused ones (bad target, no link, private address, too large) store
 * nothing; a server publishing a supplement discovers the other's endpoint and notifies it,
 * and withdrawing it removes it there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildApp } from '../companion/app.ts';
import { loadConfig } from '../companion/config.ts';
import { libraryServicesOptions, openLibraryServices } from '../companion/library/services.ts';
import { startTestLibrary, type TestLibrary } from './helpers/test-library.ts';
import { uniqueJpeg } from './helpers/integration.ts';

let a: TestLibrary; // publishes supplements
let b: TestLibrary; // receives webmentions
let site: Server;
let siteOrigin = '';
let publicAsset = '';
let privateAsset = '';
let aAsset = '';
const pages = new Map<string, { status?: number; type: string; body: string | (() => string) }>();

const manifestOf = (lib: TestLibrary, id: string) => `${lib.origin}/iiif/manifests/${id}`;

async function call(lib: TestLibrary, path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? lib.admin : init.token;
  if (token) headers.set('authorization', `Bearer ${token}`);
  if (typeof init.body === 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
  return fetch(`${lib.origin}${path}`, { ...init, headers });
}

async function addAsset(lib: TestLibrary, seed: number, collection: string): Promise<string> {
  const response = await call(lib, '/api/v1/assets', {
    method: 'POST',
    body: new Uint8Array(await uniqueJpeg(seed)),
    headers: { 'content-type': 'image/jpeg', 'imagine-filename': `wm-${seed}.jpg`, 'imagine-collection': collection },
  });
  assert.equal(response.status, 201, await response.clone().text());
  return ((await response.json()) as { id: string }).id;
}

async function collection(lib: TestLibrary, name: string, isPublic: boolean): Promise<string> {
  const response = await call(lib, '/api/v1/collections', { method: 'POST', body: JSON.stringify({ name, public: isPublic }) });
  assert.equal(response.status, 201);
  return ((await response.json()) as { id: string }).id;
}

function mention(lib: TestLibrary, fields: Record<string, string>, init: { token?: string } = {}): Promise<Response> {
  return fetch(`${lib.origin}/webmention`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Sends a webmention, expects 202, and waits for the verification to finish. */
async function verified(lib: TestLibrary, source: string, target: string): Promise<{ state: string; error?: { code: string; detail: string }; supplement?: string }> {
  const response = await mention(lib, { source, target });
  const accepted = (await response.json()) as { id: string; state: string };
  assert.equal(response.status, 202, JSON.stringify(accepted));
  assert.equal(response.headers.get('location'), `${lib.origin}/webmention/${accepted.id}`);
  return waitFor('the verification', async () => {
    const status = (await (await fetch(`${lib.origin}/webmention/${accepted.id}`)).json()) as { state: string };
    return !['queued', 'verifying'].includes(status.state) && status;
  });
}

async function manifest(lib: TestLibrary, id: string): Promise<{ headers: Headers; body: Record<string, any> }> {
  const response = await fetch(manifestOf(lib, id));
  assert.equal(response.status, 200);
  return { headers: response.headers, body: (await response.json()) as Record<string, any> };
}

/** A library with default settings (private addresses refused) whose warnings are kept. */
async function startStrictLibrary(): Promise<TestLibrary & { logLines: Record<string, unknown>[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'imagine-wm-strict-'));
  const config = loadConfig({ flags: { dataDir, port: 0, role: 'library' }, readFile: false });
  const services = await openLibraryServices(libraryServicesOptions(config, 'strict test'));
  const logLines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>));
      done();
    },
  });
  const app = await buildApp(config, { services, logger: { level: 'warn', stream } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  await services.auth.addUser({ name: 'admin', admin: true });
  const admin = (await services.auth.createToken('admin')).token;
  return {
    dataDir,
    config,
    services,
    app,
    origin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    admin,
    logLines,
    async close() {
      await app.close();
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

before(async () => {
  site = createServer((req, res) => {
    const page = pages.get(req.url ?? '');
    if (!page) return void res.writeHead(404).end();
    const body = typeof page.body === 'function' ? page.body() : page.body;
    res.writeHead(page.status ?? 200, { 'content-type': page.type }).end(body);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const flags = { role: 'library' as const, allowPrivateWebmention: true, webmentionTimeoutMs: 2000, webmentionMaxBytes: 64 * 1024 };
  [a, b] = await Promise.all([startTestLibrary({ name: 'wm-a', flags }), startTestLibrary({ name: 'wm-b', flags })]);
  const open = await collection(b, 'Open', true);
  const closed = await collection(b, 'Closed', false);
  publicAsset = await addAsset(b, 11, open);
  privateAsset = await addAsset(b, 12, closed);
  aAsset = await addAsset(a, 13, await collection(a, 'Notes', true));
});

after(async () => {
  await Promise.all([a?.close(), b?.close()]);
  site.closeAllConnections();
  await new Promise((resolve) => site.close(resolve));
});

describe('discovery', () => {
  test('the discovery document and asset manifests advertise the endpoint', async () => {
    const discovery = (await (await fetch(`${b.origin}/.well-known/imagine`)).json()) as { endpoints: Record<string, string> };
    assert.equal(discovery.endpoints.webmention, `${b.origin}/webmention`);
    const { headers } = await manifest(b, publicAsset);
    assert.equal(headers.get('link'), `<${b.origin}/webmention>; rel="webmention"`);
  });
});

describe('receiving', () => {
  test('an HTML page linking the manifest: 202, verified, shown in seeAlso', async () => {
    const target = manifestOf(b, publicAsset);
    pages.set('/blog/post.html', { type: 'text/html; charset=utf-8', body: `<html><head><title>Field &amp; notes</title></head><body><a href="${target}">the print</a></body></html>` });
    const status = await verified(b, `${siteOrigin}/blog/post.html`, target);
    assert.equal(status.state, 'accepted', JSON.stringify(status));
    const { body } = await manifest(b, publicAsset);
    const entry = body.seeAlso.find((s: { id: string }) => s.id === `${siteOrigin}/blog/post.html`);
    assert.deepEqual(entry, { id: `${siteOrigin}/blog/post.html`, type: 'Text', format: 'text/html', label: { none: ['Field & notes'] } });
    assert.equal(body.seeAlso[0].type, 'Dataset', 'the asset record stays first');
    // A pinned version's manifest shows it too.
    const pinned = (await (await fetch(`${b.origin}/iiif/manifests/${publicAsset}%40v1`)).json()) as { seeAlso: { id: string }[] };
    assert.ok(pinned.seeAlso.some((s) => s.id === `${siteOrigin}/blog/post.html`));
    // Stored durably.
    const stored = JSON.parse(readFileSync(join(b.dataDir, 'webmention', 'webmention.json'), 'utf8')) as { supplements: { source: string }[] };
    assert.ok(stored.supplements.some((s) => s.source === `${siteOrigin}/blog/post.html`));
    // Sent again: updated, not duplicated.
    const again = await verified(b, `${siteOrigin}/blog/post.html`, target);
    assert.equal(again.state, 'updated');
    const after = await manifest(b, publicAsset);
    assert.equal(after.body.seeAlso.filter((s: { id: string }) => s.id === `${siteOrigin}/blog/post.html`).length, 1);
  });

  test('a IIIF AnnotationPage targeting a canvas: shown in the manifest annotations', async () => {
    const canvas = `${manifestOf(b, publicAsset)}/canvas/v1`;
    pages.set('/annotations/1.json', {
      type: 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"',
      body: JSON.stringify({
        '@context': 'http://iiif.io/api/presentation/3/context.json',
        id: `${siteOrigin}/annotations/1.json`,
        type: 'AnnotationPage',
        label: { en: ['Transcription <b>draft</b>'] },
        items: [{ id: `${siteOrigin}/annotations/1.json/a1`, type: 'Annotation', motivation: 'commenting', body: { type: 'TextualBody', value: 'a gull' }, target: canvas }],
      }),
    });
    const status = await verified(b, `${siteOrigin}/annotations/1.json`, canvas);
    assert.equal(status.state, 'accepted', JSON.stringify(status));
    const { body } = await manifest(b, publicAsset);
    assert.deepEqual(body.annotations, [{ id: `${siteOrigin}/annotations/1.json`, type: 'AnnotationPage', label: { none: ['Transcription  b draft /b'.replace(/\s+/g, ' ')] } }]);
  });

  test('a source that now answers 410 removes its supplement', async () => {
    const target = `${b.origin}/api/v1/assets/${publicAsset}`;
    let gone = false;
    pages.set('/temporary.html', { type: 'text/html', body: () => `<a href="${target}">x</a>` });
    assert.equal((await verified(b, `${siteOrigin}/temporary.html`, target)).state, 'accepted');
    assert.ok((await manifest(b, publicAsset)).body.seeAlso.some((s: { id: string }) => s.id === `${siteOrigin}/temporary.html`));
    gone = true;
    pages.set('/temporary.html', { status: gone ? 410 : 200, type: 'text/html', body: 'gone' });
    assert.equal((await verified(b, `${siteOrigin}/temporary.html`, target)).state, 'removed');
    assert.ok(!(await manifest(b, publicAsset)).body.seeAlso.some((s: { id: string }) => s.id === `${siteOrigin}/temporary.html`));
  });

  test('bad requests: 400 ERR_WEBMENTION_INVALID, nothing stored or fetched', async () => {
    const target = manifestOf(b, publicAsset);
    const source = `${siteOrigin}/blog/post.html`;
    const cases: Record<string, string>[] = [
      { source },
      { target },
      { source: 'ftp://example.org/x', target },
      { source: 'not a url', target },
      { source: target, target },
      { source, target: `https://elsewhere.example/iiif/manifests/${publicAsset}` },
      { source, target: manifestOf(b, 'nosuchasset') },
      { source, target: manifestOf(b, privateAsset) },
      { source, target: `${b.origin}/iiif/3/${publicAsset}/info.json` },
      { source: `${source}?${'x'.repeat(2100)}`, target },
    ];
    for (const fields of cases) {
      const response = await mention(b, fields);
      const body = (await response.json()) as { code: string };
      assert.equal(response.status, 400, JSON.stringify(fields).slice(0, 200));
      assert.equal(body.code, 'ERR_WEBMENTION_INVALID', JSON.stringify(fields).slice(0, 200));
    }
    // A private asset is a valid target for someone who may read it.
    pages.set('/private-note.html', { type: 'text/html', body: `<a href="${manifestOf(b, privateAsset)}">x</a>` });
    const allowed = await mention(b, { source: `${siteOrigin}/private-note.html`, target: manifestOf(b, privateAsset) }, { token: b.admin });
    assert.equal(allowed.status, 202);
    // Repeated fields and other media types.
    const twice = await fetch(`${b.origin}/webmention`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `source=${encodeURIComponent(source)}&source=${encodeURIComponent(`${siteOrigin}/x`)}&target=${encodeURIComponent(target)}`,
    });
    assert.equal(twice.status, 400);
    const json = await fetch(`${b.origin}/webmention`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source, target }) });
    assert.equal(json.status, 415);
  });

  test('refused after verification: no link, not HTML or JSON, too large, unreachable', async () => {
    const target = manifestOf(b, publicAsset);
    pages.set('/nolink.html', { type: 'text/html', body: `<p>I talk about ${target} without linking it</p><a href="${target}/other">x</a>` });
    pages.set('/plain.txt', { type: 'text/plain', body: target });
    pages.set('/huge.html', { type: 'text/html', body: `<a href="${target}">x</a>${' '.repeat(100 * 1024)}` });
    pages.set('/broken', { status: 500, type: 'text/html', body: `<a href="${target}">x</a>` });
    const before = (await manifest(b, publicAsset)).body;
    const expected: Record<string, [string, RegExp]> = {
      '/nolink.html': ['ERR_WEBMENTION_INVALID', /does not link/],
      '/plain.txt': ['ERR_WEBMENTION_INVALID', /text\/plain/],
      '/huge.html': ['ERR_UPSTREAM_INVALID', /larger than/],
      '/broken': ['ERR_UPSTREAM_INVALID', /500/],
      '/missing': ['ERR_WEBMENTION_INVALID', /404/],
    };
    for (const [path, [code, detail]] of Object.entries(expected)) {
      const status = await verified(b, `${siteOrigin}${path}`, target);
      assert.equal(status.state, 'refused', path);
      assert.equal(status.error?.code, code, path);
      assert.match(String(status.error?.detail), detail, path);
    }
    assert.deepEqual((await manifest(b, publicAsset)).body, before, 'the manifest is unchanged');
  });

  test('a server with default settings refuses sources at private addresses', async () => {
    const strict = await startStrictLibrary();
    try {
      const id = await addAsset(strict, 21, await collection(strict, 'Open', true));
      const target = manifestOf(strict, id);
      for (const source of [`${siteOrigin}/blog/post.html`, `http://localhost:${new URL(siteOrigin).port}/`, 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/', 'http://10.1.2.3/', 'http://[::ffff:192.168.0.1]/']) {
        const response = await mention(strict, { source, target });
        const body = (await response.json()) as { code: string };
        assert.equal(response.status, 400, source);
        assert.equal(body.code, 'ERR_ADDRESS_FORBIDDEN', source);
      }
      const stored = strict.app.webmention!.store.data.supplements;
      assert.deepEqual(stored, []);
      const logged = strict.logLines.filter((l) => l.msg === 'webmention refused');
      assert.equal(logged.length, 6, 'each refusal is logged');
      assert.ok(logged.every((l) => l.code === 'ERR_ADDRESS_FORBIDDEN'));
      // Publishing towards a private address is refused the same way, when the send happens.
      const published = await call(strict, '/api/v1/supplements', { method: 'POST', body: JSON.stringify({ asset: id, target: manifestOf(b, publicAsset) }) });
      assert.equal(published.status, 202);
      const record = (await published.json()) as { id: string };
      const sent = await waitFor('the send', async () => {
        const r = (await (await call(strict, `/api/v1/supplements/${record.id}`)).json()) as { send: { state: string; error?: string } };
        return r.send.state !== 'sending' && r;
      });
      assert.equal(sent.send.state, 'failed');
      assert.match(String(sent.send.error), /ERR_ADDRESS_FORBIDDEN/);
    } finally {
      await strict.close();
    }
  });
});

describe('sending', () => {
  test('publishing a supplement discovers the target endpoint and notifies it; withdrawing removes it', async () => {
    const target = manifestOf(b, publicAsset);
    const response = await call(a, '/api/v1/supplements', { method: 'POST', body: JSON.stringify({ asset: aAsset, target, label: 'Same harbour, 1932' }) });
    const published = (await response.json()) as { id: string; url: string; send: { state: string } };
    assert.equal(response.status, 202, JSON.stringify(published));
    assert.equal(published.url, `${a.origin}/iiif/supplements/${published.id}`);

    const document = (await (await fetch(published.url)).json()) as Record<string, any>;
    assert.equal(document.type, 'AnnotationPage');
    assert.equal(document.items[0].motivation, 'linking');
    assert.equal(document.items[0].target, target);
    assert.equal(document.items[0].body.id, manifestOf(a, aAsset));

    const sent = await waitFor('the webmention sent', async () => {
      const r = (await (await call(a, `/api/v1/supplements/${published.id}`)).json()) as { send: { state: string; endpoint?: string; status?: number } };
      return r.send.state !== 'sending' && r;
    });
    assert.deepEqual({ ...sent.send, at: undefined }, { state: 'sent', endpoint: `${b.origin}/webmention`, status: 202, at: undefined });
    const shown = await waitFor('the supplement on B', async () => {
      const { body } = await manifest(b, publicAsset);
      return (body.annotations ?? []).find((p: { id: string }) => p.id === published.url);
    });
    assert.deepEqual(shown, { id: published.url, type: 'AnnotationPage', label: { none: ['Same harbour, 1932'] } });

    assert.equal((await call(a, `/api/v1/supplements/${published.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(published.url)).status, 410);
    await waitFor('the supplement removed on B', async () => {
      const { body } = await manifest(b, publicAsset);
      return !(body.annotations ?? []).some((p: { id: string }) => p.id === published.url);
    });
  });

  test('a target without an endpoint is recorded as such; bad requests are refused', async () => {
    pages.set('/no-endpoint.html', { type: 'text/html', body: '<p>no webmention here</p>' });
    const response = await call(a, '/api/v1/supplements', { method: 'POST', body: JSON.stringify({ asset: aAsset, target: `${siteOrigin}/no-endpoint.html` }) });
    assert.equal(response.status, 202);
    const { id } = (await response.json()) as { id: string };
    const done = await waitFor('the send', async () => {
      const r = (await (await call(a, `/api/v1/supplements/${id}`)).json()) as { send: { state: string } };
      return r.send.state !== 'sending' && r;
    });
    assert.equal(done.send.state, 'no-endpoint');

    const anonymous = await call(a, '/api/v1/supplements', { method: 'POST', token: null, body: JSON.stringify({ asset: aAsset, target: `${siteOrigin}/x` }) });
    assert.equal(anonymous.status, 401);
    const ownServer = await call(a, '/api/v1/supplements', { method: 'POST', body: JSON.stringify({ asset: aAsset, target: manifestOf(a, aAsset) }) });
    assert.equal(ownServer.status, 400);
    const badUrl = await call(a, '/api/v1/supplements', { method: 'POST', body: JSON.stringify({ asset: aAsset, target: 'javascript:alert(1)' }) });
    assert.equal(badUrl.status, 400);
    const unknown = await call(a, '/api/v1/supplements', { method: 'POST', body: JSON.stringify({ asset: 'nosuch', target: `${siteOrigin}/x` }) });
    assert.equal(unknown.status, 404);
    assert.equal((await fetch(`${a.origin}/iiif/supplements/nosuch`)).status, 404);
  });
});
