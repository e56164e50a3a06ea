/**
 * How the `imagine` CLI twins talk to the running agent: `agent.json` says where it listens,
 * the pairing token authenticates, and problem documents come back as `ProtocolError`s with
 * their registry codes, so commands print the agent's own one-line reason.
 *
 * @example
 *   const checkout = await callAgent(config.dataDir, 'POST', '/checkouts', { uri });
 *   const { items } = (await callAgent(config.dataDir, 'GET', '/queue')) as { items: QueueItem[] };
 */
import { join, resolve } from 'node:path';
import { PROBLEM_CONTENT_TYPE, ProtocolError, fromProblem } from '../../shared/errors.ts';
import { AGENT_PREFIX } from '../../shared/schemas/agent.ts';
import { AGENT_DIR } from '../agent/services.ts';
import { readPairingToken } from '../agent/pairing.ts';
import { isProcessAlive, readAgentFile } from '../agent/running.ts';

export interface CallAgentOptions {
  /** Whole call, body included; default 10 minutes (a checkout downloads before answering). 0: none. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export const CALL_AGENT_DEFAULTS = Object.freeze({ timeoutMs: 10 * 60_000 });

/** Where the agent of `dataDir` listens, and its pairing token; ERR_AGENT_NOT_RUNNING when none runs. */
export async function findAgent(dataDir: string): Promise<{ url: string; token: string }> {
  const agentDir = join(resolve(dataDir), AGENT_DIR);
  const info = await readAgentFile(agentDir);
  if (!info || !isProcessAlive(info.pid)) throw notRunning(dataDir);
  const token = await readPairingToken(agentDir);
  if (token === undefined) {
    throw new ProtocolError('ERR_PAIRING_REQUIRED', `no pairing token in ${agentDir} (is the agent running?)`);
  }
  return { url: info.url, token };
}

/**
 * Calls the agent serving `dataDir`: `path` is relative to `/agent/v1` (`/checkouts`), or starts
 * with it. Answers the parsed JSON body (undefined for 204). Throws the agent's problem as a
 * ProtocolError, ERR_AGENT_NOT_RUNNING when no agent answers, ERR_UPSTREAM_TIMEOUT when it is too slow.
 */
export async function callAgent(
  dataDir: string,
  method: string,
  path: string,
  body?: unknown,
  options: CallAgentOptions = {},
): Promise<unknown> {
  const { url, token } = await findAgent(dataDir);
  const target = `${url}${path.startsWith(`${AGENT_PREFIX}/`) ? path : `${AGENT_PREFIX}${path.startsWith('/') ? '' : '/'}${path}`}`;
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const timeoutMs = options.timeoutMs ?? CALL_AGENT_DEFAULTS.timeoutMs;
  const signal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
  const what = `${method.toUpperCase()} ${AGENT_PREFIX}${target.slice(url.length + AGENT_PREFIX.length).split('?')[0]}`;
  const doFetch = options.fetch ?? globalThis.fetch;
  let response: Response;
  let text: string;
  try {
    response = await doFetch(target, {
      method: method.toUpperCase(),
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
      signal,
    });
    text = await response.text();
  } catch (error) {
    if (signal?.aborted) {
      throw new ProtocolError('ERR_UPSTREAM_TIMEOUT', `the agent took more than ${timeoutMs} ms to answer ${what}`, { cause: error });
    }
    throw notRunning(dataDir, error);
  }
  if (response.status === 204 || (response.ok && text === '')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    if (response.ok) throw new ProtocolError('ERR_UPSTREAM_INVALID', `the agent did not answer JSON to ${what}`, { cause: error });
    parsed = undefined;
  }
  if (response.ok) return parsed;
  const type = response.headers.get('content-type') ?? '';
  if (parsed !== undefined && (type.startsWith(PROBLEM_CONTENT_TYPE) || typeof (parsed as { code?: unknown })?.code === 'string')) {
    throw fromProblem(parsed, response.status);
  }
  throw new ProtocolError('ERR_UPSTREAM_ERROR', `the agent answered ${response.status} to ${what}`, {
    status: response.status,
    extensions: { remoteStatus: response.status },
  });
}

function notRunning(dataDir: string, cause?: unknown): ProtocolError {
  return new ProtocolError(
    'ERR_AGENT_NOT_RUNNING',
    `no agent is running for ${resolve(dataDir)} (start one with: imagine serve --data ${resolve(dataDir)})`,
    { cause },
  );
}
