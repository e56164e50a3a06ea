/**
 * The push spool (`<data>/agent/spool/<item id>/`): a push works on its own copy of the edited
 * file, taken only when the file has stopped changing, so the editor can keep saving while a
 * push waits in the queue, and what is uploaded is exactly what was prepared.
 *
 * A file that is not there is ERR_FILE_MISSING; one whose size or modification time changes
 * between two looks at least `settleMs` apart, taken before and after the copy (the wait
 * overlaps the copy instead of preceding it), is ERR_FILE_BUSY; a full disk is ERR_DISK_FULL.
 * Nothing is left in the spool when the copy fails.
 */
import { constants, type Stats } from 'node:fs';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProtocolError } from '../../shared/errors.ts';
import { fileSystemError } from './download.ts';

export const SPOOL_DIR = 'spool';

export interface StableCopyOptions {
  /** Time between the two looks at the file (default 300 ms). */
  settleMs?: number;
}

async function look(path: string): Promise<Stats> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new ProtocolError('ERR_FILE_MISSING', `${path} is no longer there`, { cause: error });
    }
    throw error;
  }
  if (!info.isFile()) throw new ProtocolError('ERR_FILE_MISSING', `${path} is not a file`);
  return info;
}

const same = (a: Stats, b: Stats) => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;

/** Throws ERR_FILE_BUSY unless `path` looks the same twice, `settleMs` apart. Answers its stats. */
export async function ensureSettled(path: string, options: StableCopyOptions = {}): Promise<Stats> {
  const first = await look(path);
  await sleep(options.settleMs ?? 300);
  const second = await look(path);
  if (!same(first, second)) {
    throw new ProtocolError('ERR_FILE_BUSY', `${path} is still being written (it changed while it was looked at); push again when the save has finished`);
  }
  if (second.size === 0) throw new ProtocolError('ERR_FILE_BUSY', `${path} is empty (still being written?)`);
  return second;
}

/**
 * Runs `work` on a file that must be settled, without waiting for it first: the file is looked
 * at before `work` starts and again once it is done and at least `settleMs` after the first
 * look (the wait overlaps the work). A file that changed in between is ERR_FILE_BUSY (also
 * when `work` failed, probably because of the change); one that is gone is ERR_FILE_MISSING;
 * an empty file is ERR_FILE_BUSY before any work. The file is the same at both looks, and
 * `work` read it in between: what it made is from the settled file.
 */
export async function whileSettled<T>(path: string, work: () => Promise<T>, options: StableCopyOptions = {}): Promise<T> {
  const first = await look(path);
  if (first.size === 0) throw new ProtocolError('ERR_FILE_BUSY', `${path} is empty (still being written?)`);
  const started = performance.now();
  const busy = () =>
    new ProtocolError('ERR_FILE_BUSY', `${path} is still being written (it changed while it was copied); push again when the save has finished`);
  let result: T;
  try {
    result = await work();
  } catch (error) {
    if (!same(first, await look(path))) throw busy();
    throw error;
  }
  const left = (options.settleMs ?? 300) - (performance.now() - started);
  if (left > 0) await sleep(left);
  if (!same(first, await look(path))) throw busy();
  return result;
}

/** Copies `source` to `target` (a kernel copy or clone where possible); nothing is left on failure. */
export async function copyInto(source: string, target: string): Promise<void> {
  try {
    await copyFile(source, target, constants.COPYFILE_FICLONE);
  } catch (error) {
    await rm(target, { force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') await look(source);
    throw fileSystemError(error, `copy ${source}`);
  }
}

/** Copies a settled `source` to `target` (see `whileSettled`: the settle wait overlaps the copy). */
export async function copySettled(source: string, target: string, options: StableCopyOptions = {}): Promise<void> {
  try {
    await whileSettled(source, () => copyInto(source, target), options);
  } catch (error) {
    await rm(target, { force: true });
    throw error;
  }
}

/** A fresh spool folder for one push. */
export async function spoolFolder(agentDir: string, itemId: string): Promise<string> {
  const dir = join(agentDir, SPOOL_DIR, itemId);
  await mkdir(dir, { recursive: true }).catch((error) => {
    throw fileSystemError(error, `create ${dir}`);
  });
  return dir;
}

export async function removeSpoolFolder(agentDir: string, itemId: string): Promise<void> {
  await rm(join(agentDir, SPOOL_DIR, itemId), { recursive: true, force: true });
}
