/** Collections: list, create, get, rename or publish, add and remove items. */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { Collection } from '../../shared/schemas/asset.ts';
import { presentCollection } from '../library/present.ts';
import { API_PREFIX, installActor, presentContext, problemResponses, type ApiOptions } from './api-context.ts';

const Id = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' });

export async function collectionRoutes(app: FastifyInstance, { config, services }: ApiOptions) {
  const { library, auth } = services;
  installActor(app, services);

  app.get(
    `${API_PREFIX}/collections`,
    {
      schema: {
        tags: ['collections'],
        summary: 'The collections this caller can read',
        response: { 200: Type.Object({ items: Type.Array(Collection) }), ...problemResponses(401) },
      },
    },
    async (request) => {
      const ctx = presentContext(request, config);
      const items = library.catalog.data.collections
        .filter((c) => auth.canReadCollection(request.actor, c.id))
        .map((c) => presentCollection(c, library.collectionSize(c.id), ctx));
      return { items };
    },
  );

  app.post<{ Body: { name: string; public?: boolean } }>(
    `${API_PREFIX}/collections`,
    {
      schema: {
        tags: ['collections'],
        summary: 'Create a collection (administrators)',
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 200 }), public: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 201: Collection, ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      auth.require(!!request.actor?.admin, request.actor, 'create collections');
      const collection = await library.createCollection({ ...request.body, user: request.actor?.name });
      reply.code(201);
      return presentCollection(collection, 0, presentContext(request, config));
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/collections/:id`,
    {
      schema: {
        tags: ['collections'],
        summary: 'A collection (its items: search with `collection=<id>`)',
        params: Type.Object({ id: Id }),
        response: { 200: Collection, ...problemResponses(401, 404) },
      },
    },
    async (request) => {
      const collection = library.getCollection(request.params.id);
      if (!auth.canReadCollection(request.actor, collection.id)) {
        auth.require(false, request.actor, 'read this collection');
      }
      return presentCollection(collection, library.collectionSize(collection.id), presentContext(request, config));
    },
  );

  const Disclosure = Type.Object(
    { location: Type.Enum(['full', 'country', 'none'], { description: 'How much of where a picture was taken they see' }) },
    { additionalProperties: false },
  );

  app.patch<{
    Params: { id: string };
    Body: { name?: string; public?: boolean; privacy?: { guests?: { location: 'full' | 'country' | 'none' }; public?: { location: 'full' | 'country' | 'none' } } };
  }>(
    `${API_PREFIX}/collections/:id`,
    {
      schema: {
        tags: ['collections'],
        summary: 'Rename a collection, change its public flag or its privacy settings (administrators)',
        params: Type.Object({ id: Id }),
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            public: Type.Optional(Type.Boolean()),
            privacy: Type.Optional(
              Type.Object(
                { guests: Type.Optional(Disclosure), public: Type.Optional(Disclosure) },
                { additionalProperties: false, description: 'What guests and the public may learn of location (default none)' },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Collection, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      library.getCollection(request.params.id);
      auth.require(!!request.actor?.admin, request.actor, 'change collections');
      const collection = await library.updateCollection(request.params.id, request.body);
      return presentCollection(collection, library.collectionSize(collection.id), presentContext(request, config));
    },
  );

  app.post<{ Params: { id: string }; Body: { assets: string[] } }>(
    `${API_PREFIX}/collections/:id/items`,
    {
      schema: {
        tags: ['collections'],
        summary: 'Add assets to a collection',
        params: Type.Object({ id: Id }),
        body: Type.Object({ assets: Type.Array(Id, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ added: Type.Array(Type.String()) }), ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      library.getCollection(request.params.id);
      auth.require(auth.canWriteCollection(request.actor, request.params.id), request.actor, 'add to this collection');
      for (const id of request.body.assets) auth.requireRead(request.actor, library.getLiveAsset(id));
      return { added: await library.addToCollection(request.params.id, request.body.assets) };
    },
  );

  app.delete<{ Params: { id: string; assetId: string } }>(
    `${API_PREFIX}/collections/:id/items/:assetId`,
    {
      schema: {
        tags: ['collections'],
        summary: 'Remove an asset from a collection',
        params: Type.Object({ id: Id, assetId: Id }),
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      library.getCollection(request.params.id);
      auth.require(auth.canWriteCollection(request.actor, request.params.id), request.actor, 'remove from this collection');
      await library.removeFromCollection(request.params.id, request.params.assetId);
      return reply.code(204).send();
    },
  );

  const Identity = Type.String({ minLength: 3, maxLength: 320, description: 'A user of another server: name@domain' });
  const Shares = Type.Object({ shares: Type.Record(Type.String(), Type.Enum(['read', 'write'])) });

  app.put<{ Params: { id: string; identity: string } }>(
    `${API_PREFIX}/collections/:id/shares/:identity`,
    {
      schema: {
        tags: ['collections', 'federation'],
        summary: "Share a collection with a user of another server (read through their server's signed requests)",
        params: Type.Object({ id: Id, identity: Identity }),
        response: { 200: Shares, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      library.getCollection(request.params.id);
      auth.require(auth.canWriteCollection(request.actor, request.params.id), request.actor, 'share this collection');
      const collection = await library.shareCollection(request.params.id, request.params.identity, 'read');
      return { shares: collection.shares ?? {} };
    },
  );

  app.delete<{ Params: { id: string; identity: string } }>(
    `${API_PREFIX}/collections/:id/shares/:identity`,
    {
      schema: {
        tags: ['collections', 'federation'],
        summary: 'End the share of a collection with a user of another server',
        params: Type.Object({ id: Id, identity: Identity }),
        response: { 200: Shares, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      library.getCollection(request.params.id);
      auth.require(auth.canWriteCollection(request.actor, request.params.id), request.actor, 'share this collection');
      const collection = await library.shareCollection(request.params.id, request.params.identity, null);
      return { shares: collection.shares ?? {} };
    },
  );
}
