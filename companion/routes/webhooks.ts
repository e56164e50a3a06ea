/**
 * Webhook subscriptions under the protocol API (administrators): `POST {api}/webhooks`
 * verifies the URL by challenge and answers 201 with the secret (shown this once), `GET` lists,
 * `GET {id}/deliveries` shows the outbox, `DELETE {id}` ends a subscription.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { isProtocolError } from '../../shared/errors.ts';
import { ChangeEventType } from '../../shared/schemas/changes.ts';
import type { DeliveryRecord, SubscriptionRecord } from '../events/outbox.ts';
import type { EventServices } from '../events/services.ts';
import { requestOrigin } from '../http/origin.ts';
import { API_PREFIX, installActor, presentContext, problemResponses, type ApiOptions } from './api-context.ts';

const Subscription = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    events: Type.Array(ChangeEventType),
    description: Type.Optional(Type.String()),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    created: Type.String({ format: 'date-time' }),
    createdBy: Type.Optional(Type.String()),
    disabled: Type.Optional(Type.String({ format: 'date-time' })),
    disabledReason: Type.Optional(Type.String()),
  },
  { $id: 'WebhookSubscription' },
);

const CreatedSubscription = Type.Object({
  ...Subscription.properties,
  secret: Type.String({ description: 'Signing secret (Standard Webhooks `whsec_...`): shown only in this answer.' }),
});

const Delivery = Type.Object(
  {
    id: Type.String({ description: 'The `webhook-id` of every attempt.' }),
    seq: Type.Integer(),
    type: ChangeEventType,
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed'), Type.Literal('cancelled')]),
    created: Type.String({ format: 'date-time' }),
    attemptCount: Type.Integer(),
    attempts: Type.Array(
      Type.Object({
        at: Type.String({ format: 'date-time' }),
        status: Type.Optional(Type.Integer()),
        error: Type.Optional(Type.String()),
        ms: Type.Integer(),
      }),
    ),
    nextAttempt: Type.Optional(Type.String({ format: 'date-time' })),
    finished: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'WebhookDelivery' },
);

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 40, pattern: '^[A-Za-z0-9_]+$' }) });

function present(sub: SubscriptionRecord) {
  const { secret: _secret, origin: _origin, afterSeq: _after, ...shown } = sub;
  return shown;
}

function presentDelivery(d: DeliveryRecord) {
  const { body: _body, subscriptionId: _sub, ...shown } = d;
  return shown;
}

export async function webhookRoutes(app: FastifyInstance, { config, services, events }: ApiOptions & { events: EventServices }) {
  const { auth } = services;
  installActor(app, services);
  const requireAdmin = (request: FastifyRequest) => auth.require(!!request.actor?.admin, request.actor, 'manage webhooks');

  app.post<{ Body: { url: string; events: ChangeEventType[]; secret?: string; description?: string } }>(
    `${API_PREFIX}/webhooks`,
    {
      schema: {
        tags: ['events'],
        summary: 'Subscribe a URL to change events (administrators); the URL must echo a signed challenge first',
        body: Type.Object(
          {
            url: Type.String({ minLength: 1, maxLength: 2048 }),
            events: Type.Array(ChangeEventType, { minItems: 1, maxItems: 6 }),
            secret: Type.Optional(
              Type.String({ pattern: '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$', description: 'Your own signing secret; one is made otherwise.' }),
            ),
            description: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: CreatedSubscription, ...problemResponses(400, 401, 403, 422) },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      let sub: SubscriptionRecord;
      try {
        sub = await events.subscribe({
          ...request.body,
          origin: requestOrigin(request, config.publicOrigin),
          createdBy: request.actor?.name,
        });
      } catch (error) {
        if (isProtocolError(error)) {
          request.log.warn({ code: error.code, detail: error.message, url: request.body.url.slice(0, 300) }, 'webhook subscription refused');
        }
        throw error;
      }
      request.log.info({ subscription: sub.id, url: sub.url, events: sub.events }, 'webhook subscription verified and stored');
      const ctx = presentContext(request, config);
      reply.code(201).header('location', `${ctx.apiBase}/webhooks/${sub.id}`).header('cache-control', 'no-store');
      return { ...present(sub), secret: sub.secret };
    },
  );

  app.get(
    `${API_PREFIX}/webhooks`,
    {
      schema: {
        tags: ['events'],
        summary: 'Webhook subscriptions (administrators)',
        response: { 200: Type.Object({ items: Type.Array(Subscription) }), ...problemResponses(401, 403) },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { items: events.subscriptions().map(present) };
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/webhooks/:id`,
    {
      schema: {
        tags: ['events'],
        summary: 'A webhook subscription (administrators)',
        params: IdParams,
        response: { 200: Subscription, ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      requireAdmin(request);
      return present(events.subscription(request.params.id));
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/webhooks/:id/deliveries`,
    {
      schema: {
        tags: ['events'],
        summary: "A subscription's deliveries: pending, and the latest finished (administrators)",
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(Delivery) }), ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      requireAdmin(request);
      return { items: events.deliveries(request.params.id).map(presentDelivery) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${API_PREFIX}/webhooks/:id`,
    {
      schema: {
        tags: ['events'],
        summary: 'End a subscription; its pending deliveries are cancelled (administrators)',
        params: IdParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      await events.unsubscribe(request.params.id);
      request.log.info({ subscription: request.params.id }, 'webhook subscription deleted');
      return reply.code(204).send();
    },
  );
}
