// SCAFFOLD: the guard is not written yet.
import type { FastifyInstance } from 'fastify';
import type { AgentServices } from './services.ts';

export async function installAgentGuard(_app: FastifyInstance, _services: AgentServices): Promise<void> {}
