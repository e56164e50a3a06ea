/**
 * `<data>/agent/agent.json`: where the running agent listens, so the `imagine` CLI twins
 * (`connect`, `checkout`, `push`, `queue`...) find it. Written once the server listens,
 * removed when it stops; a crash leaves it behind, which is why readers also check the pid and
 * treat a refused connection as "not running".
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonFile } from './json-file.ts';

export const AGENT_FILE = 'agent.json';

export interface AgentFile {
  /** Base URL of the process, e.g. `http://127.0.0.1:7420` (the API is under `/agent/v1`). */
  url: string;
  pid: number;
}

export async function writeAgentFile(agentDir: string, info: AgentFile): Promise<void> {
  await writeJsonFile(join(agentDir, AGENT_FILE), info);
}

/** What `agent.json` says; undefined when it is missing or unreadable. */
export async function readAgentFile(agentDir: string): Promise<AgentFile | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(join(agentDir, AGENT_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  const info = value as Partial<AgentFile> | null;
  if (typeof info?.url !== 'string' || !/^http:\/\/[^/?#]+$/.test(info.url)) return undefined;
  if (!Number.isInteger(info.pid) || (info.pid as number) <= 0) return undefined;
  return { url: info.url, pid: info.pid as number };
}

/** Removes `agent.json` when it is this process's (another agent may have started since). */
export async function removeAgentFile(agentDir: string, pid = process.pid): Promise<void> {
  const info = await readAgentFile(agentDir);
  if (info && info.pid !== pid) return;
  await rm(join(agentDir, AGENT_FILE), { force: true });
}

/** Whether a process with this id exists (it may belong to someone else: EPERM still means alive). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
