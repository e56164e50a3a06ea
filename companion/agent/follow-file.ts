/**
 * Reads a file while another process writes it (exiftool making a push's spool file), to send
 * it as it grows: its bytes in order, as they appear, ending once `written` has resolved and
 * every byte there by then has been read. The writer must only append (exiftool writes its
 * output front to back); anything else is caught downstream, where the finished file's digest
 * is checked against what was sent.
 *
 * `written` rejecting, the file never appearing, or `signal` aborting fails the stream.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ProtocolError } from '../../shared/errors.ts';

const CHUNK_BYTES = 1024 * 1024;

export interface FollowFileOptions {
  /** How long to wait for more bytes before looking again, ms (default 10). */
  pollMs?: number;
  signal?: AbortSignal;
}

export function followFile(path: string, written: Promise<unknown>, options: FollowFileOptions = {}): Readable {
  return Readable.from(follow(path, written, options), { objectMode: false });
}

async function* follow(path: string, written: Promise<unknown>, options: FollowFileOptions): AsyncGenerator<Buffer> {
  const pollMs = options.pollMs ?? 10;
  let done = false;
  let failure: unknown;
  const settled = written.then(
    () => {
      done = true;
    },
    (error: unknown) => {
      done = true;
      failure = error ?? new Error('the write failed');
    },
  );
  const check = () => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    if (failure !== undefined) throw failure;
  };
  const pause = () => Promise.race([new Promise((resolve) => setTimeout(resolve, pollMs)), settled]);

  let handle: FileHandle | undefined;
  try {
    // The writer creates the file when it starts writing.
    while (!handle) {
      check();
      const finished = done;
      try {
        handle = await open(path, 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        if (finished) throw new ProtocolError('ERR_FILE_MISSING', `${path} was never written`);
        await pause();
      }
    }
    let position = 0;
    for (;;) {
      check();
      // Read after the write ended: what is there is all there will be.
      const finished = done;
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const { bytesRead } = await handle.read(chunk, 0, CHUNK_BYTES, position);
      if (bytesRead > 0) {
        position += bytesRead;
        yield chunk.subarray(0, bytesRead);
      } else if (finished) {
        check();
        return;
      } else {
        await pause();
      }
    }
  } finally {
    await handle?.close();
  }
}
