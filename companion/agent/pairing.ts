/**
 * The pairing token: the shared secret between the agent and whoever may drive it (the panel,
 * the browser preview, the `imagine` CLI twins). One random token per data folder, created on
 * first use in `<data>/agent/pairing-token` (mode 0600 in a 0700 folder) and kept until the file
 * is removed. `imagine pair` prints it; the guard compares every request's bearer token to it.
 *
 * @example
 *   const token = await ensurePairingToken(join(dataDir, 'agent'));
 *   fetch(`${agent}/agent/v1/status`, { headers: { Authorization: `Bearer ${token}` } });
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';

export const PAIRING_TOKEN_FILE = 'pairing-token';
/** 32 random bytes, base64url: 43 characters. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The pairing token of the agent whose folder is `agentDir`; undefined when none was made yet. */
export async function readPairingToken(agentDir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(agentDir, PAIRING_TOKEN_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const token = text.trim();
  if (!TOKEN.test(token)) {
    throw new ProtocolError(
      'ERR_CONFIG_INVALID',
      `${join(agentDir, PAIRING_TOKEN_FILE)} does not hold a pairing token; remove it to make a new one`,
    );
  }
  return token;
}

/** The pairing token, created (0600) when there is none yet. Safe when two processes race. */
export async function ensurePairingToken(agentDir: string): Promise<string> {
  const existing = await readPairingToken(agentDir);
  if (existing !== undefined) return existing;
  await mkdir(agentDir, { recursive: true, mode: 0o700 });
  const path = join(agentDir, PAIRING_TOKEN_FILE);
  const token = randomBytes(32).toString('base64url');
  let handle;
  try {
    // `wx`: whoever creates the file first wins; the other reads the winner's token.
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return waitForToken(agentDir);
    throw error;
  }
  try {
    await handle.writeFile(`${token}\n`, 'utf8');
    await handle.sync();
    await handle.close();
    await chmod(path, 0o600);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(path, { force: true });
    throw error;
  }
  return token;
}

/** Reads a token another process is writing right now (created, not yet filled). */
async function waitForToken(agentDir: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const token = await readPairingToken(agentDir);
      if (token !== undefined) return token;
    } catch (error) {
      if (attempt >= 20) throw error;
    }
    if (attempt >= 20) throw new ProtocolError('ERR_CONFIG_INVALID', `${join(agentDir, PAIRING_TOKEN_FILE)} stays empty`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
