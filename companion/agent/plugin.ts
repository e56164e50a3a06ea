/**
 * The agent's local API under `/agent/v1` (shared/schemas/agent.ts is the contract). Every
 * route sits behind the guard: loopback Host, no foreign Origin, the pairing token.
 */
import type { FastifyInstance } from 'fastify';
import type { AgentServices } from './services.ts';
import { installAgentGuard } from './guard.ts';
import { statusRoutes } from './routes/status.ts';
import { connectionRoutes } from './routes/connections.ts';
import { searchRoutes } from './routes/search.ts';
import { thumbRoutes } from './routes/thumbs.ts';
import { iiifSourceRoutes } from './routes/iiif.ts';
import { checkoutRoutes } from './routes/checkouts.ts';
import { queueRoutes } from './routes/queue.ts';
import { policyRoutes } from './routes/policy.ts';
import { syncRoutes } from './routes/sync.ts';

export interface AgentPluginOptions {
  services: AgentServices;
}

export async function agentPlugin(app: FastifyInstance, options: AgentPluginOptions): Promise<void> {
  const { services } = options;
  await installAgentGuard(app, services);
  for (const routes of [
    statusRoutes,
    connectionRoutes,
    searchRoutes,
    thumbRoutes,
    iiifSourceRoutes,
    checkoutRoutes,
    queueRoutes,
    policyRoutes,
    syncRoutes,
  ]) {
    await app.register(routes, { services });
  }
}
