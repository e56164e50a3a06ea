import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openMemoryGuestStore } from './store.ts';

describe('GuestStore', () => {
  test('a link signs in once; the session lives until it expires', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const store = await openMemoryGuestStore(() => now);
    const { token, record } = await store.createInvite({ identity: 'ana@example.com', collections: ['c1'], ttlSeconds: 3600 });
    assert.match(token, /^igl_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(record.hash, token, 'only the hash is kept');
    assert.equal(store.checkInvite(token).identity, 'ana@example.com');
    const { session } = await store.consumeInvite(token, 600);
    assert.equal(store.session(session)?.identity, 'ana@example.com');
    await assert.rejects(store.consumeInvite(token, 600), { code: 'ERR_GUEST_LINK_EXPIRED' }, 'second use refused');
    now += 601_000;
    assert.equal(store.session(session), undefined, 'expired session');
  });

  test('forged, malformed and expired links are refused with their codes', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const store = await openMemoryGuestStore(() => now);
    const { token } = await store.createInvite({ identity: 'ana@example.com', collections: ['c1'], ttlSeconds: 60 });
    assert.throws(() => store.checkInvite(undefined), { code: 'ERR_GUEST_LINK_INVALID' });
    assert.throws(() => store.checkInvite('igl_short'), { code: 'ERR_GUEST_LINK_INVALID' });
    assert.throws(() => store.checkInvite(`igl_${'A'.repeat(43)}`), { code: 'ERR_GUEST_LINK_INVALID' });
    await assert.rejects(store.consumeInvite(token.replace(/^igl_/, 'igs_'), 60), { code: 'ERR_GUEST_LINK_INVALID' }, 'a session token is no link');
    now += 61_000;
    await assert.rejects(store.consumeInvite(token, 60), { code: 'ERR_GUEST_LINK_EXPIRED' });
  });

  test('two concurrent uses of one link: exactly one session', async () => {
    const store = await openMemoryGuestStore();
    const { token } = await store.createInvite({ identity: 'ana@example.com', collections: ['c1'], ttlSeconds: 60 });
    const results = await Promise.allSettled([store.consumeInvite(token, 60), store.consumeInvite(token, 60)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  });

  test('ending a session', async () => {
    const store = await openMemoryGuestStore();
    const { token } = await store.createInvite({ identity: 'ana@example.com', collections: ['c1'], ttlSeconds: 60 });
    const { session } = await store.consumeInvite(token, 60);
    await store.endSession(session);
    assert.equal(store.session(session), undefined);
  });
});
