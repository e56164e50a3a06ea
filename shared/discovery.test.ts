import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isProtocolError, type ErrorCode } from './errors.ts';
import {
  DiscoveryCache,
  WELL_KNOWN_PATH,
  createDiscoveryResolver,
  fetchDiscovery,
  resolveDiscovery,
  resolveUri,
} from './discovery.ts';

type TestContext = { after(fn: () => unknown): void };
type Handler = (req: IncomingMessage, res: ServerResponse, info: { origin: string; count: number }) => void;

/** A real HTTP server on 127.0.0.1, closed (sockets destroyed) after the test. */
async function serve(t: TestContext, handler: Handler) {
  let count = 0;
  let origin = '';
  const server = createServer((req, res) => {
    count += 1;
    handler(req, res, { origin, count });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  let closed = false;
  const close = () => {
    if (closed) return Promise.resolve();
    closed = true;
    return new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };
  t.after(close);
  return {
    origin,
    port,
    close,
    get requests() {
      return count;
    },
  };
}

function documentFor(origin: string, name = 'first') {
  return {
    protocol: 'imagine',
    version: '0.1',
    server: { origin, domain: origin.replace(/^https?:\/\//, ''), name },
    endpoints: { api: `${origin}/api/v0`, iiif: `${origin}/iiif` },
    links: {
      capabilities: `${origin}${WELL_KNOWN_PATH}/capabilities`,
      metadataProfile: `${origin}${WELL_KNOWN_PATH}/metadata-profile`,
    },
  };
}

function sendJson(res: ServerResponse, body: unknown, status = 200) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Serves a valid document under the well-known path, 404 elsewhere. */
const validDocument: Handler = (req, res, { origin }) => {
  if (req.url === WELL_KNOWN_PATH) sendJson(res, documentFor(origin));
  else sendJson(res, { code: 'ERR_ROUTE_NOT_FOUND' }, 404);
};

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isProtocolError(error), `expected a ProtocolError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
}

async function waitFor(condition: () => boolean, ms = 2000) {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const HOUR = 60 * 60 * 1000;

// Background refreshes and cancelled bodies must never surface as unhandled rejections.
const unhandled: unknown[] = [];
process.on('unhandledRejection', (error) => unhandled.push(error));
after(() => assert.deepEqual(unhandled, []));

describe('fetchDiscovery', () => {
  test('a valid document resolves', async (t) => {
    let accept: string | undefined;
    const server = await serve(t, (req, res, info) => {
      accept = req.headers.accept;
      validDocument(req, res, info);
    });
    const doc = await fetchDiscovery(server.origin, { fetch });
    assert.equal(doc.protocol, 'imagine');
    assert.equal(doc.endpoints.api, `${server.origin}/api/v0`);
    assert.equal(accept, 'application/json');
  });

  test('a document that does not match the schema: ERR_DISCOVERY_INVALID listing the issues', async (t) => {
    const server = await serve(t, (_req, res, { origin }) =>
      sendJson(res, { ...documentFor(origin), protocol: 'other', endpoints: {} }),
    );
    await rejectsWith(fetchDiscovery(server.origin, { fetch }), 'ERR_DISCOVERY_INVALID', /\/protocol/);
  });

  test('a Content-Length over the cap is rejected before the body is read', async (t) => {
    const server = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 10_000_000 });
      res.write('{"protocol":'); // then stall: only the header can have triggered the error
    });
    const started = Date.now();
    await rejectsWith(
      fetchDiscovery(server.origin, { fetch, maxBytes: 1024, timeoutMs: 2000 }),
      'ERR_DISCOVERY_TOO_LARGE',
    );
    assert.ok(Date.now() - started < 1000);
  });

  test('an endless chunked body is cut off as soon as it passes the cap', async (t) => {
    let closed = false;
    const server = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // no length: chunked
      const timer = setInterval(() => res.write(' '.repeat(512)), 5);
      res.on('close', () => {
        clearInterval(timer);
        closed = true;
      });
    });
    const started = Date.now();
    await rejectsWith(
      fetchDiscovery(server.origin, { fetch, maxBytes: 4096, timeoutMs: 5000 }),
      'ERR_DISCOVERY_TOO_LARGE',
    );
    assert.ok(Date.now() - started < 2000);
    await waitFor(() => closed); // the client hung up, it did not keep reading
  });

  test('a server that never sends headers: ERR_DISCOVERY_TIMEOUT within the configured time', async (t) => {
    const server = await serve(t, () => {});
    const started = Date.now();
    await rejectsWith(fetchDiscovery(server.origin, { fetch, timeoutMs: 200 }), 'ERR_DISCOVERY_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 1000, `took ${elapsed} ms`);
  });

  test('a body that stalls after the headers: ERR_DISCOVERY_TIMEOUT within the configured time', async (t) => {
    let closed = false;
    const server = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"protocol":"imag');
      res.on('close', () => (closed = true));
    });
    const started = Date.now();
    await rejectsWith(fetchDiscovery(server.origin, { fetch, timeoutMs: 200 }), 'ERR_DISCOVERY_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 1000, `took ${elapsed} ms`);
    await waitFor(() => closed); // the request was aborted, not left open
  });

  test('a document claiming another origin: ERR_DISCOVERY_ORIGIN_MISMATCH', async (t) => {
    const server = await serve(t, (_req, res) => sendJson(res, documentFor('https://other.example')));
    await rejectsWith(
      fetchDiscovery(server.origin, { fetch }),
      'ERR_DISCOVERY_ORIGIN_MISMATCH',
      /other\.example/,
    );
  });

  test('a body that is not JSON: ERR_DISCOVERY_NOT_JSON', async (t) => {
    const server = await serve(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>hello</html>');
    });
    await rejectsWith(fetchDiscovery(server.origin, { fetch }), 'ERR_DISCOVERY_NOT_JSON');
  });

  test('a 404: ERR_DISCOVERY_STATUS', async (t) => {
    const server = await serve(t, (_req, res) => sendJson(res, { code: 'ERR_ROUTE_NOT_FOUND' }, 404));
    await rejectsWith(fetchDiscovery(server.origin, { fetch }), 'ERR_DISCOVERY_STATUS', /404/);
  });

  test('a 302 is not followed: ERR_DISCOVERY_STATUS', async (t) => {
    const server = await serve(t, (req, res, info) => {
      if (req.url === WELL_KNOWN_PATH) {
        res.writeHead(302, { location: `${info.origin}/elsewhere` });
        res.end();
      } else {
        sendJson(res, documentFor(info.origin)); // valid, so following it would succeed
      }
    });
    await rejectsWith(fetchDiscovery(server.origin, { fetch }), 'ERR_DISCOVERY_STATUS', /302/);
    assert.equal(server.requests, 1);
  });

  test('a closed server: ERR_DISCOVERY_UNREACHABLE with the cause kept', async (t) => {
    const server = await serve(t, validDocument);
    await server.close();
    await assert.rejects(fetchDiscovery(server.origin, { fetch }), (error: unknown) => {
      assert.ok(isProtocolError(error, 'ERR_DISCOVERY_UNREACHABLE'));
      assert.ok(error.cause !== undefined);
      return true;
    });
  });

  test('plain http to a host that is not loopback: ERR_ORIGIN_INVALID, nothing fetched', async () => {
    let called = false;
    const spy: typeof fetch = (...args) => {
      called = true;
      return fetch(...args);
    };
    await rejectsWith(fetchDiscovery('http://images.example', { fetch: spy }), 'ERR_ORIGIN_INVALID');
    assert.equal(called, false);
  });
});

describe('DiscoveryCache', () => {
  test('a second resolve is served from the cache', async (t) => {
    const server = await serve(t, validDocument);
    const resolver = createDiscoveryResolver({ fetch });
    const first = await resolver.resolve(server.origin);
    const second = await resolver.resolve(server.origin);
    assert.equal(server.requests, 1);
    assert.deepEqual(second, first);
    assert.equal(resolver.peek(server.origin)?.state, 'fresh');
  });

  test('a stale entry is served at once and refreshed in the background', async (t) => {
    const server = await serve(t, (_req, res, { origin, count }) => {
      if (count === 1) sendJson(res, documentFor(origin, 'first'));
      else setTimeout(() => sendJson(res, documentFor(origin, 'second')), 300);
    });
    let now = 0;
    const resolver = new DiscoveryCache({ fetch, now: () => now });
    await resolver.resolve(server.origin);

    now = 2 * HOUR;
    assert.equal(resolver.peek(server.origin)?.state, 'stale');
    const started = Date.now();
    const served = await resolver.resolve(server.origin);
    assert.ok(Date.now() - started < 200, 'the stale document is served without waiting');
    assert.equal(served.server.name, 'first');

    await waitFor(() => resolver.peek(server.origin)?.document.server.name === 'second');
    assert.equal(server.requests, 2);
    assert.equal(resolver.peek(server.origin)?.fetchedAt, 2 * HOUR);
    assert.equal(resolver.peek(server.origin)?.state, 'fresh');
  });

  test('a failed background refresh is recorded, never thrown, and keeps the stale entry', async (t) => {
    const server = await serve(t, (req, res, info) => {
      if (info.count === 1) validDocument(req, res, info);
      else sendJson(res, { code: 'ERR_INTERNAL' }, 500);
    });
    let now = 0;
    const resolver = new DiscoveryCache({ fetch, now: () => now });
    const first = await resolver.resolve(server.origin);
    now = 2 * HOUR;
    assert.deepEqual(await resolver.resolve(server.origin), first);
    await waitFor(() => resolver.peek(server.origin)?.refreshError !== undefined);
    const peek = resolver.peek(server.origin);
    assert.ok(isProtocolError(peek?.refreshError, 'ERR_DISCOVERY_STATUS'));
    assert.equal(peek?.state, 'stale');
    assert.deepEqual(await resolver.resolve(server.origin), first);
  });

  test('an expired entry is fetched again before it is used', async (t) => {
    const server = await serve(t, (_req, res, { origin, count }) =>
      sendJson(res, documentFor(origin, count === 1 ? 'first' : 'second')),
    );
    let now = 0;
    const resolver = new DiscoveryCache({ fetch, now: () => now });
    await resolver.resolve(server.origin);
    now = 25 * HOUR;
    assert.equal(resolver.peek(server.origin)?.state, 'expired');
    const doc = await resolver.resolve(server.origin);
    assert.equal(doc.server.name, 'second');
    assert.equal(server.requests, 2);
  });

  test('concurrent resolves of one origin share one request', async (t) => {
    const server = await serve(t, (req, res, info) => {
      setTimeout(() => validDocument(req, res, info), 100);
    });
    const resolver = new DiscoveryCache({ fetch });
    const [a, b] = await Promise.all([resolver.resolve(server.origin), resolver.resolve(server.origin)]);
    assert.equal(server.requests, 1);
    assert.equal(a, b);
  });

  test('a failed fetch is not cached', async (t) => {
    const server = await serve(t, (req, res, info) => {
      if (info.count === 1) sendJson(res, { code: 'ERR_INTERNAL' }, 500);
      else validDocument(req, res, info);
    });
    const resolver = new DiscoveryCache({ fetch });
    await rejectsWith(resolver.resolve(server.origin), 'ERR_DISCOVERY_STATUS');
    assert.equal(resolver.peek(server.origin), undefined);
    const doc = await resolver.resolve(server.origin);
    assert.equal(doc.protocol, 'imagine');
    assert.equal(server.requests, 2);
  });

  test('invalidate forgets an origin', async (t) => {
    const server = await serve(t, validDocument);
    const resolver = new DiscoveryCache({ fetch });
    await resolver.resolve(server.origin);
    resolver.invalidate(server.origin);
    assert.equal(resolver.peek(server.origin), undefined);
    await resolver.resolve(server.origin);
    assert.equal(server.requests, 2);
  });

  test('the store is injectable', async (t) => {
    const server = await serve(t, validDocument);
    const store = new Map();
    const resolver = new DiscoveryCache({ fetch, store });
    await resolver.resolve(server.origin);
    assert.deepEqual([...store.keys()], [server.origin]);
    // A second resolver reading the same store does not fetch.
    await new DiscoveryCache({ fetch, store }).resolve(server.origin);
    assert.equal(server.requests, 1);
  });

  test('resolveDiscovery uses the resolver it is given', async (t) => {
    const server = await serve(t, validDocument);
    const resolver = new DiscoveryCache({ fetch });
    await resolveDiscovery(server.origin, resolver);
    assert.equal(resolver.peek(server.origin)?.state, 'fresh');
  });

  test('originOf: https, http for loopback and listed development peers', () => {
    const resolver = new DiscoveryCache({ fetch, insecureAuthorities: ['devpeer.test:8080'] });
    assert.equal(resolver.originOf('images.example'), 'https://images.example');
    assert.equal(resolver.originOf('images.example:8443'), 'https://images.example:8443');
    assert.equal(resolver.originOf('localhost:3000'), 'http://localhost:3000');
    assert.equal(resolver.originOf('127.0.0.1:3000'), 'http://127.0.0.1:3000');
    assert.equal(resolver.originOf('[::1]:3000'), 'http://[::1]:3000');
    assert.equal(resolver.originOf('devpeer.test:8080'), 'http://devpeer.test:8080');
    assert.equal(resolver.originOf('devpeer.test:9090'), 'https://devpeer.test:9090');
  });
});

describe('resolveUri', () => {
  test('an images URI resolves to {api}/assets/{id}, the version returned apart', async (t) => {
    const server = await serve(t, validDocument);
    const resolver = new DiscoveryCache({ fetch });
    const resolved = await resolveUri(`imagine://127.0.0.1:${server.port}/images/a1b2@v2`, resolver);
    assert.equal(resolved.apiUrl, `${server.origin}/api/v0/assets/a1b2`);
    assert.equal(resolved.uri.type, 'images');
    assert.equal(resolved.uri.id, 'a1b2');
    assert.equal(resolved.uri.version, 'v2');
    assert.equal(resolved.discovery.protocol, 'imagine');
  });

  test('a collections URI resolves to {api}/collections/{id}', async (t) => {
    const server = await serve(t, validDocument);
    const resolver = new DiscoveryCache({ fetch });
    const resolved = await resolveUri(`imagine://127.0.0.1:${server.port}/collections/c9`, resolver);
    assert.equal(resolved.uri.type, 'collections');
    assert.equal(resolved.apiUrl, `${server.origin}/api/v0/collections/c9`);
  });

  test('an invalid URI: ERR_URI_INVALID, nothing fetched', async () => {
    let called = false;
    const resolver = new DiscoveryCache({
      fetch: (...args) => {
        called = true;
        return fetch(...args);
      },
    });
    await rejectsWith(resolveUri('imagine://images.example/nope/1', resolver), 'ERR_URI_INVALID');
    await rejectsWith(resolveUri('https://images.example/images/1', resolver), 'ERR_URI_INVALID');
    assert.equal(called, false);
  });
});
