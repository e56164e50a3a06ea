// The SSRF-safe client against real sockets on loopback: address vectors, redirects re-checked,
// size cap, deadline.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isProtocolError } from '../../shared/errors.ts';
import { ALLOW_ALL, isPublicAddress, parseHttpUrl, safeFetch } from './safe-fetch.ts';

function code(expected: string) {
  return (error: unknown) => {
    assert.ok(isProtocolError(error), String(error));
    assert.equal(error.code, expected, error.message);
    return true;
  };
}

describe('isPublicAddress', () => {
  test('refuses loopback, private, link-local, reserved, mapped and tunnelled ranges', () => {
    for (const address of [
      '127.0.0.1', '127.255.255.254', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
      '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '192.0.2.5',
      '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
      '64:ff9b::a00:1', '2002:7f00:1::', '2001:db8::1', 'not an address', '',
    ]) {
      assert.equal(isPublicAddress(address), false, address);
    }
  });

  test('allows public addresses', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isPublicAddress(address), true, address);
    }
  });
});

describe('parseHttpUrl', () => {
  test('only absolute http(s) URLs without credentials', () => {
    assert.equal(parseHttpUrl('https://example.org/a?b').href, 'https://example.org/a?b');
    for (const bad of ['file:///etc/passwd', 'ftp://example.org/', 'gopher://x/', 'javascript:alert(1)', '/relative', 'https://user:pw@example.org/', 'http://', '']) {
      assert.throws(() => parseHttpUrl(bad), code('ERR_VALIDATION'), bad);
    }
  });
});

describe('safeFetch', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/ok') return res.end('hello');
      if (url.pathname === '/echo-host') return res.end(String(req.headers.host));
      if (url.pathname === '/hop') {
        const n = Number(url.searchParams.get('n'));
        res.writeHead(302, { location: n > 0 ? `/hop?n=${n - 1}` : '/ok' });
        return res.end();
      }
      if (url.pathname === '/to-other-loopback') {
        res.writeHead(301, { location: `http://127.0.0.2:${port}/ok` });
        return res.end();
      }
      if (url.pathname === '/to-file') {
        res.writeHead(302, { location: 'file:///etc/passwd' });
        return res.end();
      }
      if (url.pathname === '/big-declared') {
        res.writeHead(200, { 'content-length': String(10_000) });
        return res.end('x'.repeat(10_000));
      }
      if (url.pathname === '/big-chunked') {
        res.writeHead(200);
        for (let i = 0; i < 10; i++) res.write('y'.repeat(1000));
        return res.end();
      }
      if (url.pathname === '/slow') return; // never answers
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const base = () => `http://127.0.0.1:${port}`;
  const onlyFirstLoopback = (address: string) => address === '127.0.0.1';
  const options = { timeoutMs: 2000, maxBytes: 4096 };

  test('refuses loopback by default, whatever the spelling', async () => {
    for (const url of [`${base()}/ok`, `http://localhost:${port}/ok`, `http://[::1]:${port}/ok`, `http://[::ffff:127.0.0.1]:${port}/ok`, `http://0x7f000001:${port}/ok`, `http://2130706433:${port}/ok`]) {
      await assert.rejects(safeFetch(url, options), code('ERR_ADDRESS_FORBIDDEN'), url);
    }
  });

  test('fetches where the policy allows, with the Host of the URL', async () => {
    const res = await safeFetch(`${base()}/echo-host`, { ...options, policy: ALLOW_ALL });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `127.0.0.1:${port}`);
  });

  test('a redirect is the answer unless redirects are allowed; then each hop is re-checked', async () => {
    const plain = await safeFetch(`${base()}/hop?n=0`, { ...options, policy: onlyFirstLoopback });
    assert.equal(plain.status, 302);
    const followed = await safeFetch(`${base()}/hop?n=2`, { ...options, policy: onlyFirstLoopback, maxRedirects: 3 });
    assert.equal(followed.status, 200);
    assert.equal(followed.url, `${base()}/ok`);
    await assert.rejects(safeFetch(`${base()}/hop?n=5`, { ...options, policy: onlyFirstLoopback, maxRedirects: 3 }), code('ERR_UPSTREAM_INVALID'));
    await assert.rejects(
      safeFetch(`${base()}/to-other-loopback`, { ...options, policy: onlyFirstLoopback, maxRedirects: 3 }),
      code('ERR_ADDRESS_FORBIDDEN'),
    );
    await assert.rejects(safeFetch(`${base()}/to-file`, { ...options, policy: ALLOW_ALL, maxRedirects: 3 }), code('ERR_VALIDATION'));
  });

  test('caps the body, declared or not', async () => {
    await assert.rejects(safeFetch(`${base()}/big-declared`, { ...options, policy: ALLOW_ALL }), code('ERR_UPSTREAM_INVALID'));
    await assert.rejects(safeFetch(`${base()}/big-chunked`, { ...options, policy: ALLOW_ALL }), code('ERR_UPSTREAM_INVALID'));
  });

  test('one deadline for the whole exchange', async () => {
    const started = Date.now();
    await assert.rejects(safeFetch(`${base()}/slow`, { ...options, timeoutMs: 200, policy: ALLOW_ALL }), code('ERR_UPSTREAM_TIMEOUT'));
    assert.ok(Date.now() - started < 1500);
  });

  test('an unreachable port is ERR_UPSTREAM_UNREACHABLE', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(safeFetch(`http://127.0.0.1:${deadPort}/`, { ...options, policy: ALLOW_ALL }), code('ERR_UPSTREAM_UNREACHABLE'));
  });
});
