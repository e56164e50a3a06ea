/**
 * Requests from trusted peers (`Authorization: Peer <jwt>`) on the protocol API. The peer must
 * hold the scope the route needs; it reads like a guest of this library: public collections,
 * and collections shared with the acting user `name@domain` (when the peer vouches for one).
 * Peers only read: anything but GET and HEAD is refused.
 */
import type { FastifyRequest } from 'fastify';
import { ProtocolError } from '../../shared/errors.ts';
import type { UserRecord } from '../library/records.ts';
import type { PeerScope } from './peers.ts';
import type { FederationServices } from './services.ts';
import { PEER_AUTH_SCHEME } from './signed-request.ts';

export interface PeerCaller {
  origin: string;
  subject?: string;
  scopes: PeerScope[];
}

export function isPeerAuthorization(header: string | undefined): boolean {
  return header !== undefined && header.startsWith(`${PEER_AUTH_SCHEME} `);
}

/** The scope a read of `path` needs, or undefined when peers may not use it. */
export function scopeForPath(path: string): PeerScope | undefined {
  if (/^\/api\/v1\/assets\/?$/.test(path)) return 'search';
  if (/^\/api\/v1\/changes\/?$/.test(path)) return 'sync';
  if (/^\/api\/v1\/assets\/[^/]+\/download\/?$/.test(path) || /^\/api\/v1\/files\//.test(path)) return 'import';
  if (/^\/api\/v1\/(assets|collections)(\/|$)/.test(path) || /^\/iiif\//.test(path)) return 'view';
  return undefined;
}

/**
 * Verifies a peer's signed request and returns the actor it acts as.
 * @throws ERR_PEER_UNKNOWN, ERR_PEER_TOKEN_INVALID, ERR_PEER_TOKEN_REPLAYED, ERR_FORBIDDEN
 */
export async function authenticatePeer(
  request: FastifyRequest,
  federation: FederationServices,
  ownOrigin: string,
  sharesOf: (identity: string) => Record<string, 'read' | 'write'> = () => ({}),
): Promise<{ actor: UserRecord; peer: PeerCaller }> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    throw new ProtocolError('ERR_FORBIDDEN', 'peers may only read');
  }
  const verified = await federation.verifier.verify(
    { authorization: request.headers.authorization, method: request.method, url: `${ownOrigin}${request.url}` },
    ownOrigin,
  );
  const peer = verified.peer!;
  const path = request.url.split('?')[0] ?? '';
  const scope = scopeForPath(path);
  if (!scope || !peer.scopes.includes(scope)) {
    throw new ProtocolError('ERR_FORBIDDEN', `${peer.domain} is not trusted to ${scope ?? 'use this route'}`);
  }
  const name = verified.subject ?? `server@${peer.domain}`;
  // Shares grant reading only, whatever they say: a remote user never writes here.
  const grants = Object.fromEntries(Object.keys(verified.subject ? sharesOf(verified.subject) : {}).map((id) => [id, 'read' as const]));
  return {
    actor: { name, admin: false, created: peer.decided ?? peer.requested, grants },
    peer: { origin: peer.origin, ...(verified.subject ? { subject: verified.subject } : {}), scopes: peer.scopes },
  };
}
