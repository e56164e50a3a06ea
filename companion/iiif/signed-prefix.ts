/**
 * Signed IIIF prefixes: `/iiif/s/{token}/3/{id}/…` opens the images of one asset for a
 * while, without a bearer token, so an <img> tag or a viewer can use them. The token sits in
 * the path, not the query, so every tile URL under it is stable and cacheable, and info.json
 * served through it names the same prefix, so a viewer's tile requests carry it too.
 *
 *   token = kid "." exp "." base64url(HMAC-SHA256(K, "IMAGINE-IIIF-V1" LF asset-id LF exp LF kid))
 *   K     = HMAC-SHA256(signing key secret, "imagine iiif prefix")   ; its own key per purpose
 *
 * `exp` (unix seconds) is rounded up to the hour, so the same prefix is handed out for an
 * hour and browser caches keep working. The signature covers the asset id, never a version
 * or request: it is a read grant for that asset's images, nothing more.
 *
 * @example
 *   const signer = new IiifSigner({ keys, ttlSeconds: 86_400 });
 *   const { token } = signer.sign('a1b2');
 *   signer.verify(token, 'a1b2'); // throws ERR_SIGNATURE_INVALID / ERR_SIGNATURE_EXPIRED
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../../shared/errors.ts';
import type { SigningKey } from '../library/signed-url.ts';

const TOKEN = /^([A-Za-z0-9_-]{1,64})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;
const BUCKET_SECONDS = 3600;

export interface IiifSignerOptions {
  keys: SigningKey[];
  ttlSeconds: number;
  now?: () => number;
}

export class IiifSigner {
  readonly #keys = new Map<string, Buffer>();
  readonly #current: string;
  readonly #ttl: number;
  readonly #now: () => number;

  constructor(options: IiifSignerOptions) {
    if (options.keys.length === 0) throw new Error('IiifSigner needs a key');
    for (const key of options.keys) {
      this.#keys.set(key.id, createHmac('sha256', Buffer.from(key.secret)).update('imagine iiif prefix').digest());
    }
    this.#current = options.keys[0]!.id;
    this.#ttl = options.ttlSeconds;
    this.#now = options.now ?? Date.now;
  }

  sign(assetId: string): { token: string; expires: Date } {
    const exp = Math.ceil((this.#now() / 1000 + this.#ttl) / BUCKET_SECONDS) * BUCKET_SECONDS;
    const sig = this.#mac(this.#keys.get(this.#current)!, assetId, exp, this.#current);
    return { token: `${this.#current}.${exp}.${sig.toString('base64url')}`, expires: new Date(exp * 1000) };
  }

  /** Checks a token for an asset; throws ERR_SIGNATURE_INVALID or (for a genuine, old one) ERR_SIGNATURE_EXPIRED. */
  verify(token: string, assetId: string): void {
    const match = TOKEN.exec(token);
    const key = match ? this.#keys.get(match[1]!) : undefined;
    if (!match || !key) throw new ProtocolError('ERR_SIGNATURE_INVALID', 'signature is not valid');
    const exp = Number(match[2]);
    const expected = this.#mac(key, assetId, exp, match[1]!);
    const given = Buffer.from(match[3]!, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ProtocolError('ERR_SIGNATURE_INVALID', 'signature is not valid');
    }
    if (exp * 1000 < this.#now()) throw new ProtocolError('ERR_SIGNATURE_EXPIRED', 'the signed prefix has expired');
  }

  #mac(key: Buffer, assetId: string, exp: number, kid: string): Buffer {
    return createHmac('sha256', key).update(`IMAGINE-IIIF-V1\n${assetId}\n${exp}\n${kid}`).digest();
  }
}
