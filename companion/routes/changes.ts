/** The change feed: ordered, durable, filtered to what the caller may read. */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { ChangesPage } from '../../shared/schemas/changes.ts';
import { presentChange } from '../library/present.ts';
import type { ChangeRecord } from '../library/records.ts';
import { API_PREFIX, installActor, presentContext, problemResponses, type ApiOptions } from './api-context.ts';

export async function changeRoutes(app: FastifyInstance, { config, services }: ApiOptions) {
  const { library, auth } = services;
  installActor(app, services);

  app.get<{ Querystring: { since?: string; limit?: number } }>(
    `${API_PREFIX}/changes`,
    {
      schema: {
        tags: ['changes'],
        summary: 'Changes after `since` (the `next` of the previous page), oldest first',
        querystring: Type.Object(
          {
            since: Type.Optional(Type.String({ maxLength: 20 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: ChangesPage, ...problemResponses(400, 401) },
      },
    },
    async (request) => {
      const page = library.changes(request.query.since, request.query.limit ?? 100);
      const visible = (change: ChangeRecord) => {
        if (change.assetId) {
          const asset = library.catalog.asset(change.assetId);
          return !!asset && auth.canRead(request.actor, asset);
        }
        return !!change.collectionId && auth.canReadCollection(request.actor, change.collectionId);
      };
      const ctx = presentContext(request, config);
      return {
        events: page.events.filter(visible).map((c) => presentChange(c, ctx)),
        next: page.next,
        hasMore: page.hasMore,
      };
    },
  );
}
