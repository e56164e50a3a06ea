/** `GET /agent/v1/status`: who the agent is, its connections and the push queue's counts. */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { AgentStatus } from '../../../shared/schemas/agent.ts';
import { SOFTWARE } from '../../software.ts';
import { problemResponses } from '../../routes/api-context.ts';
import type { AgentServices } from '../services.ts';

const StatusResponse = Type.Intersect([
  AgentStatus,
  Type.Object({ cache: Type.Object({ bytes: Type.Integer({ minimum: 0 }), count: Type.Integer({ minimum: 0 }) }) }),
]);

export async function statusRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { services } = options;
  app.get(
    '/status',
    {
      schema: {
        tags: ['agent'],
        summary: 'The agent: its origin, working folder, connections, push queue and cache',
        response: { 200: StatusResponse, ...problemResponses(401, 403) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return {
        software: SOFTWARE.name,
        version: SOFTWARE.version,
        origin: services.origin ?? '',
        workDir: services.workDir,
        connections: services.connections.list(),
        queue: services.queue?.counts() ?? { pending: 0, conflicts: 0, failed: 0 },
        cache: services.thumbs.stats(),
      };
    },
  );
}
