/**
 * Small JSON state files of the agent, written atomically: a temp file in the same folder,
 * fsynced, then renamed over the old one, so a crash leaves either the old or the new content.
 * Files holding secrets are created with mode 0600 inside a 0700 folder.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';

/** Reads `path` as JSON; `fallback` when the file does not exist. */
export async function readJsonFile<T>(path: string, fallback: T): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new ProtocolError('ERR_CONFIG_INVALID', `${path} is not valid JSON; fix or remove it`, { cause: error });
  }
}

/** Writes `value` as JSON to `path` atomically, readable by its owner only. */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const text = `${JSON.stringify(value, null, 2)}\n`;
  let handle;
  try {
    handle = await open(temp, 'wx', 0o600);
    await handle.writeFile(text, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await chmod(temp, 0o600); // umask cannot widen it, but be explicit
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new ProtocolError('ERR_DISK_FULL', `no space left to write ${path}`, { cause: error });
    }
    throw error;
  }
}
