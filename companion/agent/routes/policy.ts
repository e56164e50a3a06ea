/**
 * The studio workflow policy of a connection (extension `org.imagine.workflow-policy`), for the
 * panel to show before a push: the server's current one, or the last one seen when it cannot be
 * reached; `{}` when the server has none.
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { WorkflowPolicy } from '../../../shared/schemas/agent.ts';
import { problemResponses } from '../../routes/api-context.ts';
import type { AgentServices } from '../services.ts';
import { agentWork } from '../work.ts';

export async function policyRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { policies } = await agentWork(options.services);

  app.get<{ Params: { connection: string } }>(
    '/policy/:connection',
    {
      schema: {
        tags: ['agent'],
        summary: "A connection's workflow policy ({} when its server has none)",
        params: Type.Object({ connection: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: { 200: WorkflowPolicy, ...problemResponses(401, 403, 404, 502) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return policies.get(request.params.connection);
    },
  );
}
