/**
 * One writer per catalog. The process that writes a data folder's catalog holds
 * `<data>/writer.lock` (created exclusively, holding its pid and, for a server, its URL).
 * A lock whose process is gone is taken over; a live one is refused with a clear message.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';

export const LOCK_FILE = 'writer.lock';

export interface LockInfo {
  pid: number;
  started: string;
  command: string;
  url?: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readLock(dataDir: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

export interface WriterLock {
  info: LockInfo;
  /** Records the URL the holder serves at, for other commands to find it. */
  setUrl(url: string): Promise<void>;
  release(): Promise<void>;
}

export async function acquireWriterLock(dataDir: string, command: string): Promise<WriterLock> {
  const path = join(dataDir, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, started: new Date().toISOString(), command };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(info));
      await handle.close();
      let released = false;
      return {
        info,
        async setUrl(url: string) {
          info.url = url;
          const h = await open(path, 'w', 0o600);
          await h.writeFile(JSON.stringify(info));
          await h.close();
        },
        async release() {
          if (released) return;
          released = true;
          const current = await readLock(dataDir);
          if (current?.pid === process.pid) await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await readLock(dataDir);
      if (holder && holder.pid !== process.pid && isAlive(holder.pid)) {
        const where = holder.url ? ` serving ${holder.url}` : '';
        throw new ProtocolError(
          'ERR_CATALOG_LOCKED',
          `${dataDir} is in use by "${holder.command}" (pid ${holder.pid}${where}, lock ${path}); stop it first or use its API`,
          { extensions: { holder } },
        );
      }
      // The holder is gone (or the file is unreadable): take the lock over.
      await rm(path, { force: true });
    }
  }
  throw new ProtocolError('ERR_CATALOG_LOCKED', `could not lock ${dataDir}`);
}
