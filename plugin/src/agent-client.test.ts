/**
 * The agent client against a real HTTP server on 127.0.0.1: problem documents keep their code,
 * no answer is ERR_AGENT_NOT_RUNNING, something else answering is recognised as such, a server
 * that never answers times out, and requests carry the pairing token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { isProtocolError } from '../../shared/errors.ts';
import { AgentClient } from './agent-client.ts';

let server: Server;
let base: string;
const seen: IncomingMessage[] = [];
const bodies: string[] = [];

before(async () => {
  server = createServer((request, response) => {
    seen.push(request);
    let body = '';
    request.on('data', (c) => (body += c));
    request.on('end', () => {
      bodies.push(body);
      const path = (request.url ?? '').split('?')[0];
      if (path === '/agent/v1/status') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ software: 'imagine', version: '0', origin: base, workDir: '/w', connections: [], queue: { pending: 0, conflicts: 0, failed: 0 } }));
      } else if (path === '/agent/v1/connections' && request.method === 'POST') {
        response.writeHead(401, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'urn:imagine:error:ERR_TOKEN_INVALID', title: 'Token is not valid', status: 401, code: 'ERR_TOKEN_INVALID', detail: 'the server refused the token' }));
      } else if (path === '/agent/v1/connections/a%2Fb' && request.method === 'DELETE') {
        response.writeHead(204).end();
      } else if (path === '/agent/v1/search') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], next: null, sources: [] }));
      } else if (path === '/agent/v1/queue') {
        response.writeHead(200, { 'content-type': 'text/html' }).end('<html>not the agent</html>');
      } else if (path === '/agent/v1/sync') {
        // never answers
      } else {
        response.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test('a call carries the pairing token and parses JSON', async () => {
  const client = new AgentClient({ baseUrl: `${base}/`, token: 'pair-123' });
  const status = await client.status();
  assert.equal(status.software, 'imagine');
  assert.equal(seen.at(-1)!.headers.authorization, 'Bearer pair-123');
});

test('query parameters: empty ones left out; ids percent-encoded', async () => {
  const client = new AgentClient({ baseUrl: base, token: 't' });
  await client.search({ q: 'red dunes', connection: '', limit: 50, cursor: undefined });
  assert.equal(seen.at(-1)!.url, '/agent/v1/search?q=red+dunes&limit=50');
  await client.removeConnection('a/b');
  assert.equal(seen.at(-1)!.method, 'DELETE');
});

test('a problem document becomes a ProtocolError with its code', async () => {
  const client = new AgentClient({ baseUrl: base, token: 't' });
  await assert.rejects(client.addConnection({ url: 'https://images.example', token: 'wrong' }), (error) => {
    assert.ok(isProtocolError(error, 'ERR_TOKEN_INVALID'));
    assert.equal(error.message, 'the server refused the token');
    return true;
  });
  assert.deepEqual(JSON.parse(bodies.at(-1)!), { url: 'https://images.example', token: 'wrong' });
  assert.equal(seen.at(-1)!.headers['content-type'], 'application/json');
});

test('something else answering is not taken for the agent', async () => {
  const client = new AgentClient({ baseUrl: base });
  await assert.rejects(client.queue(), (error) => isProtocolError(error, 'ERR_UPSTREAM_INVALID'));
  await assert.rejects(client.policy('x'), (error) => isProtocolError(error, 'ERR_UPSTREAM_ERROR') && error.status === 502);
});

test('nothing listening: ERR_AGENT_NOT_RUNNING naming the address', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const address = closed.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const client = new AgentClient({ baseUrl: `http://127.0.0.1:${port}` });
  await assert.rejects(client.status(), (error) => {
    assert.ok(isProtocolError(error, 'ERR_AGENT_NOT_RUNNING'));
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    return true;
  });
});

test('an agent that never answers times out', async () => {
  const client = new AgentClient({ baseUrl: base, timeoutMs: 300 });
  const started = Date.now();
  await assert.rejects(client.sync(), (error) => isProtocolError(error, 'ERR_AGENT_NOT_RUNNING') && /within/.test(error.message));
  assert.ok(Date.now() - started < 3000);
});

test('thumbnail URLs: agent-relative ones are made absolute', () => {
  const client = new AgentClient({ baseUrl: 'http://127.0.0.1:7420/' });
  assert.equal(client.url('/agent/v1/thumbs/a/b/v1?exp=1&sig=x'), 'http://127.0.0.1:7420/agent/v1/thumbs/a/b/v1?exp=1&sig=x');
  assert.equal(client.url('https://elsewhere.example/x.jpg'), 'https://elsewhere.example/x.jpg');
});
