import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { isProtocolError } from '../../shared/errors.ts';
import { retryDelay } from './backoff.ts';
import { createWebhookReceiver } from './receiver.ts';
import {
  generateSecret,
  isValidSecret,
  ReplayGuard,
  signatureOf,
  signWebhook,
  verifyWebhook,
} from './standard-webhooks.ts';

/** The reference vector of the Standard Webhooks libraries (the secret's key is 24 bytes). */
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

function refusedWith(reason: RegExp) {
  return (error: unknown) => {
    assert.ok(isProtocolError(error), String(error));
    assert.equal(error.code, 'ERR_WEBHOOK_SIGNATURE_INVALID');
    assert.match(error.message, reason);
    return true;
  };
}

describe('Standard Webhooks signing', () => {
  test('the reference vector', () => {
    const headers = signWebhook(VECTOR);
    assert.deepEqual(headers, {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    });
  });

  test('agrees with an HMAC computed by hand over "id.timestamp.body"', () => {
    const secret = generateSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const body = JSON.stringify({ type: 'asset.created', data: { subject: 'imagine://h/images/a1' } });
    const byHand = createHmac('sha256', key).update(`msg_1.1700000000.${body}`).digest('base64');
    assert.equal(signatureOf('msg_1', 1700000000, body, secret), byHand);
    assert.equal(signWebhook({ id: 'msg_1', timestamp: 1700000000, body, secret })['webhook-signature'], `v1,${byHand}`);
    // The body is signed as bytes: a Buffer and its string agree.
    assert.equal(signatureOf('msg_1', 1700000000, Buffer.from(body), secret), byHand);
  });

  test('secrets: whsec_ + base64 of 24-64 bytes', () => {
    assert.ok(isValidSecret(generateSecret()));
    assert.ok(isValidSecret(VECTOR.secret));
    for (const bad of ['', 'whsec_', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_c2hvcnQ=', 'whsec_!!!!', `whsec_${'A'.repeat(100)}`, 42]) {
      assert.equal(isValidSecret(bad), false, String(bad));
    }
    assert.throws(() => signWebhook({ id: 'm', timestamp: 1, body: '', secret: 'nope' }), /whsec_/);
    assert.throws(() => signWebhook({ id: 'has space', timestamp: 1, body: '', secret: VECTOR.secret }), /webhook-id/);
  });
});

describe('Standard Webhooks verification', () => {
  const headers = { 'webhook-id': VECTOR.id, 'webhook-timestamp': String(VECTOR.timestamp), 'webhook-signature': VECTOR.signature };
  const now = VECTOR.timestamp + 10;

  test('accepts the reference vector within the tolerance', () => {
    assert.deepEqual(verifyWebhook({ headers, body: VECTOR.body, secret: VECTOR.secret, now }), { id: VECTOR.id, timestamp: VECTOR.timestamp });
  });

  test('accepts when one of several signatures matches (rotation), with either secret', () => {
    const other = generateSecret();
    const rotated = { ...headers, 'webhook-signature': `v1,${signatureOf(VECTOR.id, VECTOR.timestamp, VECTOR.body, other)} ${VECTOR.signature}` };
    assert.ok(verifyWebhook({ headers: rotated, body: VECTOR.body, secret: VECTOR.secret, now }));
    assert.ok(verifyWebhook({ headers, body: VECTOR.body, secret: [other, VECTOR.secret], now }));
  });

  test('refuses a changed body, id or timestamp, another secret, and other schemes', () => {
    assert.throws(() => verifyWebhook({ headers, body: '{"test": 2432232315}', secret: VECTOR.secret, now }), refusedWith(/no webhook-signature/));
    assert.throws(() => verifyWebhook({ headers: { ...headers, 'webhook-id': 'msg_other' }, body: VECTOR.body, secret: VECTOR.secret, now }), refusedWith(/no webhook-signature/));
    assert.throws(
      () => verifyWebhook({ headers: { ...headers, 'webhook-timestamp': String(VECTOR.timestamp + 1) }, body: VECTOR.body, secret: VECTOR.secret, now }),
      refusedWith(/no webhook-signature/),
    );
    assert.throws(() => verifyWebhook({ headers, body: VECTOR.body, secret: generateSecret(), now }), refusedWith(/no webhook-signature/));
    const v1a = { ...headers, 'webhook-signature': VECTOR.signature.replace('v1,', 'v1a,') };
    assert.throws(() => verifyWebhook({ headers: v1a, body: VECTOR.body, secret: VECTOR.secret, now }), refusedWith(/no webhook-signature/));
    const truncated = { ...headers, 'webhook-signature': VECTOR.signature.slice(0, 20) };
    assert.throws(() => verifyWebhook({ headers: truncated, body: VECTOR.body, secret: VECTOR.secret, now }), refusedWith(/no webhook-signature/));
  });

  test('refuses stale and future timestamps (5 minutes by default)', () => {
    assert.throws(() => verifyWebhook({ headers, body: VECTOR.body, secret: VECTOR.secret, now: VECTOR.timestamp + 301 }), refusedWith(/too old/));
    assert.throws(() => verifyWebhook({ headers, body: VECTOR.body, secret: VECTOR.secret, now: VECTOR.timestamp - 301 }), refusedWith(/future/));
    assert.ok(verifyWebhook({ headers, body: VECTOR.body, secret: VECTOR.secret, now: VECTOR.timestamp + 300 }));
    assert.throws(
      () => verifyWebhook({ headers, body: VECTOR.body, secret: VECTOR.secret, now: VECTOR.timestamp + 31, toleranceSeconds: 30 }),
      refusedWith(/too old/),
    );
  });

  test('refuses missing, repeated and malformed headers', () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const { [name]: _gone, ...rest } = headers;
      assert.throws(() => verifyWebhook({ headers: rest, body: VECTOR.body, secret: VECTOR.secret, now }), refusedWith(new RegExp(`missing ${name}`)));
    }
    assert.throws(
      () => verifyWebhook({ headers: { ...headers, 'webhook-id': [VECTOR.id, 'x'] }, body: VECTOR.body, secret: VECTOR.secret, now }),
      refusedWith(/missing webhook-id/),
    );
    for (const stamp of ['1614265330.5', '-1614265330', '0x60', 'now', '1'.repeat(13)]) {
      assert.throws(
        () => verifyWebhook({ headers: { ...headers, 'webhook-timestamp': stamp }, body: VECTOR.body, secret: VECTOR.secret, now }),
        refusedWith(/unix seconds/),
      );
    }
  });
});

describe('ReplayGuard and the receiver', () => {
  test('remembers ids within the window, forgets them after', () => {
    const guard = new ReplayGuard({ toleranceSeconds: 1 });
    assert.equal(guard.firstTime('a', 0), true);
    assert.equal(guard.firstTime('a', 1000), false);
    assert.equal(guard.firstTime('b', 1500), true);
    assert.equal(guard.firstTime('a', 2001), true, 'after twice the tolerance the id is forgotten');
    assert.equal(guard.size, 2);
  });

  test('is bounded', () => {
    const guard = new ReplayGuard({ max: 3 });
    for (const id of ['a', 'b', 'c', 'd']) guard.firstTime(id, 0);
    assert.equal(guard.size, 3);
    assert.equal(guard.firstTime('a', 0), true, 'the oldest was dropped');
  });

  test('a receiver accepts once, reports duplicates, refuses forgeries without remembering them', () => {
    const secret = generateSecret();
    const receive = createWebhookReceiver({ secret });
    const body = JSON.stringify({ type: 'asset.created', timestamp: new Date().toISOString(), data: { subject: 'imagine://h/images/x' } });
    const headers = signWebhook({ id: 'msg_a', timestamp: Math.floor(Date.now() / 1000), body, secret });
    const forged = { ...headers, 'webhook-signature': `v1,${signatureOf('msg_a', headers['webhook-timestamp'], body, generateSecret())}` };
    assert.throws(() => receive(forged, body), refusedWith(/no webhook-signature/));
    const first = receive(headers, body);
    assert.equal(first.status, 'accepted');
    assert.equal(first.status === 'accepted' && first.message.type, 'asset.created');
    assert.deepEqual(receive(headers, body), { status: 'duplicate', id: 'msg_a' });
    const old = signWebhook({ id: 'msg_b', timestamp: Math.floor(Date.now() / 1000) - 600, body, secret });
    assert.throws(() => receive(old, body), refusedWith(/too old/));
  });
});

describe('retryDelay', () => {
  const options = { baseMs: 1000, maxMs: 60_000 };
  test('doubles per attempt, between half and all of the nominal delay', () => {
    assert.equal(retryDelay(1, { ...options, random: () => 0 }), 500);
    assert.equal(retryDelay(1, { ...options, random: () => 0.999999 }), 1000);
    assert.equal(retryDelay(2, { ...options, random: () => 0 }), 1000);
    assert.equal(retryDelay(4, { ...options, random: () => 0.5 }), 6000);
    for (let attempt = 1; attempt <= 10; attempt++) {
      const nominal = Math.min(60_000, 1000 * 2 ** (attempt - 1));
      for (let i = 0; i < 20; i++) {
        const d = retryDelay(attempt, options);
        assert.ok(d >= nominal / 2 && d <= nominal, `attempt ${attempt}: ${d}`);
      }
    }
  });

  test('is capped, even for absurd attempt numbers', () => {
    assert.equal(retryDelay(500, { ...options, random: () => 0.999999 }), 60_000);
    assert.equal(retryDelay(0, { ...options, random: () => 0 }), 500);
  });
});
