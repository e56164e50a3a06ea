/**
 * Federation services of a library server: its keys, its peers, the verifier of signed
 * requests, and a fetch that signs requests to other servers.
 */
import { join } from 'node:path';
import { createDiscoveryResolver, type DiscoveryResolver } from '../../shared/discovery.ts';
import { FEDERATION_DIR, openServerKeys, type ServerKeys } from './keys.ts';
import { PeerStore } from './peers.ts';
import { SeenTokens } from './seen-tokens.ts';
import { CLOCK_TOLERANCE_SECONDS, PEER_AUTH_SCHEME, PeerVerifier, signPeerRequest } from './signed-request.ts';

/** Journal of the peer tokens this server accepted (seen-tokens.ts). */
export const SEEN_TOKENS_FILE = 'seen-tokens.log';

export interface SignedFetchInit {
  method?: string;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** The acting user, `name@domain`. */
  subject?: string;
  timeoutMs?: number;
}

export interface FederationServices {
  readonly keys: ServerKeys;
  readonly peers: PeerStore;
  readonly verifier: PeerVerifier;
  readonly resolver: DiscoveryResolver;
  /** The configured public origin, when set (else each request's own origin is used). */
  readonly publicOrigin: string | undefined;
  /** Calls another server with a fresh signed token (`issuer` = this server's origin). */
  signedFetch(issuer: string, url: string, init?: SignedFetchInit): Promise<Response>;
}

export interface OpenFederationOptions {
  fetch?: typeof fetch;
  resolver?: DiscoveryResolver;
  publicOrigin?: string;
}

export async function openFederation(dataDir: string, options: OpenFederationOptions = {}): Promise<FederationServices> {
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
  const resolver = options.resolver ?? createDiscoveryResolver({ fetch: doFetch, timeoutMs: 5_000 });
  const keys = await openServerKeys(dataDir);
  const peers = new PeerStore(dataDir);
  const seen = new SeenTokens(join(dataDir, FEDERATION_DIR, SEEN_TOKENS_FILE), { graceMs: CLOCK_TOLERANCE_SECONDS * 1000 });
  const verifier = new PeerVerifier({ peers, resolver, seen });
  return {
    keys,
    peers,
    verifier,
    resolver,
    publicOrigin: options.publicOrigin,
    async signedFetch(issuer, url, init = {}) {
      const method = (init.method ?? 'GET').toUpperCase();
      const audience = new URL(url).origin;
      const token = await signPeerRequest({ keys, issuer, audience, method, url, body: init.body, subject: init.subject });
      return doFetch(url, {
        method,
        body: init.body as BodyInit | undefined,
        headers: {
          ...init.headers,
          authorization: `${PEER_AUTH_SCHEME} ${token}`,
          ...(init.body !== undefined && !init.headers?.['content-type'] ? { 'content-type': 'application/json' } : {}),
        },
        signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
        redirect: 'error',
      });
    },
  };
}
