/**
 * Standard Webhooks v1 (https://www.standardwebhooks.com/), the signing scheme of every
 * delivery this server sends, and the checks a receiver makes. Pure functions over node:crypto.
 *
 * Grammar:
 *   secret            = "whsec_" base64(key)            ; key: 24-64 random bytes
 *   webhook-id        = 1*256 printable ASCII            ; same on every retry of a message
 *   webhook-timestamp = 1*12 DIGIT                       ; unix seconds of this attempt
 *   webhook-signature = sig *(" " sig)                   ; several during a secret rotation
 *   sig               = "v1," base64(HMAC-SHA256(key, id "." timestamp "." body))
 *
 * A receiver accepts a message when one `v1` signature matches (compared in constant time) and
 * the timestamp is within the tolerance (5 minutes) of its clock, and processes each
 * `webhook-id` once (`ReplayGuard`).
 *
 * @example
 *   const secret = generateSecret();
 *   const headers = signWebhook({ id: 'msg_1', timestamp: nowSeconds(), body, secret });
 *   verifyWebhook({ headers, body, secret }); // { id: 'msg_1', timestamp }
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../../shared/errors.ts';

export const SECRET_PREFIX = 'whsec_';
/** Tolerance between the sender's timestamp and the receiver's clock, seconds. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const ID = /^[\x21-\x7e]{1,256}$/;
const TIMESTAMP = /^\d{1,12}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A new secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(bytes = 32): string {
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/** Whether a string is a secret this server accepts (prefixed, base64 of 24-64 bytes). */
export function isValidSecret(secret: unknown): secret is string {
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) return false;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) return false;
  const length = Buffer.from(encoded, 'base64').length;
  return length >= 24 && length <= 64;
}

/** The HMAC key of a secret: the bytes after `whsec_` (base64-decoded). */
export function secretKey(secret: string): Buffer {
  if (!isValidSecret(secret)) throw new ProtocolError('ERR_VALIDATION', 'a webhook secret is "whsec_" + base64 of 24-64 bytes');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/** base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`. */
export function signatureOf(id: string, timestamp: number | string, body: string | Uint8Array, secret: string): string {
  const hmac = createHmac('sha256', secretKey(secret));
  hmac.update(`${id}.${timestamp}.`);
  hmac.update(body);
  return hmac.digest('base64');
}

/** The three headers of one delivery attempt. */
export function signWebhook(input: { id: string; timestamp: number; body: string | Uint8Array; secret: string }): WebhookHeaders {
  if (!ID.test(input.id)) throw new ProtocolError('ERR_VALIDATION', 'webhook-id must be 1-256 printable ASCII characters');
  if (!Number.isSafeInteger(input.timestamp) || input.timestamp < 0) {
    throw new ProtocolError('ERR_VALIDATION', 'webhook-timestamp must be unix seconds');
  }
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': `v1,${signatureOf(input.id, input.timestamp, input.body, input.secret)}`,
  };
}

export interface VerifyWebhookInput {
  /** Request headers (lower-case names, as node gives them). */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body, exactly as received. */
  body: string | Uint8Array;
  /** The subscription's secret; several during a rotation. */
  secret: string | readonly string[];
  toleranceSeconds?: number;
  /** Unix seconds (tests). */
  now?: number;
}

function single(headers: VerifyWebhookInput['headers'], name: string): string {
  const value = headers[name];
  const text = Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
  if (text === undefined || text === '') throw invalid(`missing ${name} header`);
  return text;
}

function invalid(reason: string): ProtocolError {
  return new ProtocolError('ERR_WEBHOOK_SIGNATURE_INVALID', reason);
}

/**
 * Checks a received message. Returns its id and timestamp; throws ERR_WEBHOOK_SIGNATURE_INVALID
 * (with the reason) when a header is missing or malformed, the timestamp is outside the
 * tolerance, or no `v1` signature matches.
 */
export function verifyWebhook(input: VerifyWebhookInput): { id: string; timestamp: number } {
  const id = single(input.headers, 'webhook-id');
  const stamp = single(input.headers, 'webhook-timestamp');
  const signatures = single(input.headers, 'webhook-signature');
  if (!ID.test(id)) throw invalid('webhook-id is malformed');
  if (!TIMESTAMP.test(stamp)) throw invalid('webhook-timestamp is not unix seconds');
  const timestamp = Number(stamp);
  const now = input.now ?? nowSeconds();
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (timestamp < now - tolerance) throw invalid(`webhook-timestamp is too old (${now - timestamp} s)`);
  if (timestamp > now + tolerance) throw invalid(`webhook-timestamp is in the future (${timestamp - now} s)`);
  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  const expected = secrets.map((secret) => Buffer.from(signatureOf(id, timestamp, input.body, secret), 'base64'));
  let matched = false;
  for (const part of signatures.split(' ').slice(0, 16)) {
    const comma = part.indexOf(',');
    if (comma < 0 || part.slice(0, comma) !== 'v1') continue;
    const encoded = part.slice(comma + 1);
    if (!BASE64.test(encoded)) continue;
    const given = Buffer.from(encoded, 'base64');
    // Every candidate is compared (no early exit), each in constant time.
    for (const want of expected) if (given.length === want.length && timingSafeEqual(given, want)) matched = true;
  }
  if (!matched) throw invalid('no webhook-signature matches');
  return { id, timestamp };
}

/**
 * What a receiver remembers to process each `webhook-id` once: ids seen within the tolerance
 * window (a message older than that is refused by its timestamp anyway), at most `max` of them.
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: { toleranceSeconds?: number; max?: number } = {}) {
    // Twice the tolerance: a message may come that much earlier or later than our clock.
    this.#ttlMs = 2 * (options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS) * 1000;
    this.#max = options.max ?? 100_000;
  }

  /** True the first time an id is seen (and remembers it), false for a repeat. */
  firstTime(id: string, nowMs = Date.now()): boolean {
    this.#sweep(nowMs);
    const expires = this.#seen.get(id);
    if (expires !== undefined && expires > nowMs) return false;
    if (this.#seen.size >= this.#max) {
      const oldest = this.#seen.keys().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
    this.#seen.set(id, nowMs + this.#ttlMs);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }

  #sweep(nowMs: number): void {
    // Insertion order is expiry order (one ttl for all), so stop at the first live entry.
    for (const [id, expires] of this.#seen) {
      if (expires > nowMs) break;
      this.#seen.delete(id);
    }
  }
}
