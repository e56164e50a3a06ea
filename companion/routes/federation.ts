/**
 * Federation routes of a library server:
 *
 *   GET  /.well-known/imagine/jwks.json      this server's public keys
 *   POST {api}/federation/requests            a server asks to be trusted (signed, body { scopes? })
 *   GET  {api}/federation/self                a server asks how this one sees it (signed)
 *   POST {api}/imports                        import (fork) an asset of a peer, with attribution
 *
 * Trust requests are recorded as pending; an administrator decides with `imagine peers`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { WELL_KNOWN_PATH } from '../../shared/discovery.ts';
import { ProtocolError } from '../../shared/errors.ts';
import type { Config } from '../config.ts';
import { requestOrigin } from '../http/origin.ts';
import type { FederationServices } from '../federation/services.ts';
import { parseScopes, PEER_SCOPES } from '../federation/peers.ts';
import { API_PREFIX } from './well-known.ts';
import { installActor, presentContext, problemResponses } from './api-context.ts';
import { Asset } from '../../shared/schemas/asset.ts';
import { presentAsset } from '../library/present.ts';
import type { LibraryServices } from '../library/services.ts';
import { importFromPeer } from '../federation/import.ts';

const TrustAnswer = Type.Object({
  origin: Type.String(),
  state: Type.String(),
  scopes: Type.Array(Type.String()),
});

const Jwks = Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) });

export async function federationRoutes(
  app: FastifyInstance,
  opts: { config: Config; federation: FederationServices; services: LibraryServices },
) {
  const { config, federation, services } = opts;

  app.register(async (api) => {
    installActor(api, services);
    api.post<{ Body: { uri: string; collection?: string } }>(
      `${API_PREFIX}/imports`,
      {
        schema: {
          tags: ['federation'],
          summary: 'Import (fork) an asset of a peer: rights checked, bytes verified, fork provenance written',
          body: Type.Object(
            {
              uri: Type.String({ minLength: 1, maxLength: 2048, description: 'imagine:// URI of the asset (optionally @version)' }),
              collection: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: Asset, 200: Asset, ...problemResponses(400, 401, 403, 404, 413, 502, 504) },
        },
      },
      async (request, reply) => {
        const { auth, library } = services;
        auth.require(auth.canCreateAsset(request.actor, request.body.collection), request.actor, 'import assets');
        const ctx = presentContext(request, config);
        const result = await importFromPeer({
          federation,
          library,
          issuer: ctx.origin,
          uri: request.body.uri,
          collection: request.body.collection,
          user: request.actor?.name,
          ...(request.actor ? { subject: `${request.actor.name}@${new URL(ctx.origin).host}` } : {}),
          maxBytes: config.maxUploadBytes,
        });
        request.log.info({ parent: result.parentUri, asset: result.asset.id, duplicate: result.duplicate }, 'imported');
        reply.code(result.duplicate ? 200 : 201);
        return presentAsset(result.asset, ctx);
      },
    );
  });

  app.get(
    `${WELL_KNOWN_PATH}/jwks.json`,
    {
      schema: {
        tags: ['federation'],
        summary: "This server's public keys (JWKS) for verifying its signed server-to-server requests",
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300').header('access-control-allow-origin', '*');
      return federation.keys.jwks();
    },
  );

  // Signed bodies are verified against their exact bytes, so JSON is parsed here, not by fastify.
  app.register(async (signed) => {
    signed.removeContentTypeParser('application/json');
    signed.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    const verify = (request: FastifyRequest) =>
      federation.verifier.verify(
        {
          authorization: request.headers.authorization,
          method: request.method,
          url: `${requestOrigin(request, config.publicOrigin)}${request.url}`,
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
        },
        requestOrigin(request, config.publicOrigin),
        { requireTrust: false },
      );

    signed.post(
      `${API_PREFIX}/federation/requests`,
      {
        schema: {
          tags: ['federation'],
          summary: 'Ask this server to trust the calling server (signed request); recorded as pending',
          response: { 202: TrustAnswer, 200: TrustAnswer },
        },
      },
      async (request, reply) => {
        const { issuer } = await verify(request);
        let scopes = [...PEER_SCOPES] as string[];
        if (Buffer.isBuffer(request.body) && request.body.length > 0) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(request.body.toString('utf8'));
          } catch (error) {
            throw new ProtocolError('ERR_BAD_REQUEST', 'body is not JSON', { cause: error });
          }
          const asked = (parsed as { scopes?: unknown }).scopes;
          if (asked !== undefined) {
            if (!Array.isArray(asked) || !asked.every((s) => typeof s === 'string')) {
              throw new ProtocolError('ERR_VALIDATION', 'scopes must be an array of strings');
            }
            scopes = parseScopes(asked as string[]);
          }
        }
        const peer = await federation.peers.recordRequest(issuer, parseScopes(scopes));
        request.log.info({ peer: peer.origin, state: peer.state }, 'federation trust request');
        reply.code(peer.state === 'pending' ? 202 : 200);
        return { origin: peer.origin, state: peer.state, scopes: peer.scopes };
      },
    );

    signed.get(
      `${API_PREFIX}/federation/self`,
      {
        schema: {
          tags: ['federation'],
          summary: 'How this server sees the calling server: unknown, pending, approved or revoked',
          response: { 200: TrustAnswer },
        },
      },
      async (request) => {
        const { issuer } = await verify(request);
        const peer = await federation.peers.find('incoming', issuer);
        return { origin: issuer, state: peer?.state ?? 'unknown', scopes: peer?.scopes ?? [] };
      },
    );
  });
}
