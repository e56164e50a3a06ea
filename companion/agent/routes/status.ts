// SCAFFOLD: routes not written yet (see shared/schemas/agent.ts for the contract).
import type { FastifyInstance } from 'fastify';
import type { AgentServices } from '../services.ts';

export async function statusRoutes(_app: FastifyInstance, _options: { services: AgentServices }): Promise<void> {}
