/**
 * A verified, resumable download into a `.part` file: the bytes already there are kept and the
 * rest asked for with `Range: bytes=N-` and `If-Range` (the server's strong ETag is the file's
 * sha256), so a cut download resumes where it broke; the whole file is then checked against
 * the expected sha256 and size before anyone may use it.
 *
 * Failures keep what is worth keeping: a cut or short transfer keeps the `.part` for the next
 * attempt (ERR_DOWNLOAD_INCOMPLETE); a hash mismatch deletes it (ERR_DIGEST_MISMATCH, the bytes
 * are wrong); a full disk is ERR_DISK_FULL.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, truncate } from 'node:fs/promises';
import { ProtocolError } from '../../shared/errors.ts';

export interface DownloadOptions {
  url: string;
  fetch: typeof fetch;
  /** Where the bytes go; kept between attempts. */
  partPath: string;
  size: number;
  sha256: string;
  /** Called as bytes arrive (at most every `progressEveryBytes`). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Abort when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface DownloadResult {
  /** Bytes that were already in the `.part` file and not fetched again. */
  resumedFrom: number;
}

const PROGRESS_EVERY_BYTES = 256 * 1024;

/** Translates a file system error into the registry (ENOSPC → ERR_DISK_FULL). */
export function fileSystemError(error: unknown, what: string): unknown {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ProtocolError('ERR_DISK_FULL', `no space left to ${what}`, { cause: error });
  return error;
}

async function hashPrefix(path: string, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (length === 0) return hash;
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
  return hash;
}

/** Downloads `url` into `partPath` (resuming) and verifies it. */
export async function downloadVerified(options: DownloadOptions): Promise<DownloadResult> {
  const { partPath, size, sha256 } = options;
  let have = await stat(partPath).then((s) => s.size, () => 0);
  if (have > size) {
    await truncate(partPath, 0);
    have = 0;
  }
  const resumedFrom = have;
  let hash = await hashPrefix(partPath, have);
  if (have < size) {
    const idle = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
    const idleMs = options.idleTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', `no data for ${idleMs} ms`)), idleMs);
    };
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (have > 0) {
      headers.range = `bytes=${have}-`;
      headers['if-range'] = `"${sha256}"`;
    }
    const handle = await open(partPath, have > 0 ? 'r+' : 'w').catch((error) => {
      throw fileSystemError(error, `write ${partPath}`);
    });
    let position = have;
    try {
      arm();
      let response: Response;
      try {
        response = await options.fetch(options.url, { headers, signal, redirect: 'manual' });
      } catch (error) {
        throw new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', `the download could not start: ${(error as Error).message}`, { cause: error });
      }
      if (response.status === 200 && have > 0) {
        // The server sends the whole file (it ignored the range, or the file changed): start over.
        position = 0;
        hash = createHash('sha256');
        await handle.truncate(0);
      } else if (response.status !== 200 && response.status !== 206) {
        await response.body?.cancel().catch(() => {});
        const code = response.status === 403 || response.status === 404 || response.status === 410 ? 'ERR_UPSTREAM_ERROR' : 'ERR_DOWNLOAD_INCOMPLETE';
        throw new ProtocolError(code, `the download answered ${response.status}`, { extensions: { remoteStatus: response.status } });
      }
      if (!response.body) throw new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', 'the download has no body');
      let reported = position;
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          arm();
          if (position + chunk.length > size) throw new ProtocolError('ERR_DIGEST_MISMATCH', `the server sent more than ${size} bytes`);
          try {
            await handle.write(chunk, 0, chunk.length, position);
          } catch (error) {
            throw fileSystemError(error, `write ${partPath}`);
          }
          hash.update(chunk);
          position += chunk.length;
          if (position - reported >= PROGRESS_EVERY_BYTES) {
            reported = position;
            options.onProgress?.(position, size);
          }
        }
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        throw new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', `the download broke after ${position} of ${size} bytes`, { cause: error });
      }
      await handle.sync().catch(() => {});
    } finally {
      clearTimeout(timer);
      await handle.close().catch(() => {});
    }
    options.onProgress?.(position, size);
    if (position < size) {
      throw new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', `the download ended after ${position} of ${size} bytes`);
    }
  }
  const actual = hash.digest('hex');
  if (actual !== sha256) {
    await rm(partPath, { force: true });
    throw new ProtocolError('ERR_DIGEST_MISMATCH', `the downloaded file's sha-256 ${actual.slice(0, 12)}… is not the expected ${sha256.slice(0, 12)}…`);
  }
  return { resumedFrom };
}
