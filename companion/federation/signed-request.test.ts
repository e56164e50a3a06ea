import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { generateKeyPair, SignJWT } from 'jose';
import { createDiscoveryResolver } from '../../shared/discovery.ts';
import { isProtocolError } from '../../shared/errors.ts';
import { buildDiscoveryDocument } from '../routes/well-known.ts';
import { openServerKeys, type ServerKeys } from './keys.ts';
import { PeerStore } from './peers.ts';
import { SeenTokens } from './seen-tokens.ts';
import { bodyHash, PeerVerifier, signPeerRequest } from './signed-request.ts';

/** A minimal issuer: discovery and JWKS on a real loopback port. */
async function startIssuer(keys: ServerKeys): Promise<{ app: FastifyInstance; origin: string }> {
  const app = Fastify();
  let origin = '';
  app.get('/.well-known/imagine', async () => buildDiscoveryDocument(origin));
  app.get('/.well-known/imagine/jwks.json', async () => keys.jwks());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return { app, origin };
}

const AUDIENCE = 'http://127.0.0.1:7999';
const URL_ = `${AUDIENCE}/api/v1/assets?q=harbour`;

describe('signed server-to-server requests', () => {
  let dir: string;
  let issuerKeys: ServerKeys;
  let issuer: { app: FastifyInstance; origin: string };
  let peers: PeerStore;
  let verifier: PeerVerifier;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagine-peer-'));
    issuerKeys = await openServerKeys(join(dir, 'issuer'));
    issuer = await startIssuer(issuerKeys);
    peers = new PeerStore(join(dir, 'receiver'));
    verifier = new PeerVerifier({ peers, resolver: createDiscoveryResolver({ fetch }), jwksCooldownMs: 0 });
    await peers.recordRequest(issuer.origin, ['search']);
    await peers.approve(issuer.origin.slice('http://'.length));
  });

  after(async () => {
    await issuer.app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const sign = (overrides: Partial<Parameters<typeof signPeerRequest>[0]> = {}) =>
    signPeerRequest({ keys: issuerKeys, issuer: issuer.origin, audience: AUDIENCE, method: 'GET', url: URL_, ...overrides });

  const code = async (promise: Promise<unknown>): Promise<string> => {
    try {
      await promise;
      return 'ok';
    } catch (error) {
      if (isProtocolError(error)) return error.code;
      throw error;
    }
  };

  test('a signed request from a trusted peer verifies, with its acting user', async () => {
    const token = await sign({ subject: 'Alice@Example.org' });
    const result = await verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE);
    assert.equal(result.issuer, issuer.origin);
    assert.equal(result.subject, 'alice@example.org');
    assert.equal(result.peer?.state, 'approved');
    assert.deepEqual(result.peer?.scopes, ['search']);
  });

  test('the same token twice is a replay', async () => {
    const token = await sign();
    await verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE);
    assert.equal(
      await code(verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE)),
      'ERR_PEER_TOKEN_REPLAYED',
    );
  });

  test('two concurrent uses of one token: exactly one passes', async () => {
    const token = await sign();
    const results = await Promise.all(
      [1, 2, 3].map(() => code(verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE))),
    );
    assert.deepEqual(results.sort(), ['ERR_PEER_TOKEN_REPLAYED', 'ERR_PEER_TOKEN_REPLAYED', 'ok']);
  });

  test('bound to method, URL and body', async () => {
    const body = JSON.stringify({ scopes: ['search'] });
    const post = await sign({ method: 'POST', body });
    assert.equal(await code(verifier.verify({ authorization: `Peer ${post}`, method: 'POST', url: URL_, body: '{}' }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID');
    assert.equal(await code(verifier.verify({ authorization: `Peer ${await sign()}`, method: 'DELETE', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID');
    assert.equal(
      await code(verifier.verify({ authorization: `Peer ${await sign()}`, method: 'GET', url: `${URL_}&limit=500` }, AUDIENCE)),
      'ERR_PEER_TOKEN_INVALID',
    );
    const ok = await sign({ method: 'POST', body });
    assert.equal(await code(verifier.verify({ authorization: `Peer ${ok}`, method: 'POST', url: URL_, body }, AUDIENCE)), 'ok');
    assert.equal(bodyHash(undefined), bodyHash(''));
  });

  test('another audience is refused', async () => {
    const token = await sign({ audience: 'http://127.0.0.1:8000' });
    assert.equal(await code(verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID');
  });

  test('an expired token is refused (clock moved past exp plus tolerance)', async () => {
    const token = await sign();
    const later = new PeerVerifier({ peers, resolver: createDiscoveryResolver({ fetch }), now: () => Date.now() + 120_000 });
    assert.equal(await code(later.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID');
  });

  test('a token without exp, or living too long, is refused', async () => {
    const { key, kid, alg } = issuerKeys.current();
    const base = () =>
      new SignJWT({ htm: 'GET', htu: URL_, bh: bodyHash(undefined) })
        .setProtectedHeader({ alg, kid })
        .setIssuer(issuer.origin)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setJti(crypto.randomUUID());
    const noExp = await base().sign(key);
    const longLived = await base().setExpirationTime('1h').sign(key);
    for (const token of [noExp, longLived]) {
      assert.equal(await code(verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID');
    }
  });

  test('a token accepted before a restart is still a replay after it (journaled jti)', async () => {
    const journal = join(dir, 'receiver', 'federation', 'seen-tokens.log');
    const open = () => new PeerVerifier({ peers, resolver: createDiscoveryResolver({ fetch }), seen: new SeenTokens(journal, { graceMs: 30_000 }) });
    const token = await sign();
    const request = { authorization: `Peer ${token}`, method: 'GET', url: URL_ };
    await open().verify(request, AUDIENCE);
    // A new verifier on the same data folder: the server after a restart (or a kill -9).
    assert.equal(await code(open().verify(request, AUDIENCE)), 'ERR_PEER_TOKEN_REPLAYED');
    // A fresh token still passes after the restart.
    const fresh = await sign();
    assert.equal(await code(open().verify({ ...request, authorization: `Peer ${fresh}` }, AUDIENCE)), 'ok');
  });

  test('a jti that could not be journaled as one word is refused', async () => {
    const { key, kid, alg } = issuerKeys.current();
    for (const jti of ['two words', 'line\nbreak', 'x'.repeat(201), '']) {
      const token = await new SignJWT({ htm: 'GET', htu: URL_, bh: bodyHash(undefined) })
        .setProtectedHeader({ alg, kid })
        .setIssuer(issuer.origin)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('60s')
        .setJti(jti)
        .sign(key);
      assert.equal(await code(verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID', JSON.stringify(jti));
    }
  });

  test('a forged token (another key claiming the same kid) is refused', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const token = await new SignJWT({ htm: 'GET', htu: URL_, bh: bodyHash(undefined) })
      .setProtectedHeader({ alg: 'EdDSA', kid: issuerKeys.current().kid })
      .setIssuer(issuer.origin)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('60s')
      .setJti(crypto.randomUUID())
      .sign(privateKey);
    assert.equal(await code(verifier.verify({ authorization: `Peer ${token}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID');
    // alg "none" and garbage never get as far as a key
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer.origin })).toString('base64url')}.`;
    for (const authorization of [`Peer ${none}`, 'Peer x.y.z', 'Bearer abc', undefined, `Peer ${'a'.repeat(10)}`]) {
      assert.equal(await code(verifier.verify({ authorization, method: 'GET', url: URL_ }, AUDIENCE)), 'ERR_PEER_TOKEN_INVALID', String(authorization));
    }
  });

  test('unknown, pending and revoked issuers are not trusted; revocation takes effect at once', async () => {
    const otherKeys = await openServerKeys(join(dir, 'other'));
    const other = await startIssuer(otherKeys);
    try {
      const signOther = () => signPeerRequest({ keys: otherKeys, issuer: other.origin, audience: AUDIENCE, method: 'GET', url: URL_ });
      const verifyOther = async () =>
        code(verifier.verify({ authorization: `Peer ${await signOther()}`, method: 'GET', url: URL_ }, AUDIENCE));
      assert.equal(await verifyOther(), 'ERR_PEER_UNKNOWN');
      await peers.recordRequest(other.origin, ['search', 'view']);
      assert.equal(await verifyOther(), 'ERR_PEER_UNKNOWN', 'pending is not trusted');
      // Approved through another store instance on the same file, as `imagine peers approve` does.
      await new PeerStore(join(dir, 'receiver')).approve(other.origin.slice('http://'.length));
      assert.equal(await verifyOther(), 'ok');
      await new PeerStore(join(dir, 'receiver')).revoke(other.origin.slice('http://'.length));
      assert.equal(await verifyOther(), 'ERR_PEER_UNKNOWN');
    } finally {
      await other.app.close();
    }
  });

  test('after a key rotation, tokens of the new key verify (unknown kid refetched) and old ones still do', async () => {
    const oldToken = await sign();
    await verifier.verify({ authorization: `Peer ${await sign()}`, method: 'GET', url: URL_ }, AUDIENCE); // caches the JWKS
    await issuerKeys.rotate();
    const newToken = await sign();
    assert.equal(await code(verifier.verify({ authorization: `Peer ${newToken}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ok');
    assert.equal(await code(verifier.verify({ authorization: `Peer ${oldToken}`, method: 'GET', url: URL_ }, AUDIENCE)), 'ok');
    assert.equal(issuerKeys.jwks().keys.length, 2);
  });
});
