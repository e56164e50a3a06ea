/**
 * What every protocol API route needs from a request: who is acting (from the bearer token)
 * and the origin to present URIs and URLs with.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProtocolError } from '../../shared/errors.ts';
import { requestOrigin } from '../http/origin.ts';
import { parseBearer, type Actor } from '../library/auth.ts';
import type { PresentContext } from '../library/present.ts';
import { assetPrivacyPolicy, privacyPolicyFor } from '../metadata/privacy.ts';
import { authenticatePeer, isPeerAuthorization, type PeerCaller } from '../federation/peer-actor.ts';
import type { LibraryServices } from '../library/services.ts';
import type { Config } from '../config.ts';
import { PROBLEM_CONTENT_TYPE } from '../../shared/errors.ts';
import { ProblemDocument } from '../../shared/schemas/problem.ts';

export const API_PREFIX = '/api/v1';
export const IIIF_PREFIX = '/iiif';

declare module 'fastify' {
  interface FastifyRequest {
    actor: Actor;
    /** Set when a trusted peer server signed the request (`Authorization: Peer ...`). */
    peer: PeerCaller | undefined;
    /** Set on `/guest/` routes for a guest signed in with an e-mailed link (routes/guests.ts). */
    guest: { identity: string; expires: string } | undefined;
  }
}

export interface ApiOptions {
  config: Config;
  services: LibraryServices;
}

/** Authenticates every request of the plugin it is called in. */
export function installActor(app: FastifyInstance, services: LibraryServices): void {
  app.decorateRequest('actor', undefined);
  app.decorateRequest('peer', undefined);
  app.addHook('onRequest', async (request) => {
    const federation = request.server.federation;
    if (federation && isPeerAuthorization(request.headers.authorization)) {
      const origin = requestOrigin(request, federation.publicOrigin);
      const { actor, peer } = await authenticatePeer(request, federation, origin, (identity) =>
        services.library.sharesOf(identity),
      );
      request.actor = actor;
      request.peer = peer;
      return;
    }
    request.actor = services.auth.authenticate(parseBearer(request.headers.authorization));
  });
}

export function presentContext(request: FastifyRequest, config: Config): PresentContext {
  const origin = requestOrigin(request, config.publicOrigin);
  const ctx: PresentContext = { origin, apiBase: `${origin}${API_PREFIX}`, iiifBase: `${origin}${IIIF_PREFIX}` };
  // Signed-in readers are members of what they read; anonymous callers get the public policy.
  // Anonymous callers are the public; other servers and their users read as guests. Both get
  // the location their collections allow (by default none); members see everything.
  // Guests invited by e-mail read as guests too.
  const audience = !request.actor ? 'public' : request.peer || request.guest ? 'guest' : undefined;
  if (audience) {
    ctx.privacy = privacyPolicyFor(audience);
    const library = request.server.library?.library;
    if (library) {
      ctx.privacyOf = (asset) =>
        assetPrivacyPolicy(audience, asset.collections.map((id) => library.findCollection(id)?.privacy));
    }
  }
  return ctx;
}

/** The version id in an If-Match header: `"v3"` (a bare `v3` is accepted too). */
export function parseIfMatch(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '' ) return undefined;
  if (value === '*' || value.includes(',')) {
    throw new ProtocolError('ERR_PRECONDITION_REQUIRED', 'If-Match must name exactly one base version');
  }
  if (value.startsWith('W/')) {
    throw new ProtocolError('ERR_PRECONDITION_FAILED', 'a weak entity tag cannot name a base version');
  }
  const quoted = /^"([^"]*)"$/.exec(value);
  return quoted ? quoted[1] : value;
}

/** `Content-Digest: sha-256=:<base64>:` (RFC 9530) as hex; undefined when absent or not sha-256. */
export function parseContentDigest(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const member of header.split(',')) {
    const match = /^\s*sha-256\s*=\s*:([A-Za-z0-9+/=]*):\s*$/i.exec(member);
    if (!match) continue;
    const bytes = Buffer.from(match[1]!, 'base64');
    if (bytes.length !== 32) throw new ProtocolError('ERR_BAD_REQUEST', 'Content-Digest sha-256 must be 32 bytes');
    return bytes.toString('hex');
  }
  if (/sha-256/i.test(header)) throw new ProtocolError('ERR_BAD_REQUEST', 'malformed Content-Digest');
  return undefined;
}

/** A percent-encoded UTF-8 header value (file names, comments). */
export function decodeHeader(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ProtocolError(
      name === 'Imagine-Filename' ? 'ERR_FILENAME_INVALID' : 'ERR_BAD_REQUEST',
      `${name} must be percent-encoded UTF-8`,
    );
  }
}

export function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Response schemas for error statuses: RFC 9457 problem documents. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: 'Problem document', content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemDocument } } },
    ]),
  );
}

/** Response schema of a route that answers with file bytes. */
export function fileResponse(description: string, contentType = 'application/octet-stream') {
  return { description, content: { [contentType]: { schema: { type: 'string', format: 'binary' } } } };
}
