// The agent's guard, through app.inject(): loopback Host, no foreign Origin, the pairing token,
// agent-signed image URLs, CORS preflight, and nothing secret in the logs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { redactPaths, requestSerializers } from '../http/log.ts';
import { ensurePairingToken } from './pairing.ts';
import { AgentUrlSigner } from './url-signer.ts';
import { thumbPath } from './present.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'imagine-guard-'));
const HOST = '127.0.0.1:7420';
let app: FastifyInstance;
let token: string;
let logs = '';

before(async () => {
  const config = loadConfig({
    flags: { dataDir, role: 'agent', agentAllowedOrigins: ['uxp://com.example.panel'] },
    readFile: false,
  });
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  app = await buildApp(config, { logger: { level: 'info', serializers: requestSerializers, redact: redactPaths, stream } });
  await app.ready();
  app.agent!.origin = `http://${HOST}`;
  token = await ensurePairingToken(join(dataDir, 'agent'));
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function get(url: string, headers: Record<string, string> = {}, extra: { remoteAddress?: string; method?: 'GET' | 'OPTIONS' } = {}) {
  return app.inject({
    method: extra.method ?? 'GET',
    url,
    headers: { host: HOST, authorization: `Bearer ${token}`, ...headers },
    remoteAddress: extra.remoteAddress,
  });
}

describe('the agent guard', () => {
  test('answers a loopback request with the pairing token', async () => {
    const response = await get('/agent/v1/status');
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json().origin, `http://${HOST}`);
    assert.equal((await get('/agent/v1/status', { host: 'localhost:7420' })).statusCode, 200);
    assert.equal((await get('/agent/v1/status', { host: '[::1]:7420' })).statusCode, 200);
  });

  test('the token file is private', async () => {
    const { stat } = await import('node:fs/promises');
    assert.equal((await stat(join(dataDir, 'agent', 'pairing-token'))).mode & 0o777, 0o600);
    assert.equal(await ensurePairingToken(join(dataDir, 'agent')), token, 'made once, then kept');
  });

  for (const host of ['evil.example:7420', 'evil.example', '127.0.0.1:7421', '127.0.0.1', '127.0.0.1.nip.io:7420', 'localhost.:7420', '']) {
    test(`refuses Host ${JSON.stringify(host)} (DNS rebinding)`, async () => {
      const response = await get('/agent/v1/status', { host });
      assert.equal(response.statusCode, 403);
      assert.equal(response.json().code, 'ERR_HOST_FORBIDDEN');
    });
  }

  test('refuses connections from another machine', async () => {
    const response = await get('/agent/v1/status', {}, { remoteAddress: '192.168.1.20' });
    assert.equal(response.statusCode, 403);
    assert.equal(response.json().code, 'ERR_HOST_FORBIDDEN');
  });

  for (const origin of ['https://evil.example', 'http://127.0.0.1:9999', 'null', 'http://localhost:7420.evil.example']) {
    test(`refuses Origin ${origin} (CSRF), without CORS headers`, async () => {
      const response = await get('/agent/v1/status', { origin });
      assert.equal(response.statusCode, 403);
      assert.equal(response.json().code, 'ERR_ORIGIN_FORBIDDEN');
      assert.equal(response.headers['access-control-allow-origin'], undefined);
    });
  }

  test('accepts its own origins and the configured ones, naming them in CORS', async () => {
    for (const origin of [`http://${HOST}`, 'http://localhost:7420', 'uxp://com.example.panel']) {
      const response = await get('/agent/v1/status', { origin });
      assert.equal(response.statusCode, 200, origin);
      assert.equal(response.headers['access-control-allow-origin'], origin);
    }
  });

  test('answers a preflight from an allowed origin, refuses a foreign one', async () => {
    const ok = await get(
      '/agent/v1/connections',
      { origin: 'http://localhost:7420', 'access-control-request-method': 'POST', authorization: '' },
      { method: 'OPTIONS' },
    );
    assert.equal(ok.statusCode, 204);
    assert.equal(ok.headers['access-control-allow-origin'], 'http://localhost:7420');
    assert.match(String(ok.headers['access-control-allow-headers']), /Authorization/);
    const foreign = await get(
      '/agent/v1/connections',
      { origin: 'https://evil.example', 'access-control-request-method': 'POST', authorization: '' },
      { method: 'OPTIONS' },
    );
    assert.equal(foreign.statusCode, 403);
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  });

  for (const [name, authorization] of [
    ['missing', undefined],
    ['wrong', 'Bearer not-the-token'],
    ['almost right', `Bearer ${'x'.repeat(43)}`],
    ['another scheme', `Basic ${Buffer.from(`a:${'x'}`).toString('base64')}`],
    ['empty bearer', 'Bearer '],
  ] as const) {
    test(`refuses a ${name} pairing token`, async () => {
      const headers: Record<string, string> = { host: HOST };
      if (authorization !== undefined) headers.authorization = authorization;
      const response = await app.inject({ method: 'GET', url: '/agent/v1/connections', headers });
      assert.equal(response.statusCode, 401);
      assert.equal(response.json().code, 'ERR_PAIRING_REQUIRED');
    });
  }

  test('unknown agent routes are behind the guard too', async () => {
    const response = await app.inject({ method: 'GET', url: '/agent/v1/nothing-here', headers: { host: HOST } });
    assert.equal(response.statusCode, 401);
    assert.equal((await get('/agent/v1/nothing-here')).json().code, 'ERR_ROUTE_NOT_FOUND');
  });

  test('image routes take an agent signature instead of the token', async () => {
    const signed = app.agent!.urls.sign(thumbPath('nowhere.example', 'a1', 'v1'));
    const response = await app.inject({ method: 'GET', url: signed, headers: { host: HOST } });
    // Past the guard: the connection does not exist.
    assert.equal(response.statusCode, 404, response.body);
    assert.equal(response.json().code, 'ERR_CONNECTION_NOT_FOUND');

    const unsigned = await app.inject({ method: 'GET', url: thumbPath('nowhere.example', 'a1', 'v1'), headers: { host: HOST } });
    assert.equal(unsigned.statusCode, 403);
    assert.equal(unsigned.json().code, 'ERR_SIGNATURE_INVALID');

    const other = signed.replace('/a1/', '/a2/');
    const tampered = await app.inject({ method: 'GET', url: other, headers: { host: HOST } });
    assert.equal(tampered.json().code, 'ERR_SIGNATURE_INVALID');

    const sigFlipped = signed.slice(0, -1) + (signed.endsWith('A') ? 'B' : 'A');
    assert.equal((await app.inject({ method: 'GET', url: sigFlipped, headers: { host: HOST } })).json().code, 'ERR_SIGNATURE_INVALID');

    const extended = signed.replace('&sig=', '&extra=1&sig=');
    assert.equal((await app.inject({ method: 'GET', url: extended, headers: { host: HOST } })).json().code, 'ERR_SIGNATURE_INVALID');

    const appended = `${signed}&exp=99999999999`;
    assert.equal((await app.inject({ method: 'GET', url: appended, headers: { host: HOST } })).json().code, 'ERR_SIGNATURE_INVALID');

    const past = await AgentUrlSigner.open(join(dataDir, 'agent'), { now: () => Date.now() - 3 * 24 * 3600_000 });
    const expired = await app.inject({ method: 'GET', url: past.sign(thumbPath('nowhere.example', 'a1', 'v1')), headers: { host: HOST } });
    assert.equal(expired.statusCode, 403);
    assert.equal(expired.json().code, 'ERR_SIGNATURE_EXPIRED');

    const foreignHost = await app.inject({ method: 'GET', url: signed, headers: { host: 'evil.example:7420' } });
    assert.equal(foreignHost.json().code, 'ERR_HOST_FORBIDDEN');
  });

  test('a signature is good for its own path only, never for the API', async () => {
    const signed = app.agent!.urls.sign('/agent/v1/connections');
    const response = await app.inject({ method: 'GET', url: signed, headers: { host: HOST } });
    assert.equal(response.statusCode, 401);
  });

  test('never logs the token or a signature', async () => {
    const signed = app.agent!.urls.sign(thumbPath('nowhere.example', 'a1', 'v1'));
    await app.inject({ method: 'GET', url: signed, headers: { host: HOST } });
    await get('/agent/v1/status');
    await get('/agent/v1/status', { authorization: 'Bearer not-the-token-but-secret' });
    const sig = new URL(signed, 'http://x').searchParams.get('sig')!;
    assert.ok(logs.length > 0, 'something was logged');
    assert.ok(!logs.includes(token), 'the pairing token was logged');
    assert.ok(!logs.includes(sig), 'a signature was logged');
    assert.ok(!logs.includes('not-the-token-but-secret'));
  });
});
