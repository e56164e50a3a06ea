/**
 * Signed server-to-server requests. The caller sends `Authorization: Peer <JWT>`: a token of
 * about 60 s signed with its federation key, with
 *
 *   iss  the caller's origin          aud  the receiver's origin
 *   sub  the acting user (name@domain), when one acts
 *   iat, exp (required), jti (remembered by the receiver until exp, across its restarts:
 *                             no replay; see seen-tokens.ts)
 *   htm  the HTTP method              htu  the full request URL
 *   bh   base64url SHA-256 of the request body (of nothing for a bodiless request)
 *
 * The receiver finds the issuer's keys through its discovery document (`endpoints.jwks`, same
 * origin only), caches them, and refetches once for an unknown key id (jose's remote JWKS).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
} from 'jose';
import { ProtocolError } from '../../shared/errors.ts';
import { parseOrigin } from '../../shared/origin.ts';
import type { DiscoveryResolver } from '../../shared/discovery.ts';
import { formatIdentity, parseIdentity } from '../../shared/identity.ts';
import type { ServerKeys } from './keys.ts';
import type { Peer, PeerStore } from './peers.ts';
import { SeenTokens } from './seen-tokens.ts';

export const PEER_AUTH_SCHEME = 'Peer';
export const TOKEN_LIFE_SECONDS = 60;
/** Tokens claiming a longer life than this are refused whatever their signature. */
const MAX_TOKEN_LIFE_SECONDS = 300;
export const CLOCK_TOLERANCE_SECONDS = 30;
/** A jti is printable ASCII without spaces, at most this long (it is journaled as is). */
const JTI = /^[\x21-\x7e]{1,200}$/;
const ALGORITHMS = ['EdDSA', 'ES256'];

export function bodyHash(body: Uint8Array | string | undefined): string {
  return createHash('sha256').update(body ?? '').digest('base64url');
}

export interface SignPeerRequestOptions {
  keys: ServerKeys;
  /** This server's origin. */
  issuer: string;
  /** The receiver's origin. */
  audience: string;
  method: string;
  url: string;
  body?: Uint8Array | string;
  /** The acting user, `name@domain`. */
  subject?: string;
}

/** A token for one request; use each token once. */
export async function signPeerRequest(options: SignPeerRequestOptions): Promise<string> {
  const { kid, alg, key } = options.keys.current();
  const jwt = new SignJWT({ htm: options.method.toUpperCase(), htu: options.url, bh: bodyHash(options.body) })
    .setProtectedHeader({ alg, kid, typ: 'imagine-request+jwt' })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt()
    .setExpirationTime(`${TOKEN_LIFE_SECONDS}s`)
    .setJti(randomUUID());
  if (options.subject) jwt.setSubject(options.subject);
  return jwt.sign(key);
}

export interface VerifiedPeerRequest {
  /** The calling server's origin. */
  issuer: string;
  /** The acting user, when one acts. */
  subject?: string;
  /** The trust entry (absent when trust was not required). */
  peer?: Peer;
}

export interface PeerRequestToVerify {
  authorization: string | undefined;
  method: string;
  /** The full URL as this server sees it (its origin + the request path and query). */
  url: string;
  body?: Uint8Array | string;
}

export interface PeerVerifierOptions {
  peers: PeerStore;
  resolver: DiscoveryResolver;
  fetch?: typeof fetch;
  now?: () => number;
  /**
   * Least time between two fetches of one issuer's JWKS (default 1 s): a token with an unknown
   * key id (a peer just rotated) refetches once. Only trusted issuers get this far.
   */
  jwksCooldownMs?: number;
  /** Where accepted tokens are remembered (default: in memory only). */
  seen?: SeenTokens;
}

export class PeerVerifier {
  readonly #peers: PeerStore;
  readonly #resolver: DiscoveryResolver;
  readonly #jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  /** Tokens accepted, kept until they expire. */
  readonly #seen: SeenTokens;
  readonly #now: () => number;
  readonly #cooldownMs: number;

  constructor(options: PeerVerifierOptions) {
    this.#cooldownMs = options.jwksCooldownMs ?? 1_000;
    this.#peers = options.peers;
    this.#resolver = options.resolver;
    this.#now = options.now ?? Date.now;
    this.#seen = options.seen ?? new SeenTokens(undefined, { now: this.#now, graceMs: CLOCK_TOLERANCE_SECONDS * 1000 });
  }

  /**
   * Verifies a signed request addressed to `audience`. With `requireTrust` (the default) the
   * issuer must be an approved peer: ERR_PEER_UNKNOWN otherwise, before any key is fetched.
   */
  async verify(
    request: PeerRequestToVerify,
    audience: string,
    options: { requireTrust?: boolean } = {},
  ): Promise<VerifiedPeerRequest> {
    const token = bearerOf(request.authorization);
    let issuer: string;
    try {
      const claims = decodeJwt(token);
      decodeProtectedHeader(token);
      issuer = parseOrigin(String(claims.iss ?? ''), { allowInsecure: true });
    } catch (error) {
      throw invalid('the token is not a JWT with an issuer origin', error);
    }
    let peer: Peer | undefined;
    if (options.requireTrust !== false) {
      peer = await this.#peers.trusted(issuer);
      if (!peer) throw new ProtocolError('ERR_PEER_UNKNOWN', `${issuer} is not a trusted peer of this server`);
    }
    const payload = await this.#verifySignature(token, issuer, audience);
    if (payload.htm !== request.method.toUpperCase()) throw invalid(`token is bound to ${String(payload.htm)}, not ${request.method}`);
    if (payload.htu !== request.url) throw invalid('token is bound to another URL');
    if (payload.bh !== bodyHash(request.body)) throw invalid('token is bound to another body');
    // Checked and remembered in one synchronous step: two concurrent uses cannot both pass.
    if (typeof payload.jti !== 'string' || !JTI.test(payload.jti)) throw invalid('jti must be printable ASCII without spaces, at most 200 characters');
    const seenKey = `${issuer} ${payload.jti}`;
    if (this.#seen.has(seenKey)) throw new ProtocolError('ERR_PEER_TOKEN_REPLAYED', 'this token was already used');
    this.#seen.remember(seenKey, Number(payload.exp) * 1000);
    let subject: string | undefined;
    if (payload.sub !== undefined) {
      try {
        subject = formatIdentity(parseIdentity(String(payload.sub)));
      } catch (error) {
        throw invalid('sub is not a name@domain identity', error);
      }
    }
    return { issuer, ...(subject ? { subject } : {}), ...(peer ? { peer } : {}) };
  }

  async #verifySignature(token: string, issuer: string, audience: string): Promise<JWTPayload> {
    const jwks = await this.#keysOf(issuer);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer,
        audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'iat', 'jti'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(this.#now()),
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) throw invalid(`${error.code}: ${error.message}`, error);
      throw error;
    }
    if (Number(payload.exp) - Number(payload.iat) > MAX_TOKEN_LIFE_SECONDS) {
      throw invalid(`token lives longer than ${MAX_TOKEN_LIFE_SECONDS} s`);
    }
    return payload;
  }

  async #keysOf(issuer: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const cached = this.#jwks.get(issuer);
    if (cached) return cached;
    const discovery = await this.#resolver.resolve(issuer);
    const jwksUrl = discovery.endpoints.jwks;
    if (!jwksUrl || new URL(jwksUrl, issuer).origin !== issuer) {
      throw invalid(`${issuer} publishes no JWKS on its own origin`);
    }
    const set = createRemoteJWKSet(new URL(jwksUrl, issuer), {
      timeoutDuration: 5_000,
      cooldownDuration: this.#cooldownMs,
      cacheMaxAge: 10 * 60_000,
    });
    this.#jwks.set(issuer, set);
    return set;
  }
}

function bearerOf(authorization: string | undefined): string {
  const match = /^Peer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(authorization ?? '');
  if (!match) throw invalid(`Authorization must be "${PEER_AUTH_SCHEME} <jwt>"`);
  return match[1]!;
}

function invalid(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError('ERR_PEER_TOKEN_INVALID', message, cause === undefined ? {} : { cause });
}
