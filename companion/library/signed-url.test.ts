import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProtocolError, type ErrorCode } from '../../shared/errors.ts';
import { UrlSigner, createSigningKey, loadOrCreateSigningKeys, type SigningKey, type UrlSignerOptions } from './signed-url.ts';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const TTL = 300;
const SKEW = 60;
const key1: SigningKey = { id: 'k1', secret: new Uint8Array(32).fill(1) };
const key2: SigningKey = { id: 'k2', secret: new Uint8Array(32).fill(2) };

function makeSigner(keys: SigningKey[] = [key1], clock = { ms: T0 }, extra: Partial<UrlSignerOptions> = {}) {
  return new UrlSigner({ keys, ttlSeconds: TTL, clockSkewSeconds: SKEW, now: () => clock.ms, ...extra });
}

function refuses(fn: () => unknown, code: ErrorCode = 'ERR_SIGNATURE_INVALID'): void {
  try {
    fn();
  } catch (error) {
    assert.ok(isProtocolError(error, code), `expected ${code}, got ${String(error)}`);
    return;
  }
  assert.fail(`expected ${code}`);
}

/** Rebuilds a signed URL with one query parameter changed (or removed with `null`). */
function withParam(url: string, name: string, value: string | null): string {
  const u = new URL(url, 'http://x');
  if (value === null) u.searchParams.delete(name);
  else u.searchParams.set(name, value);
  return `${url.slice(0, url.indexOf('?'))}?${u.searchParams}`;
}

function paramOf(url: string, name: string): string {
  return new URL(url, 'http://x').searchParams.get(name)!;
}

const PATH = '/v1/assets/a1/versions/v3/original';

describe('UrlSigner round trip', () => {
  test('a signed URL verifies and gives back its version', () => {
    const signer = makeSigner();
    const { url, expires } = signer.sign({ method: 'GET', path: PATH, version: 'v3' });
    assert.ok(url.startsWith(`${PATH}?`));
    assert.deepEqual([...new URL(url, 'http://x').searchParams.keys()], ['v', 'exp', 'kid', 'sig']);
    assert.equal(expires.getTime(), T0 + TTL * 1000);
    assert.equal(paramOf(url, 'exp'), String(T0 / 1000 + TTL));
    assert.deepEqual(signer.verify({ method: 'GET', rawUrl: url }), { version: 'v3' });
  });

  test('the signature is HMAC-SHA256 over the documented canonical string', () => {
    const { url } = makeSigner().sign({ method: 'get', path: PATH, version: 'v3' });
    const exp = T0 / 1000 + TTL;
    const expected = createHmac('sha256', key1.secret)
      .update(`IMAGINE-URL-V1\nGET\n${PATH}\nv3\n${exp}\nk1`)
      .digest('base64url');
    assert.equal(paramOf(url, 'sig'), expected);
  });

  test('HEAD is allowed by a GET signature; signing HEAD is refused', () => {
    const signer = makeSigner();
    const { url } = signer.sign({ method: 'GET', path: PATH, version: 'v3' });
    assert.deepEqual(signer.verify({ method: 'HEAD', rawUrl: url }), { version: 'v3' });
    assert.throws(() => signer.sign({ method: 'HEAD', path: PATH, version: 'v3' }), TypeError);
  });

  test('versions with reserved characters survive the query encoding', () => {
    const signer = makeSigner();
    const version = 'v1+2&x=y%z';
    const { url } = signer.sign({ method: 'GET', path: PATH, version });
    assert.deepEqual(signer.verify({ method: 'GET', rawUrl: url }), { version });
  });

  test('sign refuses paths that are not a wire path', () => {
    const signer = makeSigner();
    for (const path of ['relative', '//host/x', '/a?b', '/a#b', '/a b', '/caf\u00e9', '']) {
      assert.throws(() => signer.sign({ method: 'GET', path, version: 'v' }), TypeError, path);
    }
    assert.throws(() => signer.sign({ method: 'GET', path: PATH, version: '' }), TypeError);
    assert.throws(() => signer.sign({ method: 'GET', path: PATH, version: 'a\nb' }), TypeError);
  });

  test('constructor checks keys and durations', () => {
    assert.throws(() => makeSigner([]), TypeError);
    assert.throws(() => makeSigner([{ id: 'k', secret: new Uint8Array(16) }]), TypeError);
    assert.throws(() => makeSigner([key1, { ...key2, id: 'k1' }]), TypeError);
    assert.throws(() => makeSigner([{ ...key1, id: 'bad id' }]), TypeError);
    assert.throws(() => makeSigner([key1], { ms: T0 }, { ttlSeconds: 0 }), TypeError);
    assert.throws(() => makeSigner([key1], { ms: T0 }, { clockSkewSeconds: -1 }), TypeError);
  });
});

describe('UrlSigner refuses tampering with ERR_SIGNATURE_INVALID', () => {
  const signer = makeSigner([key1, key2]);
  const { url } = signer.sign({ method: 'GET', path: PATH, version: 'v3' });
  const query = url.slice(url.indexOf('?'));

  test('another path', () => {
    refuses(() => signer.verify({ method: 'GET', rawUrl: `/v1/assets/a2/versions/v3/original${query}` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${PATH}/${query}` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${PATH.toUpperCase()}${query}` }));
  });

  test('another version', () => {
    // The helper itself keeps a URL valid when nothing changes.
    assert.deepEqual(signer.verify({ method: 'GET', rawUrl: withParam(url, 'v', 'v3') }), { version: 'v3' });
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'v', 'v4') }));
  });

  test('another expiry', () => {
    const exp = Number(paramOf(url, 'exp'));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'exp', String(exp - 1)) }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'exp', `0${exp}`) }));
  });

  test('another key id, known or unknown', () => {
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'kid', 'k2') }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'kid', 'nope') }));
  });

  test('another signature', () => {
    const sig = paramOf(url, 'sig');
    const flipped = `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'sig', flipped) }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'sig', sig.slice(0, -1)) }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'sig', `${sig}A`) }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'sig', `${sig}=`) }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'sig', Buffer.from(sig, 'base64url').toString('base64')) }));
    // Same bytes, non-canonical last character (unused low bits set).
    const last = 'AEIMQUYcgkosw048'.includes(sig.at(-1)!) ? String.fromCharCode(sig.at(-1)!.charCodeAt(0) + 1) : 'A';
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'sig', `${sig.slice(0, -1)}${last}`) }));
  });

  test('another method', () => {
    refuses(() => signer.verify({ method: 'POST', rawUrl: url }));
    refuses(() => signer.verify({ method: 'DELETE', rawUrl: url }));
    const put = signer.sign({ method: 'PUT', path: PATH, version: 'v3' }).url;
    refuses(() => signer.verify({ method: 'GET', rawUrl: put }));
    assert.deepEqual(signer.verify({ method: 'PUT', rawUrl: put }), { version: 'v3' });
  });

  test('missing parameters', () => {
    for (const name of ['v', 'exp', 'kid', 'sig']) {
      refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, name, null) }));
    }
    refuses(() => signer.verify({ method: 'GET', rawUrl: PATH }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${PATH}?` }));
  });

  test('duplicated parameters, even with the same value', () => {
    for (const name of ['v', 'exp', 'kid', 'sig']) {
      refuses(() => signer.verify({ method: 'GET', rawUrl: `${url}&${name}=${encodeURIComponent(paramOf(url, name))}` }));
    }
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${url}&v=v4` }));
  });

  test('unknown parameters', () => {
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${url}&download=1` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${url}&=` }));
  });

  test('malformed exp values', () => {
    for (const exp of ['', '-1', '+1', '1.0', '1e9', ' 1', '0x10', '9999999999999']) {
      refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'exp', exp) }));
    }
  });

  test('targets that are not origin-form, or carry a fragment', () => {
    refuses(() => signer.verify({ method: 'GET', rawUrl: `http://evil.example${url}` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `//evil.example${url}` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `/\\evil.example${url}` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `${url}#frag` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: url.replace('?', '#?') }));
  });

  test('every structural failure carries the same message', () => {
    const messages = new Set<string>();
    for (const rawUrl of [withParam(url, 'v', 'v4'), withParam(url, 'kid', 'nope'), `${url}&x=1`, PATH, withParam(url, 'exp', 'x')]) {
      try {
        signer.verify({ method: 'GET', rawUrl });
      } catch (error) {
        messages.add((error as Error).message);
      }
    }
    assert.equal(messages.size, 1);
  });
});

describe('UrlSigner time', () => {
  test('expired after exp + skew, accepted within the skew', () => {
    const clock = { ms: T0 };
    const signer = makeSigner([key1], clock);
    const { url } = signer.sign({ method: 'GET', path: PATH, version: 'v3' });
    clock.ms = T0 + TTL * 1000;
    assert.deepEqual(signer.verify({ method: 'GET', rawUrl: url }), { version: 'v3' });
    clock.ms = T0 + (TTL + SKEW) * 1000;
    assert.deepEqual(signer.verify({ method: 'GET', rawUrl: url }), { version: 'v3' });
    clock.ms = T0 + (TTL + SKEW) * 1000 + 1;
    refuses(() => signer.verify({ method: 'GET', rawUrl: url }), 'ERR_SIGNATURE_EXPIRED');
    clock.ms = T0 + 86_400_000;
    refuses(() => signer.verify({ method: 'GET', rawUrl: url }), 'ERR_SIGNATURE_EXPIRED');
  });

  test('an expired URL with a bad signature is invalid, not expired', () => {
    const clock = { ms: T0 };
    const signer = makeSigner([key1], clock);
    const { url } = signer.sign({ method: 'GET', path: PATH, version: 'v3' });
    clock.ms = T0 + 86_400_000;
    refuses(() => signer.verify({ method: 'GET', rawUrl: withParam(url, 'v', 'v4') }));
  });

  test('a signer whose clock runs ahead by up to the skew is accepted', () => {
    const clock = { ms: T0 + SKEW * 1000 };
    const ahead = makeSigner([key1], clock);
    const { url } = ahead.sign({ method: 'GET', path: PATH, version: 'v3' });
    assert.deepEqual(makeSigner([key1]).verify({ method: 'GET', rawUrl: url }), { version: 'v3' });
  });

  test('an expiry further than ttl + skew ahead is refused as invalid', () => {
    // Signed with a longer ttl by the same key: the signature is genuine, the expiry is not ours.
    const long = makeSigner([key1], { ms: T0 }, { ttlSeconds: TTL + SKEW + 1 });
    const { url } = long.sign({ method: 'GET', path: PATH, version: 'v3' });
    refuses(() => makeSigner().verify({ method: 'GET', rawUrl: url }));
    const edge = makeSigner([key1], { ms: T0 }, { ttlSeconds: TTL + SKEW }).sign({ method: 'GET', path: PATH, version: 'v3' });
    assert.deepEqual(makeSigner().verify({ method: 'GET', rawUrl: edge.url }), { version: 'v3' });
  });
});

describe('UrlSigner key rotation', () => {
  test('an old key verifies while listed, not after it is dropped', () => {
    const { url } = makeSigner([key1]).sign({ method: 'GET', path: PATH, version: 'v3' });
    const rotated = makeSigner([key2, key1]);
    assert.deepEqual(rotated.verify({ method: 'GET', rawUrl: url }), { version: 'v3' });
    assert.equal(paramOf(rotated.sign({ method: 'GET', path: PATH, version: 'v3' }).url, 'kid'), 'k2');
    refuses(() => makeSigner([key2]).verify({ method: 'GET', rawUrl: url }));
  });
});

describe('UrlSigner covers the exact wire path', () => {
  const signer = makeSigner();

  test('percent-encoded dot segments verify as given', () => {
    for (const path of ['/files/%2e%2e/x', '/files/%2E%2E/x', '/files/..%2fx', '/files/%2e%2e%2fetc%2fpasswd', '/a/./b', '/a/../b']) {
      const { url } = signer.sign({ method: 'GET', path, version: 'v1' });
      assert.deepEqual(signer.verify({ method: 'GET', rawUrl: url }), { version: 'v1' }, path);
    }
  });

  test('a signature for the normalised path does not cover a form that normalises to it', () => {
    // The URL parser resolves `/files/%2e%2e/x` to `/x`; the router would not.
    assert.equal(new URL('/files/%2e%2e/x', 'http://x').pathname, '/x');
    const { url } = signer.sign({ method: 'GET', path: '/x', version: 'v1' });
    const query = url.slice(url.indexOf('?'));
    for (const path of ['/files/%2e%2e/x', '/a/../x', '/./x', '/%78']) {
      refuses(() => signer.verify({ method: 'GET', rawUrl: `${path}${query}` }));
    }
  });

  test('and the reverse: a signature for the encoded form does not cover the decoded one', () => {
    const { url } = signer.sign({ method: 'GET', path: '/files/%2e%2e/x', version: 'v1' });
    const query = url.slice(url.indexOf('?'));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `/x${query}` }));
    refuses(() => signer.verify({ method: 'GET', rawUrl: `/files/../x${query}` }));
  });
});

describe('loadOrCreateSigningKeys', () => {
  test('creates a 0600 key file in a 0700 directory and reuses it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'imagine-keys-'));
    try {
      const first = await loadOrCreateSigningKeys(dataDir);
      assert.equal(first.length, 1);
      assert.equal(first[0]!.secret.length, 32);
      const file = join(dataDir, 'keys', 'url-signing.json');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal((await stat(join(dataDir, 'keys'))).mode & 0o777, 0o700);
      const second = await loadOrCreateSigningKeys(dataDir);
      assert.deepEqual(second.map((k) => [k.id, Buffer.from(k.secret).toString('hex')]), first.map((k) => [k.id, Buffer.from(k.secret).toString('hex')]));
      const doc = JSON.parse(await readFile(file, 'utf8')) as { keys: { id: string; secret: string }[] };
      assert.equal(doc.keys[0]!.secret, Buffer.from(first[0]!.secret).toString('base64url'));
      // No temp file left behind.
      const { readdir } = await import('node:fs/promises');
      assert.deepEqual(await readdir(join(dataDir, 'keys')), ['url-signing.json']);
      // The loaded keys sign and verify.
      const signer = new UrlSigner({ keys: second, ttlSeconds: 60, clockSkewSeconds: 0 });
      const { url } = signer.sign({ method: 'GET', path: '/x', version: '1' });
      assert.deepEqual(signer.verify({ method: 'GET', rawUrl: url }), { version: '1' });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('reads rotated keys in order and refuses a broken file', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'imagine-keys-'));
    try {
      const { mkdir, writeFile } = await import('node:fs/promises');
      await mkdir(join(dataDir, 'keys'));
      const file = join(dataDir, 'keys', 'url-signing.json');
      const a = createSigningKey();
      const b = createSigningKey();
      const entry = (k: SigningKey) => ({ id: k.id, secret: Buffer.from(k.secret).toString('base64url') });
      await writeFile(file, JSON.stringify({ keys: [entry(a), entry(b)] }), { mode: 0o644 });
      const keys = await loadOrCreateSigningKeys(dataDir);
      assert.deepEqual(keys.map((k) => k.id), [a.id, b.id]);
      assert.equal((await stat(file)).mode & 0o777, 0o600);

      for (const broken of ['not json', '{}', '{"keys":[]}', JSON.stringify({ keys: [{ id: 'k', secret: 'c2hvcnQ' }] }), JSON.stringify({ keys: [entry(a), entry(a)] })]) {
        await writeFile(file, broken);
        await assert.rejects(loadOrCreateSigningKeys(dataDir), (error) => isProtocolError(error, 'ERR_CONFIG_INVALID'));
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
