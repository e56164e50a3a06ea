/**
 * The one shared exiftool instance: a pool of long-lived exiftool processes sized to the
 * machine, writing in place without `_original` copies. Created on first use; `endExiftool()`
 * must run at shutdown or the process keeps running.
 */
import { availableParallelism } from 'node:os';
import { ExifTool } from 'exiftool-vendored';

let instance: ExifTool | undefined;

export function getExiftool(): ExifTool {
  instance ??= new ExifTool({
    maxProcs: Math.max(1, availableParallelism()),
    writeArgs: ['-overwrite_original'],
    taskTimeoutMillis: 30_000,
  });
  return instance;
}

export async function endExiftool(): Promise<void> {
  const current = instance;
  instance = undefined;
  if (current) await current.end();
}
