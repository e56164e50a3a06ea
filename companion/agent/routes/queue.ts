/**
 * The push queue (shared/schemas/agent.ts): list, get (with upload progress), retry a failed
 * or waiting push now, resolve a conflict (push on top of the newest version, save as a new
 * asset derived from it, or discard).
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { QueueItem, ResolveConflictRequest } from '../../../shared/schemas/agent.ts';
import { problemResponses } from '../../routes/api-context.ts';
import type { AgentServices } from '../services.ts';
import { agentWork } from '../work.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

export async function queueRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { queue } = await agentWork(options.services);

  app.get(
    '/queue',
    {
      schema: {
        tags: ['agent'],
        summary: 'Every queued push (pending, in conflict, failed, and recently done), oldest first',
        response: { 200: Type.Object({ items: Type.Array(QueueItem) }), ...problemResponses(401, 403) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { items: queue.list() };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/queue/:id',
    {
      schema: {
        tags: ['agent'],
        summary: 'One queued push, with its progress',
        params: IdParams,
        response: { 200: QueueItem, ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return queue.require(request.params.id);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/queue/:id/retry',
    {
      schema: {
        tags: ['agent'],
        summary: 'Try a failed or waiting push again now',
        params: IdParams,
        response: { 202: QueueItem, ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => reply.code(202).send(await queue.retry(request.params.id)),
  );

  app.post<{ Params: { id: string }; Body: ResolveConflictRequest }>(
    '/queue/:id/resolve',
    {
      schema: {
        tags: ['agent'],
        summary: 'Resolve a conflict: push-on-top (the newest version becomes the base), new-asset (derived from it) or discard',
        params: IdParams,
        body: ResolveConflictRequest,
        response: { 202: QueueItem, ...problemResponses(400, 401, 403, 404, 409, 502, 504) },
      },
    },
    async (request, reply) => reply.code(202).send(await queue.resolve(request.params.id, request.body)),
  );
}
