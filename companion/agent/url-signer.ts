/**
 * URLs the agent signs for itself, so an `<img>` in the panel can load a thumbnail from the
 * local API without the pairing token (an image request cannot carry an Authorization header).
 *
 *   <path>?<params>&exp=<unix seconds>&sig=<base64url(HMAC-SHA256(secret, C))>
 *
 *   C = "IMAGINE-AGENT-URL-V1" LF <the request target up to, not including, "&sig=">
 *
 * The signature covers the request target exactly as it travels (percent-encoding kept, never
 * normalised), so what is checked is what the router acts on. `sig` must be the last parameter
 * and appear once; `exp` must appear once. The secret (32 random bytes) lives in
 * `<data>/agent/url-secret` (0600) and never leaves the agent. Expiries are rounded up to the
 * hour, so the URL of a thumbnail stays the same for an hour and the panel's image cache hits.
 *
 * @example
 *   const signer = await AgentUrlSigner.open(agentDir);
 *   const url = signer.sign('/agent/v1/thumbs/images.example/a1/v3');
 *   signer.verify(request.url); // throws ERR_SIGNATURE_INVALID / ERR_SIGNATURE_EXPIRED
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';

export const URL_SECRET_FILE = 'url-secret';
const PREFIX = 'IMAGINE-AGENT-URL-V1\n';
const SIG = /^[A-Za-z0-9_-]{43}$/;
const EXP = /^[1-9][0-9]{0,11}$/;
/** Visible ASCII without '#': what a request target can be on the wire. */
const TARGET = /^\/[\x21-\x22\x24-\x7e]*$/;

export const AGENT_URL_DEFAULTS = Object.freeze({
  ttlSeconds: 24 * 3600, // a signed thumbnail URL lives about a day
  roundSeconds: 3600, // expiries rounded up to the hour: stable URLs, cache hits
  clockSkewSeconds: 60,
});

export interface AgentUrlSignerOptions {
  ttlSeconds?: number;
  now?: () => number;
}

function invalid(): ProtocolError {
  return new ProtocolError('ERR_SIGNATURE_INVALID', 'signed URL is not valid');
}

export class AgentUrlSigner {
  readonly #secret: Buffer;
  readonly #ttl: number;
  readonly #now: () => number;

  constructor(secret: Uint8Array, options: AgentUrlSignerOptions = {}) {
    if (secret.length !== 32) throw new TypeError('the URL secret must be 32 bytes');
    this.#secret = Buffer.from(secret);
    this.#ttl = options.ttlSeconds ?? AGENT_URL_DEFAULTS.ttlSeconds;
    this.#now = options.now ?? Date.now;
  }

  /** The signer of the agent whose folder is `agentDir` (its secret created on first use). */
  static async open(agentDir: string, options: AgentUrlSignerOptions = {}): Promise<AgentUrlSigner> {
    return new AgentUrlSigner(await loadOrCreateSecret(agentDir), options);
  }

  /**
   * Signs a request target (a path, percent-encoded, optionally with a query already) for GET.
   * @example signer.sign(`/agent/v1/iiif/image?url=${encodeURIComponent(u)}`)
   */
  sign(target: string): string {
    if (!TARGET.test(target) || target.startsWith('//')) {
      throw new TypeError(`target must be a percent-encoded absolute path, got ${JSON.stringify(target)}`);
    }
    const round = AGENT_URL_DEFAULTS.roundSeconds;
    const exp = Math.ceil((Math.floor(this.#now() / 1000) + this.#ttl) / round) * round;
    const signed = `${target}${target.includes('?') ? '&' : '?'}exp=${exp}`;
    return `${signed}&sig=${this.#mac(signed).toString('base64url')}`;
  }

  /**
   * Checks a request target as received (`request.url`). ERR_SIGNATURE_EXPIRED for a genuine
   * URL whose time has passed (said only after the HMAC matched); ERR_SIGNATURE_INVALID for
   * anything else.
   */
  verify(rawUrl: string): void {
    if (typeof rawUrl !== 'string' || !TARGET.test(rawUrl) || rawUrl.startsWith('//')) throw invalid();
    const at = rawUrl.lastIndexOf('&sig=');
    if (at === -1 || !rawUrl.includes('?') || rawUrl.indexOf('?') > at) throw invalid();
    const signed = rawUrl.slice(0, at);
    const sigText = rawUrl.slice(at + 5);
    if (!SIG.test(sigText)) throw invalid();
    const sig = Buffer.from(sigText, 'base64url');
    if (sig.length !== 32 || sig.toString('base64url') !== sigText) throw invalid();
    if (!timingSafeEqual(this.#mac(signed), sig)) throw invalid();
    const params = new URLSearchParams(signed.slice(signed.indexOf('?') + 1));
    const exps = params.getAll('exp');
    if (exps.length !== 1 || params.has('sig') || !EXP.test(exps[0]!)) throw invalid();
    const exp = Number(exps[0]);
    const now = this.#now() / 1000;
    if (now > exp + AGENT_URL_DEFAULTS.clockSkewSeconds) {
      throw new ProtocolError('ERR_SIGNATURE_EXPIRED', 'signed URL has expired');
    }
    if (exp > now + this.#ttl + AGENT_URL_DEFAULTS.roundSeconds + AGENT_URL_DEFAULTS.clockSkewSeconds) throw invalid();
  }

  #mac(signed: string): Buffer {
    return createHmac('sha256', this.#secret).update(PREFIX + signed, 'utf8').digest();
  }
}

async function loadOrCreateSecret(agentDir: string): Promise<Buffer> {
  const path = join(agentDir, URL_SECRET_FILE);
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const text = (await readFile(path, 'utf8')).trim();
      const secret = Buffer.from(text, 'base64url');
      if (secret.length === 32 && secret.toString('base64url') === text) return secret;
      if (text !== '') {
        throw new ProtocolError('ERR_CONFIG_INVALID', `${path} does not hold a 32-byte base64url secret; remove it`);
      }
      // Empty: another process is writing it right now.
      await new Promise((resolve) => setTimeout(resolve, 25));
      continue;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const secret = randomBytes(32);
    let handle;
    try {
      handle = await open(path, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    try {
      await handle.writeFile(`${secret.toString('base64url')}\n`, 'utf8');
      await handle.sync();
      await handle.close();
      await chmod(path, 0o600);
      return secret;
    } catch (error) {
      await handle.close().catch(() => {});
      await rm(path, { force: true });
      throw error;
    }
  }
  throw new ProtocolError('ERR_CONFIG_INVALID', `${path} could not be read or created`);
}
