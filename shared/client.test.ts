import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProtocolClient, contentDigest, unquoteEtag } from './client.ts';
import { createDiscoveryResolver, WELL_KNOWN_PATH } from './discovery.ts';
import { isProtocolError, type ErrorCode } from './errors.ts';

// ---------------------------------------------------------------------------------------------
// A minimal server speaking the protocol on a real socket.

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const CURRENT = 'v2';
const NOW = '2024-05-01T10:00:00.000Z';

function assetFor(origin: string, id: string, extra: Record<string, unknown> = {}) {
  const version = (n: number) => ({
    id: `v${n}`,
    number: n,
    created: NOW,
    sha256: 'a'.repeat(64),
    size: 1000 + n,
    mediaType: 'image/jpeg',
  });
  return {
    id,
    uri: `imagine://${new URL(origin).host}/images/${id}`,
    filename: `${id}.jpg`,
    mediaType: 'image/jpeg',
    created: NOW,
    updated: NOW,
    currentVersion: CURRENT,
    metadata: { title: `Picture ${id}`, keywords: ['harbour'] },
    versions: [version(1), version(2)],
    rights: { doNotDistribute: false, expired: false },
    collections: [],
    thumbnail: `${origin}/thumbs/${id}.jpg`,
    iiif: `${origin}/iiif/3/${id}`,
    ...extra,
  };
}

function collectionFor(origin: string, id: string, itemCount = 0) {
  return {
    id,
    uri: `imagine://${new URL(origin).host}/collections/${id}`,
    name: 'Harbour',
    public: true,
    created: NOW,
    itemCount,
  };
}

function discoveryFor(origin: string, api = `${origin}/api/v0`) {
  return {
    protocol: 'imagine',
    version: '0.1',
    server: { origin, domain: new URL(origin).host },
    endpoints: { api },
    links: {
      capabilities: `${origin}${WELL_KNOWN_PATH}/capabilities`,
      metadataProfile: `${origin}${WELL_KNOWN_PATH}/metadata-profile`,
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

function problem(res: ServerResponse, status: number, code: string, detail: string) {
  send(
    res,
    status,
    { type: `urn:imagine:error:${code}`, title: code, status, detail, code },
    { 'content-type': 'application/problem+json' },
  );
}

const IDS = ['a1', 'a2', 'a3', 'a4', 'a5'];

/** The protocol routes under /api/v0, plus misbehaving ones selected by the asset id. */
function route(res: ServerResponse, seen: Seen, origin: string) {
  const parts = seen.path.split('/').map(decodeURIComponent); // ['', ...]

  if (seen.path === WELL_KNOWN_PATH) return send(res, 200, discoveryFor(origin));
  if (seen.path === `${WELL_KNOWN_PATH}/capabilities`) {
    return send(res, 200, { protocol: 'imagine', version: '0.1', core: ['search'], extensions: [] });
  }
  if (seen.path === `${WELL_KNOWN_PATH}/metadata-profile`) {
    return send(res, 200, { profile: 'test 1', fields: [], custom: [] });
  }
  const checkIfMatch = (): boolean => {
    const ifMatch = seen.headers['if-match'];
    if (ifMatch === undefined) problem(res, 428, 'ERR_PRECONDITION_REQUIRED', 'If-Match is required');
    else if (ifMatch !== `"${CURRENT}"`) problem(res, 412, 'ERR_PRECONDITION_FAILED', `base ${ifMatch} is not ${CURRENT}`);
    else return true;
    return false;
  };

  const [, , , resource, rid, sub] = parts; // '', 'api', 'v0', resource, id, sub
  if (parts[1] !== 'api' || parts[2] !== 'v0') return problem(res, 404, 'ERR_ROUTE_NOT_FOUND', 'no route');

  if (resource === 'assets' && rid === undefined) {
    if (seen.method === 'GET') {
      const start = Number(seen.query.get('cursor') ?? 0);
      const limit = Number(seen.query.get('limit') ?? 2);
      const items = IDS.slice(start, start + limit).map((i) => assetFor(origin, i));
      const next = start + limit < IDS.length ? String(start + limit) : null;
      return send(res, 200, { items, next, total: IDS.length });
    }
    if (seen.method === 'POST') {
      const filename = decodeURIComponent(String(seen.headers['imagine-filename']));
      return send(res, 201, assetFor(origin, 'new1', { filename, mediaType: seen.headers['content-type'] }));
    }
  }
  if (resource === 'assets' && rid !== undefined && sub === undefined) {
    if (seen.method === 'DELETE') {
      res.writeHead(204).end();
      return;
    }
    switch (rid) {
      case 'missing':
        return problem(res, 404, 'ERR_ASSET_NOT_FOUND', 'no asset "missing"');
      case 'future-code':
        return problem(res, 409, 'ERR_FROM_THE_FUTURE', 'something new');
      case 'boom':
        res.writeHead(500, { 'content-type': 'text/plain' });
        return void res.end('Internal Server Error');
      case 'json-error':
        return send(res, 503, { statusCode: 503, error: 'Service Unavailable', message: 'later' });
      case 'garbage':
        return send(res, 200, { id: 'garbage', hello: 'world' }, { etag: '"v1"' });
      case 'not-json':
        res.writeHead(200, { 'content-type': 'text/html' });
        return void res.end('<html>hi</html>');
      case 'moved':
        res.writeHead(302, { location: `${origin}/api/v0/assets/a1` });
        return void res.end();
      case 'slow': {
        const timer = setTimeout(() => send(res, 200, assetFor(origin, 'slow')), 5000);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case 'slow-body':
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.write('{"id":"slow-b');
      default:
        return send(res, 200, assetFor(origin, rid), { etag: `"${CURRENT}"` });
    }
  }
  if (resource === 'assets' && sub === 'versions') {
    if (seen.method === 'GET') return send(res, 200, { items: assetFor(origin, rid!).versions });
    if (seen.method === 'POST' && checkIfMatch()) {
      return send(res, 201, assetFor(origin, rid!, { currentVersion: 'v3' }), { etag: '"v3"' });
    }
    return;
  }
  if (resource === 'assets' && sub === 'download') {
    const rendition = seen.query.get('rendition') ?? 'original';
    return send(res, 200, {
      url: `${origin}/files/${rid}?sig=abc`,
      expires: NOW,
      rendition,
      version: seen.query.get('version') ?? CURRENT,
      size: 1002,
      sha256: 'a'.repeat(64),
      mediaType: 'image/jpeg',
    });
  }
  if (resource === 'assets' && sub === 'metadata' && seen.method === 'PATCH') {
    if (!checkIfMatch()) return;
    const { metadata } = JSON.parse(seen.body.toString('utf8')) as { metadata: Record<string, unknown> };
    return send(res, 200, assetFor(origin, rid!, { currentVersion: 'v3', metadata }));
  }
  if (resource === 'changes') {
    const since = Number(seen.query.get('since') ?? 0);
    const event = {
      seq: since + 1,
      id: `e${since + 1}`,
      type: 'asset.updated',
      time: NOW,
      subject: `imagine://${new URL(origin).host}/images/a1`,
    };
    return send(res, 200, { events: [event], next: String(since + 1), hasMore: false });
  }
  if (resource === 'collections' && rid === undefined) {
    if (seen.method === 'GET') return send(res, 200, { items: [collectionFor(origin, 'c1', 3)] });
    const { name, public: isPublic } = JSON.parse(seen.body.toString('utf8')) as { name: string; public: boolean };
    return send(res, 201, { ...collectionFor(origin, 'c2'), name, public: isPublic });
  }
  if (resource === 'collections' && sub === 'items' && seen.method === 'POST') {
    const { assets } = JSON.parse(seen.body.toString('utf8')) as { assets: string[] };
    return send(res, 200, { added: assets.filter((a) => a !== 'a1') }); // a1 is already in it
  }
  problem(res, 404, 'ERR_ROUTE_NOT_FOUND', `no route for ${seen.method} ${seen.path}`);
}

interface TestServer {
  origin: string;
  seen: Seen[];
  /** The last request that was not for discovery. */
  readonly last: Seen;
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const seen: Seen[] = [];
  let origin = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', origin);
      const entry = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(entry);
      route(res, entry, origin);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    seen,
    get last() {
      const calls = seen.filter((s) => !s.path.startsWith(WELL_KNOWN_PATH));
      const last = calls[calls.length - 1];
      assert.ok(last, 'no API request was made');
      return last;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, check?: (error: any) => void) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isProtocolError(error), `expected a ProtocolError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    check?.(error);
    return true;
  });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let server: TestServer;
let client: ProtocolClient;

before(async () => {
  server = await startServer();
  client = new ProtocolClient({ origin: server.origin, fetch, token: 'secret-token', timeoutMs: 2000 });
});
after(() => server.close());

// ---------------------------------------------------------------------------------------------

describe('ProtocolClient: reading', () => {
  test('discover, capabilities and metadataProfile; discovery is fetched once and cached', async () => {
    const doc = await client.discover();
    assert.equal(doc.server.origin, server.origin);
    const capabilities = await client.capabilities();
    assert.deepEqual(capabilities.core, ['search']);
    const profile = await client.metadataProfile();
    assert.equal(profile.profile, 'test 1');
    await client.getAsset('a1');
    assert.equal(server.seen.filter((s) => s.path === WELL_KNOWN_PATH).length, 1);
  });

  test('every request sends Accept and the bearer token; no Authorization without a token', async () => {
    await client.getAsset('a1');
    assert.equal(server.last.headers.accept, 'application/json');
    assert.equal(server.last.headers.authorization, 'Bearer secret-token');
    const anonymous = new ProtocolClient({ origin: server.origin, fetch });
    await anonymous.getAsset('a1');
    assert.equal(server.last.headers.authorization, undefined);
  });

  test('search sends the query as URL parameters and answers the page', async () => {
    const page = await client.search({
      q: 'harbour at dawn',
      collection: 'c1',
      creator: 'Ana Lima',
      keyword: 'boat',
      format: 'image/jpeg',
      createdAfter: '2024-01-01',
      createdBefore: '2024-12-31T23:59:59Z',
      orientation: 'landscape',
      rights: 'unrestricted',
      sort: '-created',
      limit: 2,
    });
    const { method, path, query } = server.last;
    assert.equal(method, 'GET');
    assert.equal(path, '/api/v0/assets');
    assert.deepEqual(Object.fromEntries(query), {
      q: 'harbour at dawn',
      collection: 'c1',
      creator: 'Ana Lima',
      keyword: 'boat',
      format: 'image/jpeg',
      createdAfter: '2024-01-01',
      createdBefore: '2024-12-31T23:59:59Z',
      orientation: 'landscape',
      rights: 'unrestricted',
      sort: '-created',
      limit: '2',
    });
    assert.deepEqual(page.items.map((a) => a.id), ['a1', 'a2']);
    assert.equal(page.next, '2');
  });

  test('search without a query sends no parameters', async () => {
    await client.search();
    assert.equal([...server.last.query].length, 0);
  });

  test('searchAll follows next cursors to the last page', async () => {
    const before = server.seen.length;
    const ids: string[] = [];
    for await (const asset of client.searchAll({ q: 'x', limit: 2 })) ids.push(asset.id);
    assert.deepEqual(ids, IDS);
    const calls = server.seen.slice(before).filter((s) => s.path === '/api/v0/assets');
    assert.deepEqual(
      calls.map((c) => c.query.get('cursor')),
      [null, '2', '4'],
    );
    assert.ok(calls.every((c) => c.query.get('q') === 'x' && c.query.get('limit') === '2'));
  });

  test('searchAll stops when the loop does, without fetching more pages', async () => {
    const before = server.seen.length;
    for await (const asset of client.searchAll({ limit: 2 })) {
      assert.equal(asset.id, 'a1');
      break;
    }
    assert.equal(server.seen.slice(before).length, 1);
  });

  test('getAsset answers the asset and its ETag unquoted; ids are path-encoded', async () => {
    const { asset, etag } = await client.getAsset('a1');
    assert.equal(asset.id, 'a1');
    assert.equal(etag, CURRENT);
    await client.getAsset('a/b c?');
    assert.equal(server.last.path, '/api/v0/assets/a%2Fb%20c%3F');
  });

  test('listVersions answers the items, oldest first', async () => {
    const versions = await client.listVersions('a1');
    assert.equal(server.last.path, '/api/v0/assets/a1/versions');
    assert.deepEqual(versions.map((v) => v.id), ['v1', 'v2']);
  });

  test('downloadTicket sends rendition and version', async () => {
    const ticket = await client.downloadTicket('a1', { rendition: 'thumbnail', version: 'v1' });
    assert.equal(server.last.path, '/api/v0/assets/a1/download');
    assert.deepEqual(Object.fromEntries(server.last.query), { rendition: 'thumbnail', version: 'v1' });
    assert.equal(ticket.rendition, 'thumbnail');
    assert.equal(ticket.version, 'v1');
    await client.downloadTicket('a1');
    assert.equal([...server.last.query].length, 0);
  });

  test('changes sends since and limit', async () => {
    const page = await client.changes('5', 10);
    assert.equal(server.last.path, '/api/v0/changes');
    assert.deepEqual(Object.fromEntries(server.last.query), { since: '5', limit: '10' });
    assert.equal(page.events[0]?.seq, 6);
    assert.equal(page.next, '6');
    await client.changes();
    assert.equal([...server.last.query].length, 0);
  });
});

describe('ProtocolClient: writing', () => {
  const bytes = new TextEncoder().encode('not really a jpeg, but bytes all the same');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const digest = `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;

  test('createAsset posts the raw body with its headers', async () => {
    const asset = await client.createAsset(bytes, {
      filename: 'Hafen bei Nacht, é.jpg',
      contentType: 'image/jpeg',
      collection: 'c1',
      comment: 'first cut: ünïcode & more',
      sha256,
    });
    const { method, path, headers, body } = server.last;
    assert.equal(method, 'POST');
    assert.equal(path, '/api/v0/assets');
    assert.equal(headers['content-type'], 'image/jpeg');
    assert.equal(headers['imagine-filename'], encodeURIComponent('Hafen bei Nacht, é.jpg'));
    assert.equal(headers['imagine-collection'], 'c1');
    assert.equal(headers['imagine-comment'], encodeURIComponent('first cut: ünïcode & more'));
    assert.equal(headers['content-digest'], digest);
    assert.equal(headers['if-match'], undefined);
    assert.deepEqual(new Uint8Array(body), bytes);
    assert.equal(asset.filename, 'Hafen bei Nacht, é.jpg');
  });

  test('createAsset streams a ReadableStream body and sends no optional headers when not given', async () => {
    const chunks = [bytes.slice(0, 10), bytes.slice(10)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks.shift();
        if (chunk) controller.enqueue(chunk);
        else controller.close();
      },
    });
    await client.createAsset(stream, { filename: 'a.jpg', contentType: 'image/jpeg' });
    const { headers, body } = server.last;
    assert.deepEqual(new Uint8Array(body), bytes);
    assert.equal(headers['content-digest'], undefined);
    assert.equal(headers['imagine-collection'], undefined);
    assert.equal(headers['imagine-comment'], undefined);
  });

  test('createAsset takes a Blob', async () => {
    await client.createAsset(new Blob([bytes]), { filename: 'b.jpg', contentType: 'image/jpeg' });
    assert.deepEqual(new Uint8Array(server.last.body), bytes);
  });

  test('pushVersion sends If-Match with the quoted base version and answers the new asset state', async () => {
    const asset = await client.pushVersion('a1', bytes, {
      baseVersion: CURRENT,
      contentType: 'image/jpeg',
      comment: 'retouched',
      sha256,
    });
    const { method, path, headers } = server.last;
    assert.equal(method, 'POST');
    assert.equal(path, '/api/v0/assets/a1/versions');
    assert.equal(headers['if-match'], `"${CURRENT}"`);
    assert.equal(headers['content-digest'], digest);
    assert.equal(headers['imagine-filename'], undefined);
    assert.equal(asset.currentVersion, 'v3');
  });

  test('pushVersion on a stale base: ERR_PRECONDITION_FAILED with status 412', async () => {
    await rejectsWith(
      client.pushVersion('a1', bytes, { baseVersion: 'v1', contentType: 'image/jpeg' }),
      'ERR_PRECONDITION_FAILED',
      (error) => {
        assert.equal(error.status, 412);
        assert.match(error.message, /"v1" is not v2/);
      },
    );
  });

  test('editMetadata PATCHes { metadata } as JSON with If-Match', async () => {
    const asset = await client.editMetadata('a1', { title: 'Harbour at dawn', keywords: ['boat'] }, {
      baseVersion: CURRENT,
    });
    const { method, path, headers, body } = server.last;
    assert.equal(method, 'PATCH');
    assert.equal(path, '/api/v0/assets/a1/metadata');
    assert.equal(headers['if-match'], `"${CURRENT}"`);
    assert.match(String(headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(body.toString('utf8')), {
      metadata: { title: 'Harbour at dawn', keywords: ['boat'] },
    });
    assert.equal(asset.metadata.title, 'Harbour at dawn');
    await rejectsWith(client.editMetadata('a1', {}, { baseVersion: 'old' }), 'ERR_PRECONDITION_FAILED');
  });

  test('deleteAsset sends DELETE and resolves on 204', async () => {
    assert.equal(await client.deleteAsset('a1'), undefined);
    assert.equal(server.last.method, 'DELETE');
    assert.equal(server.last.path, '/api/v0/assets/a1');
  });

  test('collections: list, create, add items', async () => {
    const list = await client.listCollections();
    assert.equal(server.last.path, '/api/v0/collections');
    assert.deepEqual(list.map((c) => c.id), ['c1']);

    const created = await client.createCollection({ name: 'Boats', public: false });
    assert.equal(server.last.method, 'POST');
    assert.deepEqual(JSON.parse(server.last.body.toString('utf8')), { name: 'Boats', public: false });
    assert.equal(created.name, 'Boats');
    assert.equal(created.public, false);

    const added = await client.addToCollection('c 1', ['a1', 'a2']);
    assert.equal(server.last.method, 'POST');
    assert.equal(server.last.path, '/api/v0/collections/c%201/items');
    assert.deepEqual(JSON.parse(server.last.body.toString('utf8')), { assets: ['a1', 'a2'] });
    assert.deepEqual(added, ['a2']);
  });

  test('a sha256 that is not 64 hex digits is refused before anything is sent', async () => {
    const before = server.seen.length;
    await rejectsWith(
      client.createAsset(bytes, { filename: 'a.jpg', contentType: 'image/jpeg', sha256: 'abc' }),
      'ERR_VALIDATION',
    );
    assert.equal(server.seen.length, before);
  });
});

describe('ProtocolClient: errors', () => {
  test('a problem document becomes its code, status and detail', async () => {
    await rejectsWith(client.getAsset('missing'), 'ERR_ASSET_NOT_FOUND', (error) => {
      assert.equal(error.status, 404);
      assert.equal(error.message, 'no asset "missing"');
    });
  });

  test('a problem with a code this client does not know: ERR_UPSTREAM_ERROR keeping the remote code', async () => {
    await rejectsWith(client.getAsset('future-code'), 'ERR_UPSTREAM_ERROR', (error) => {
      assert.equal(error.extensions.remoteCode, 'ERR_FROM_THE_FUTURE');
      assert.equal(error.extensions.remoteStatus, 409);
    });
  });

  test('a 500 that is not a problem document: ERR_UPSTREAM_ERROR with the remote status', async () => {
    await rejectsWith(client.getAsset('boom'), 'ERR_UPSTREAM_ERROR', (error) => {
      assert.equal(error.extensions.remoteStatus, 500);
      assert.match(error.message, /answered 500/);
    });
    await rejectsWith(client.getAsset('json-error'), 'ERR_UPSTREAM_ERROR', (error) => {
      assert.equal(error.extensions.remoteStatus, 503);
    });
  });

  test('a 2xx that does not match the schema: ERR_UPSTREAM_INVALID listing the issues', async () => {
    await rejectsWith(client.getAsset('garbage'), 'ERR_UPSTREAM_INVALID', (error) => {
      assert.ok(Array.isArray(error.extensions.issues) && error.extensions.issues.length > 0);
    });
    await rejectsWith(client.getAsset('not-json'), 'ERR_UPSTREAM_INVALID', (error) => {
      assert.match(error.message, /JSON/);
    });
  });

  test('a redirect is not followed: ERR_UPSTREAM_INVALID', async () => {
    const before = server.seen.length;
    await rejectsWith(client.getAsset('moved'), 'ERR_UPSTREAM_INVALID', (error) => {
      assert.equal(error.extensions.remoteStatus, 302);
      assert.match(error.message, /not followed/);
    });
    assert.equal(server.seen.length, before + 1); // the target was never requested
  });

  test('a server that does not answer in time: ERR_UPSTREAM_TIMEOUT', async () => {
    const quick = new ProtocolClient({ origin: server.origin, fetch, timeoutMs: 200 });
    const started = Date.now();
    await rejectsWith(quick.getAsset('slow'), 'ERR_UPSTREAM_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 2000, `took ${elapsed} ms`);
  });

  test('a body that stalls after the headers: ERR_UPSTREAM_TIMEOUT', async () => {
    const quick = new ProtocolClient({ origin: server.origin, fetch, timeoutMs: 200 });
    await quick.discover(); // so the time goes to the asset request
    await rejectsWith(quick.getAsset('slow-body'), 'ERR_UPSTREAM_TIMEOUT');
  });

  test('an API endpoint nothing listens on: ERR_UPSTREAM_UNREACHABLE', async () => {
    const port = await closedPort();
    const store = new Map();
    store.set(server.origin, {
      document: discoveryFor(server.origin, `http://127.0.0.1:${port}/api/v0`),
      fetchedAt: Date.now(),
    });
    const resolver = createDiscoveryResolver({ fetch, store });
    const dead = new ProtocolClient({ origin: server.origin, fetch, resolver });
    await rejectsWith(dead.getAsset('a1'), 'ERR_UPSTREAM_UNREACHABLE', (error) => {
      assert.ok(error.cause, 'the network error is kept as cause');
    });
  });

  test('discovery failures keep their codes', async () => {
    const port = await closedPort();
    const nobody = new ProtocolClient({ origin: `http://127.0.0.1:${port}`, fetch });
    await rejectsWith(nobody.search({ q: 'x' }), 'ERR_DISCOVERY_UNREACHABLE');
  });

  test('an API endpoint given relative to the origin is resolved against it', async () => {
    const store = new Map();
    store.set(server.origin, { document: discoveryFor(server.origin, '/api/v0/'), fetchedAt: Date.now() });
    const relative = new ProtocolClient({
      origin: server.origin,
      fetch,
      resolver: createDiscoveryResolver({ fetch, store }),
    });
    await relative.getAsset('a1');
    assert.equal(server.last.path, '/api/v0/assets/a1');
  });
});

describe('client helpers', () => {
  test('contentDigest encodes the raw digest in base64 (RFC 9530)', () => {
    const empty = createHash('sha256').update('').digest();
    assert.equal(contentDigest(empty.toString('hex')), `sha-256=:${empty.toString('base64')}:`);
    assert.equal(
      contentDigest('E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855'),
      'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:',
    );
    for (let i = 0; i < 20; i++) {
      const digest = createHash('sha256').update(String(i)).digest();
      assert.equal(contentDigest(digest.toString('hex')), `sha-256=:${digest.toString('base64')}:`);
    }
    assert.throws(() => contentDigest('xyz'), (e: unknown) => isProtocolError(e, 'ERR_VALIDATION'));
  });

  test('unquoteEtag', () => {
    assert.equal(unquoteEtag('"v1"'), 'v1');
    assert.equal(unquoteEtag('W/"v1"'), 'v1');
    assert.equal(unquoteEtag('v1'), 'v1');
    assert.equal(unquoteEtag(null), undefined);
  });
});
