/**
 * What the agent does once the server listens: learn its own origin (the guard checks Host and
 * Origin against it), write `<data>/agent/agent.json` so the CLI twins find it, and, serving
 * both roles, connect itself to its own library (with `<data>/demo-token` when there is one).
 * Answers the function to call when the server has stopped (removes `agent.json`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { isLoopbackHost } from '../../shared/origin.ts';
import type { AgentServices } from './services.ts';
import { ensurePairingToken } from './pairing.ts';
import { removeAgentFile, writeAgentFile } from './running.ts';

/** The agent's origin for a server listening at `url`: a loopback name even when bound to all interfaces. */
export function agentOriginOf(url: string): string {
  const parsed = new URL(url);
  return isLoopbackHost(parsed.hostname) ? parsed.origin : `http://127.0.0.1:${parsed.port || '80'}`;
}

export async function startAgent(app: FastifyInstance, url: string, config: Config): Promise<() => Promise<void>> {
  const agent = app.agent;
  if (!agent) return async () => {};
  agent.origin = agentOriginOf(url);
  await ensurePairingToken(agent.dir);
  await writeAgentFile(agent.dir, { url: agent.origin, pid: process.pid });
  if (config.role === 'both') {
    try {
      await connectOwnLibrary(agent, config.dataDir);
    } catch (error) {
      app.log.warn({ err: error }, 'the agent could not connect to its own library');
    }
  }
  return () => removeAgentFile(agent.dir);
}

/**
 * Connects the agent to the library of the same process, once per origin; a connection made
 * by an earlier run on another port is replaced (its origin is gone).
 */
export async function connectOwnLibrary(agent: AgentServices, dataDir: string): Promise<void> {
  const origin = agent.origin!;
  const token = await readFile(join(dataDir, 'demo-token'), 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  );
  const current = agent.connections.byOrigin(origin);
  if (current) {
    if (current.token === undefined && token !== undefined && current.self) await agent.connections.update(current.id, { token });
    return;
  }
  for (const stale of agent.connections.list()) {
    if (agent.connections.get(stale.id)?.self) await agent.connections.remove(stale.id);
  }
  const added = await agent.connect({ url: origin, token });
  await agent.connections.update(added.id, { self: true });
}
