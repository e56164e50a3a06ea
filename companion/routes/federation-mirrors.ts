/**
 * Collection mirrors (sync with a peer), both sides:
 *
 * The mirroring server (administrators):
 *   GET    {api}/federation/mirrors              mirrors and their state
 *   POST   {api}/federation/mirrors              { collection: "imagine://peer/collections/ID" }
 *   GET    {api}/federation/mirrors/{id}         one mirror
 *   POST   {api}/federation/mirrors/{id}/sync    read the peer's feed now
 *   DELETE {api}/federation/mirrors/{id}         stop mirroring (local copies stay)
 *   POST   {api}/federation/mirrors/{id}/hook    the peer's webhook hints (Standard Webhooks)
 *
 * The mirrored server (a trusted peer with the `sync` scope, signed request):
 *   POST   {api}/federation/subscriptions        { url, secret, collection, events }: the peer's own
 *                                                webhook subscription to one collection, URL on its origin
 *   DELETE {api}/federation/subscriptions/{id}   ends it (its own only)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { ProtocolError } from '../../shared/errors.ts';
import { ChangeEventType } from '../../shared/schemas/changes.ts';
import { checkSchema } from '../../shared/validate.ts';
import type { Config } from '../config.ts';
import type { EventServices } from '../events/services.ts';
import { isValidSecret } from '../events/standard-webhooks.ts';
import type { MirrorService } from '../federation/mirror-service.ts';
import type { FederationServices } from '../federation/services.ts';
import { requestOrigin } from '../http/origin.ts';
import type { LibraryServices } from '../library/services.ts';
import { API_PREFIX, installActor, problemResponses } from './api-context.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

const MirrorStatus = Type.Object(
  {
    id: Type.String(),
    uri: Type.String({ description: 'imagine:// URI of the mirrored collection' }),
    peer: Type.String(),
    collection: Type.String(),
    created: Type.String({ format: 'date-time' }),
    state: Type.Union([Type.Literal('waiting'), Type.Literal('copying'), Type.Literal('following'), Type.Literal('error')]),
    localCollection: Nullable(Type.String()),
    remoteName: Nullable(Type.String()),
    items: Type.Integer({ description: 'Assets mirrored' }),
    cursor: Nullable(Type.String()),
    subscription: Nullable(Type.Object({ id: Type.String(), created: Type.String() })),
    subscriptionError: Nullable(Type.Object({ code: Type.String(), message: Type.String(), at: Type.String() })),
    lastRun: Nullable(Type.Object({}, { additionalProperties: true })),
    lastError: Nullable(Type.Object({ code: Type.String(), message: Type.String(), at: Type.String() })),
    counters: Type.Object({}, { additionalProperties: true }),
  },
  { $id: 'CollectionMirror' },
);

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 40, pattern: '^[A-Za-z0-9_]+$' }) });

const SubscriptionRequest = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    secret: Type.String({ maxLength: 200 }),
    collection: Type.String({ minLength: 1, maxLength: 100 }),
    events: Type.Optional(Type.Array(ChangeEventType, { minItems: 1, maxItems: 6 })),
  },
  { additionalProperties: false },
);

const PeerSubscription = Type.Object({
  id: Type.String(),
  url: Type.String(),
  collection: Type.String(),
  events: Type.Array(ChangeEventType),
  created: Type.String({ format: 'date-time' }),
});

export async function federationMirrorRoutes(
  app: FastifyInstance,
  opts: { config: Config; services: LibraryServices; federation: FederationServices; events: EventServices; mirrors: MirrorService },
) {
  const { config, services, federation, events, mirrors } = opts;
  const ALL_EVENTS: ChangeEventType[] = ['asset.created', 'asset.updated', 'asset.deleted', 'rights.changed', 'collection.items_added', 'collection.items_removed'];

  // ---- administrators of the mirroring server ----------------------------------------------
  app.register(async (admin) => {
    installActor(admin, services);
    const requireAdmin = (request: FastifyRequest) =>
      services.auth.require(!!request.actor?.admin && !request.peer, request.actor, 'manage collection mirrors');

    admin.get(
      `${API_PREFIX}/federation/mirrors`,
      {
        schema: {
          tags: ['federation'],
          summary: "Mirrors of peers' collections and their state (administrators)",
          response: { 200: Type.Object({ items: Type.Array(MirrorStatus) }), ...problemResponses(401, 403) },
        },
      },
      async (request) => {
        requireAdmin(request);
        await mirrors.reload();
        return { items: mirrors.list() };
      },
    );

    admin.post<{ Body: { collection: string } }>(
      `${API_PREFIX}/federation/mirrors`,
      {
        schema: {
          tags: ['federation'],
          summary: "Mirror a peer's collection here: initial copy, then its change feed (administrators)",
          body: Type.Object(
            { collection: Type.String({ minLength: 1, maxLength: 2048, description: 'imagine://peer/collections/ID' }) },
            { additionalProperties: false },
          ),
          response: { 201: MirrorStatus, 200: MirrorStatus, ...problemResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => {
        requireAdmin(request);
        const localOrigin = requestOrigin(request, config.publicOrigin);
        const { status, existed } = await mirrors.declare({
          uri: request.body.collection,
          localOrigin,
          createdBy: request.actor!.name,
        });
        request.log.info({ mirror: status.id, collection: status.uri, existed }, 'collection mirror declared');
        reply.code(existed ? 200 : 201).header('location', `${localOrigin}${API_PREFIX}/federation/mirrors/${status.id}`);
        return status;
      },
    );

    admin.get<{ Params: { id: string } }>(
      `${API_PREFIX}/federation/mirrors/:id`,
      {
        schema: {
          tags: ['federation'],
          summary: 'A collection mirror and its state (administrators)',
          params: IdParams,
          response: { 200: MirrorStatus, ...problemResponses(401, 403, 404) },
        },
      },
      async (request) => {
        requireAdmin(request);
        await mirrors.reload();
        return mirrors.status(request.params.id);
      },
    );

    admin.post<{ Params: { id: string } }>(
      `${API_PREFIX}/federation/mirrors/:id/sync`,
      {
        schema: {
          tags: ['federation'],
          summary: "Read the peer's change feed now; answers the state after the run (administrators)",
          params: IdParams,
          response: { 200: MirrorStatus, ...problemResponses(401, 403, 404) },
        },
      },
      async (request) => {
        requireAdmin(request);
        await mirrors.reload();
        return mirrors.runNow(request.params.id);
      },
    );

    admin.delete<{ Params: { id: string } }>(
      `${API_PREFIX}/federation/mirrors/:id`,
      {
        schema: {
          tags: ['federation'],
          summary: 'Stop mirroring; the local copies stay (administrators)',
          params: IdParams,
          response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        requireAdmin(request);
        await mirrors.reload();
        await mirrors.remove(request.params.id);
        request.log.info({ mirror: request.params.id }, 'collection mirror removed');
        return reply.code(204).send();
      },
    );
  });

  // ---- raw-body routes: webhook hints in, peers' signed subscriptions ----------------------
  app.register(async (raw) => {
    raw.removeContentTypeParser('application/json');
    raw.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    const rawBody = (request: FastifyRequest) => (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0));

    raw.post<{ Params: { id: string } }>(
      `${API_PREFIX}/federation/mirrors/:id/hook`,
      {
        schema: {
          tags: ['federation'],
          summary: "The peer's webhook hints for a mirror (Standard Webhooks); they only trigger a read of its feed",
          params: IdParams,
          response: {
            200: Type.Object({
              challenge: Type.Optional(Type.String()),
              received: Type.Optional(Type.Boolean()),
              /** The webhook-id was seen before: the hint is acknowledged and ignored. */
              duplicate: Type.Optional(Type.Boolean()),
            }),
            ...problemResponses(400, 401, 404),
          },
        },
      },
      async (request) => {
        try {
          const result = mirrors.receiveHint(request.params.id, request.headers, rawBody(request));
          if (result.challenge !== undefined) return { challenge: result.challenge };
          return result.duplicate ? { received: true, duplicate: true } : { received: true };
        } catch (error) {
          request.log.warn(
            { mirror: request.params.id, code: (error as ProtocolError).code, detail: (error as Error).message, webhookId: request.headers['webhook-id'] },
            'collection mirror: webhook hint refused',
          );
          throw error;
        }
      },
    );

    const verifyPeer = async (request: FastifyRequest) => {
      const origin = requestOrigin(request, config.publicOrigin);
      const verified = await federation.verifier.verify(
        { authorization: request.headers.authorization, method: request.method, url: `${origin}${request.url}`, body: rawBody(request) },
        origin,
      );
      const peer = verified.peer!;
      if (!peer.scopes.includes('sync')) throw new ProtocolError('ERR_FORBIDDEN', `${peer.domain} is not trusted to sync`);
      return { origin, peer, subject: verified.subject };
    };

    raw.post(
      `${API_PREFIX}/federation/subscriptions`,
      {
        schema: {
          tags: ['federation'],
          summary: "A trusted peer subscribes itself to one collection's events (signed request, `sync` scope)",
          response: { 201: PeerSubscription, ...problemResponses(400, 401, 403, 404, 422) },
        },
      },
      async (request, reply) => {
        const { origin, peer, subject } = await verifyPeer(request);
        let parsed: unknown;
        try {
          parsed = JSON.parse(rawBody(request).toString('utf8'));
        } catch (error) {
          throw new ProtocolError('ERR_BAD_REQUEST', 'body is not JSON', { cause: error });
        }
        const checked = checkSchema(SubscriptionRequest, parsed, 3);
        if (!checked.ok) throw new ProtocolError('ERR_VALIDATION', 'expected { url, secret, collection, events? }');
        const body = checked.value;
        if (!isValidSecret(body.secret)) throw new ProtocolError('ERR_VALIDATION', 'secret must be a Standard Webhooks secret (whsec_...)');
        let target: URL;
        try {
          target = new URL(body.url);
        } catch (error) {
          throw new ProtocolError('ERR_VALIDATION', 'url is not a URL', { cause: error });
        }
        // A peer points its subscription at itself only: this server never calls third parties for it.
        if (target.origin !== peer.origin) throw new ProtocolError('ERR_FORBIDDEN', `a peer subscription must call back ${peer.origin}`);
        const { library, auth } = services;
        const grants = Object.fromEntries(Object.keys(subject ? library.sharesOf(subject) : {}).map((id) => [id, 'read' as const]));
        const actor = { name: subject ?? `server@${peer.domain}`, admin: false, created: peer.requested, grants };
        if (!library.findCollection(body.collection) || !auth.canReadCollection(actor, body.collection)) {
          throw new ProtocolError('ERR_COLLECTION_NOT_FOUND', `no collection "${body.collection}"`);
        }
        // Subscribing again (an answer lost, a new secret) replaces the peer's earlier subscription.
        for (const old of events.subscriptions().filter((s) => s.peer === peer.origin && s.collection === body.collection)) {
          await events.unsubscribe(old.id);
        }
        const sub = await events.subscribe({
          url: target.href,
          events: body.events ?? ALL_EVENTS,
          secret: body.secret,
          origin,
          createdBy: `peer ${peer.domain}`,
          description: `collection mirror of ${peer.domain}`,
          peer: peer.origin,
          collection: body.collection,
        });
        request.log.info({ subscription: sub.id, peer: peer.origin, collection: body.collection }, 'peer webhook subscription verified and stored');
        reply.code(201).header('cache-control', 'no-store');
        return { id: sub.id, url: sub.url, collection: body.collection, events: sub.events, created: sub.created };
      },
    );

    raw.delete<{ Params: { id: string } }>(
      `${API_PREFIX}/federation/subscriptions/:id`,
      {
        schema: {
          tags: ['federation'],
          summary: "A trusted peer ends its own subscription (signed request, `sync` scope)",
          params: IdParams,
          response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
        },
      },
      async (request, reply) => {
        const { peer } = await verifyPeer(request);
        const sub = events.subscriptions().find((s) => s.id === request.params.id);
        if (!sub || sub.peer !== peer.origin) throw new ProtocolError('ERR_WEBHOOK_NOT_FOUND', `no webhook subscription "${request.params.id}"`);
        await events.unsubscribe(sub.id);
        request.log.info({ subscription: sub.id, peer: peer.origin }, 'peer webhook subscription deleted');
        return reply.code(204).send();
      },
    );
  });
}
