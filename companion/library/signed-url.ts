/**
 * Short-lived signed URLs for originals and renditions.
 *
 * A signed URL is the resource path plus four query parameters, and nothing else:
 *
 *   <path>?v=<version>&exp=<unix seconds>&kid=<key id>&sig=<base64url(HMAC-SHA256(secret, C))>
 *
 *   C = "IMAGINE-URL-V1" LF METHOD LF path LF version LF exp LF kid
 *
 * `path` is the path exactly as it travels on the wire (percent-encoded, never normalised), so
 * the signature covers the same bytes the router sees. This is why `verify()` takes the path
 * from the request target as sent and not from `URL.pathname`: the WHATWG parser resolves
 * `/files/%2e%2e/x` to `/x`, and a signature checked against one form while the router acts on
 * the other is the kind of gap thumbor's CVE-2026-53501 went through. The query is read with
 * the URL parser, never by string replacement. A signature for GET also allows HEAD.
 *
 * Every failure is `ERR_SIGNATURE_INVALID` with one message, except a genuine signature whose
 * time has passed, which is `ERR_SIGNATURE_EXPIRED` (said only after the HMAC matched, so a
 * forged URL never learns more than "invalid").
 *
 * @example
 *   const signer = new UrlSigner({ keys: await loadOrCreateSigningKeys(dataDir), ttlSeconds: 300, clockSkewSeconds: 60 });
 *   const { url } = signer.sign({ method: 'GET', path: '/v1/assets/a1/original', version: 'v3' });
 *   signer.verify({ method: request.method, rawUrl: request.url }); // → { version: 'v3' }
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';

export interface SigningKey {
  id: string;
  /** 32 random bytes. */
  secret: Uint8Array;
}

export interface UrlSignerOptions {
  /** The first key signs; all of them verify (so a rotated-out key keeps working while listed). */
  keys: SigningKey[];
  /** Life of a signed URL, in seconds. */
  ttlSeconds: number;
  /** Tolerated clock difference between signer and verifier, in seconds. */
  clockSkewSeconds: number;
  /** Current time in milliseconds (injected for tests). */
  now?: () => number;
}

export interface SignInput {
  method: string;
  /** Starts with '/', already percent-encoded, no query or fragment. */
  path: string;
  version: string;
}

const PREFIX = 'IMAGINE-URL-V1';
const PARAMS = ['v', 'exp', 'kid', 'sig'] as const;
const SECRET_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const METHOD = /^[A-Z]{1,16}$/;
/** Visible ASCII without '?' and '#': what a path can be on the wire. */
const WIRE_PATH = /^\/[\x21-\x22\x24-\x3e\x40-\x7e]*$/;
const VERSION = /^[\x21-\x7e]{1,256}$/;
const EXP = /^(0|[1-9][0-9]{0,11})$/;
const SIG = /^[A-Za-z0-9_-]{43}$/;
const BASE = 'http://x';
const INVALID = 'signed URL is not valid';

function invalid(): ProtocolError {
  return new ProtocolError('ERR_SIGNATURE_INVALID', INVALID);
}

function canonical(method: string, path: string, version: string, exp: string, kid: string): string {
  return `${PREFIX}\n${method}\n${path}\n${version}\n${exp}\n${kid}`;
}

interface ParsedUrl {
  path: string;
  version: string;
  exp: string;
  kid: string;
  sig: Buffer;
}

/** Reads a request target; undefined for anything that is not exactly a signed URL's shape. */
function parseSignedUrl(rawUrl: string): ParsedUrl | undefined {
  if (typeof rawUrl !== 'string' || rawUrl.includes('#')) return undefined;
  let url: URL;
  try {
    url = new URL(rawUrl, BASE);
  } catch {
    return undefined;
  }
  // Origin-form only: `//host/...`, `/\host`, or an absolute URL would land elsewhere.
  if (url.origin !== BASE) return undefined;
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (!WIRE_PATH.test(path) || path.startsWith('//')) return undefined;

  const params = url.searchParams;
  // Exactly the four known names, each once: no duplicates, no extras.
  if ([...params.keys()].length !== PARAMS.length) return undefined;
  const values: string[] = [];
  for (const name of PARAMS) {
    const all = params.getAll(name);
    if (all.length !== 1) return undefined;
    values.push(all[0]!);
  }
  const [version, exp, kid, sigText] = values as [string, string, string, string];
  if (!VERSION.test(version) || !EXP.test(exp) || !KEY_ID.test(kid) || !SIG.test(sigText)) return undefined;
  const sig = Buffer.from(sigText, 'base64url');
  // Buffer's decoder is lenient: re-encoding rejects non-canonical trailing bits.
  if (sig.length !== SECRET_BYTES || sig.toString('base64url') !== sigText) return undefined;
  return { path, version, exp, kid, sig };
}

function assertInteger(value: number, name: string, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Signs and verifies URLs with HMAC-SHA256 keys. */
export class UrlSigner {
  readonly #keys: Map<string, Buffer>;
  readonly #current: string;
  readonly #ttl: number;
  readonly #skew: number;
  readonly #now: () => number;
  /** Used for unknown key ids so the work done does not depend on whether the id exists. */
  readonly #decoy = randomBytes(SECRET_BYTES);

  constructor(options: UrlSignerOptions) {
    const { keys, ttlSeconds, clockSkewSeconds } = options;
    if (!Array.isArray(keys) || keys.length === 0) throw new TypeError('keys must list at least one key');
    assertInteger(ttlSeconds, 'ttlSeconds', 1);
    assertInteger(clockSkewSeconds, 'clockSkewSeconds', 0);
    this.#keys = new Map();
    for (const key of keys) {
      if (!KEY_ID.test(key.id)) throw new TypeError(`key id must match ${KEY_ID}, got ${JSON.stringify(key.id)}`);
      if (!(key.secret instanceof Uint8Array) || key.secret.length !== SECRET_BYTES) {
        throw new TypeError(`key "${key.id}" must have a ${SECRET_BYTES}-byte secret`);
      }
      if (this.#keys.has(key.id)) throw new TypeError(`key id "${key.id}" is listed twice`);
      this.#keys.set(key.id, Buffer.from(key.secret));
    }
    this.#current = keys[0]!.id;
    this.#ttl = ttlSeconds;
    this.#skew = clockSkewSeconds;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Signs a path for one method. Sign GET to allow GET and HEAD.
   * @example signer.sign({ method: 'GET', path: '/v1/assets/a1/original', version: 'v3' })
   */
  sign(input: SignInput): { url: string; expires: Date } {
    const method = String(input.method).toUpperCase();
    if (!METHOD.test(method)) throw new TypeError(`method must be an HTTP method, got ${JSON.stringify(input.method)}`);
    if (method === 'HEAD') throw new TypeError('sign GET: a GET signature also allows HEAD');
    const { path, version } = input;
    if (typeof path !== 'string' || !WIRE_PATH.test(path) || path.startsWith('//')) {
      throw new TypeError(`path must be a percent-encoded absolute path without query, got ${JSON.stringify(path)}`);
    }
    if (typeof version !== 'string' || !VERSION.test(version)) {
      throw new TypeError(`version must be 1-256 printable ASCII characters, got ${JSON.stringify(version)}`);
    }
    const exp = String(Math.floor(this.#now() / 1000) + this.#ttl);
    const kid = this.#current;
    const sig = this.#mac(this.#keys.get(kid)!, canonical(method, path, version, exp, kid));
    const query = new URLSearchParams({ v: version, exp, kid, sig: sig.toString('base64url') });
    return { url: `${path}?${query}`, expires: new Date(Number(exp) * 1000) };
  }

  /**
   * Checks a request target (`request.url`: path and query as received). Returns the signed
   * version; throws ERR_SIGNATURE_EXPIRED for a genuine but outdated URL and
   * ERR_SIGNATURE_INVALID for anything else.
   */
  verify(input: { method: string; rawUrl: string }): { version: string } {
    let method = String(input.method).toUpperCase();
    if (method === 'HEAD') method = 'GET';
    const parsed = parseSignedUrl(input.rawUrl);
    if (!parsed || !METHOD.test(method)) throw invalid();

    const secret = this.#keys.get(parsed.kid);
    const message = canonical(method, parsed.path, parsed.version, parsed.exp, parsed.kid);
    const expected = this.#mac(secret ?? this.#decoy, message);
    const macOk = timingSafeEqual(expected, parsed.sig);
    if (!macOk || secret === undefined) throw invalid();

    const nowMs = this.#now();
    const exp = Number(parsed.exp);
    if (nowMs > (exp + this.#skew) * 1000) {
      throw new ProtocolError('ERR_SIGNATURE_EXPIRED', 'signed URL has expired');
    }
    // Nothing this signer makes lives longer than ttl: a far expiry means a key was misused.
    if (exp * 1000 > nowMs + (this.#ttl + this.#skew) * 1000) throw invalid();
    return { version: parsed.version };
  }

  #mac(secret: Buffer, message: string): Buffer {
    return createHmac('sha256', secret).update(message, 'utf8').digest();
  }
}

interface KeysFile {
  keys: { id: string; secret: string; created?: string }[];
}

function keysFileError(path: string, why: string, cause?: unknown): ProtocolError {
  return new ProtocolError('ERR_CONFIG_INVALID', `URL signing keys in ${path}: ${why}`, { cause });
}

function parseKeysFile(path: string, text: string): SigningKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw keysFileError(path, 'not JSON', error);
  }
  const list = (doc as Partial<KeysFile> | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) {
    throw keysFileError(path, 'expected { "keys": [ ... ] } with at least one key');
  }
  const seen = new Set<string>();
  return list.map((entry, i) => {
    const id = (entry as { id?: unknown })?.id;
    const secretText = (entry as { secret?: unknown })?.secret;
    if (typeof id !== 'string' || !KEY_ID.test(id) || seen.has(id)) {
      throw keysFileError(path, `key ${i} has a missing, invalid or repeated id`);
    }
    seen.add(id);
    const secret = typeof secretText === 'string' ? Buffer.from(secretText, 'base64url') : Buffer.alloc(0);
    if (secret.length !== SECRET_BYTES || secret.toString('base64url') !== secretText) {
      throw keysFileError(path, `key "${id}" must have a ${SECRET_BYTES}-byte base64url secret`);
    }
    return { id, secret };
  });
}

/** A fresh key with a random id. */
export function createSigningKey(): SigningKey {
  return { id: randomBytes(6).toString('hex'), secret: randomBytes(SECRET_BYTES) };
}

/**
 * Reads the URL signing keys from `<dataDir>/keys/url-signing.json`, creating the file with one
 * random key on first use (directory 0700, file 0600, written to a temp file and renamed into
 * place). To rotate, put a new key first in the file and keep the old one after it for at
 * least the URL lifetime. Assumes one process per data directory (the catalog lock).
 */
export async function loadOrCreateSigningKeys(dataDir: string): Promise<SigningKey[]> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'url-signing.json');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);

  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text !== undefined) {
    const keys = parseKeysFile(file, text);
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    return keys;
  }

  const key = createSigningKey();
  const doc: KeysFile = {
    keys: [{ id: key.id, secret: Buffer.from(key.secret).toString('base64url'), created: new Date().toISOString() }],
  };
  const tmp = join(dir, `.url-signing.${randomUUID()}.tmp`);
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  return [key];
}
