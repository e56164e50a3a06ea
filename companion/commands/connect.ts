import { loadConfig } from '../config.ts';
import { isProtocolError } from '../../shared/errors.ts';
import type { AddConnectionRequest, Connection, UpdateConnectionRequest } from '../../shared/schemas/agent.ts';
import { connectionIdOf, originFromUserInput } from '../agent/connections.ts';
import { openAgentServices } from '../agent/services.ts';
import { callAgent } from './agent-call.ts';

/**
 * `imagine connect URL`: adds a server to the agent (an origin, a bare domain or an imagine://
 * URI), through the running agent, or straight into its data folder when none runs. A server
 * already connected gets the new `--token` or `--name` in place (a refused token keeps the old
 * one). The connection id is the last line printed.
 */
export async function runConnect(
  url: string,
  flags: { token?: string; name?: string; data?: string; json?: boolean },
): Promise<void> {
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const request: AddConnectionRequest = { url };
  if (flags.token !== undefined) request.token = flags.token;
  if (flags.name !== undefined) request.name = flags.name;
  const update: UpdateConnectionRequest = { ...(request.token ? { token: request.token } : {}), ...(request.name ? { name: request.name } : {}) };
  const addOrUpdate = async (add: () => Promise<Connection>, change: (id: string) => Promise<Connection>): Promise<Connection> => {
    try {
      return await add();
    } catch (error) {
      if (!isProtocolError(error, 'ERR_CONNECTION_EXISTS') || Object.keys(update).length === 0) throw error;
      return change(connectionIdOf(originFromUserInput(url)));
    }
  };
  let connection: Connection;
  try {
    connection = await addOrUpdate(
      async () => (await callAgent(config.dataDir, 'POST', '/connections', request)) as Connection,
      async (id) => (await callAgent(config.dataDir, 'PATCH', `/connections/${encodeURIComponent(id)}`, update)) as Connection,
    );
  } catch (error) {
    if (!isProtocolError(error, 'ERR_AGENT_NOT_RUNNING')) throw error;
    const services = await openAgentServices(config);
    try {
      connection = await addOrUpdate(
        () => services.connect(request),
        (id) => services.updateConnection(id, update),
      );
    } finally {
      await services.close();
    }
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(connection)}\n`);
    return;
  }
  process.stdout.write(
    `connected to ${connection.name} (${connection.origin})${connection.authenticated ? ' with a token' : ''}; connection id:\n` +
      `${connection.id}\n`,
  );
}
