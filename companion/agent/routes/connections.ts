/**
 * The servers the user works with: list, add (an origin, a bare domain or an `imagine://` URI;
 * discovery and the token are checked before it is stored), change the token or name in place
 * (a new token is checked first), remove (with what the agent cached of it).
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { AddConnectionRequest, Connection, UpdateConnectionRequest } from '../../../shared/schemas/agent.ts';
import { problemResponses } from '../../routes/api-context.ts';
import type { AgentServices } from '../services.ts';

const ConnectionParams = Type.Object({ connection: Type.String({ minLength: 1, maxLength: 200 }) });

export async function connectionRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { services } = options;

  app.get(
    '/connections',
    {
      schema: {
        tags: ['agent'],
        summary: 'The servers the agent works with (tokens are never shown)',
        response: { 200: Type.Object({ items: Type.Array(Connection) }), ...problemResponses(401, 403) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { items: services.connections.list() };
    },
  );

  app.post<{ Body: AddConnectionRequest }>(
    '/connections',
    {
      schema: {
        tags: ['agent'],
        summary: 'Add a server (origin, bare domain or imagine:// URI); its discovery and token are checked first',
        body: AddConnectionRequest,
        response: { 201: Connection, ...problemResponses(400, 401, 403, 409, 502, 504) },
      },
    },
    async (request, reply) => {
      const connection = await services.connect(request.body);
      return reply.code(201).send(connection);
    },
  );

  app.patch<{ Params: { connection: string }; Body: UpdateConnectionRequest }>(
    '/connections/:connection',
    {
      schema: {
        tags: ['agent'],
        summary: 'Change a server\'s token (checked first; a refused one keeps the old) or name, keeping its caches and mirror',
        params: ConnectionParams,
        body: UpdateConnectionRequest,
        response: { 200: Connection, ...problemResponses(400, 401, 403, 404, 502, 504) },
      },
    },
    async (request) => services.updateConnection(request.params.connection, request.body),
  );

  app.delete<{ Params: { connection: string } }>(
    '/connections/:connection',
    {
      schema: {
        tags: ['agent'],
        summary: 'Remove a server, its token and what the agent cached of it',
        params: ConnectionParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const id = request.params.connection;
      const { origin } = services.connections.require(id);
      await services.connections.remove(id);
      services.resolver.invalidate(origin);
      services.assetCache.forget(id);
      await services.thumbs.remove(id);
      return reply.code(204).send();
    },
  );
}
