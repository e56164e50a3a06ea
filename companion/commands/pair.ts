import { join } from 'node:path';
import { loadConfig } from '../config.ts';
import { AGENT_DIR } from '../agent/services.ts';
import { ensurePairingToken } from '../agent/pairing.ts';
import { isProcessAlive, readAgentFile } from '../agent/running.ts';
import { AGENT_PREFIX } from '../../shared/schemas/agent.ts';

/** `imagine pair`: prints the agent's pairing token (made on first use) as the last line. */
export async function runPair(flags: { data?: string; json?: boolean }): Promise<void> {
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const agentDir = join(config.dataDir, AGENT_DIR);
  const token = await ensurePairingToken(agentDir);
  const running = await readAgentFile(agentDir);
  const agent = running && isProcessAlive(running.pid) ? `${running.url}${AGENT_PREFIX}` : null;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ token, agent, dataDir: config.dataDir })}\n`);
    return;
  }
  process.stdout.write(
    `pairing token of the agent ${agent ? `at ${agent}` : `for ${config.dataDir} (not running now)`}; ` +
      'paste it into the panel, keep it private:\n' +
      `${token}\n`,
  );
}
