/**
 * Ingest: adds the image files of folders and paths to the library, in parallel within the
 * machine's cores (one file more than cores: while one file is copied, hashed or flushed to
 * disk, the others keep the cores decoding). Exact duplicates (by sha256) are skipped; a file that cannot be read is
 * reported and skipped, and the run goes on. The source files are never modified.
 */
import { availableParallelism } from 'node:os';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { isProtocolError } from '../../shared/errors.ts';
import type { Library } from './library.ts';

/** Files ingested at once by default: one more than the machine's cores. */
export const DEFAULT_INGEST_CONCURRENCY = availableParallelism() + 1;

export interface IngestOptions {
  collection?: string;
  /** Make the collection public (created when missing). */
  public?: boolean;
  user?: string;
  concurrency?: number;
  onProgress?: (progress: IngestProgress) => void;
}

export interface IngestFileResult {
  path: string;
  status: 'created' | 'duplicate' | 'failed';
  assetId?: string;
  error?: { code: string; message: string };
}

export interface IngestProgress {
  done: number;
  total: number;
  last: IngestFileResult;
}

export interface IngestSummary {
  created: number;
  duplicates: number;
  failed: number;
  files: IngestFileResult[];
  seconds: number;
}

/** Files under the given paths (folders walked recursively; dot-files and symlinks skipped). */
export async function listFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = await readdir(path, { withFileTypes: true });
      entries.sort((a, b) => a.name.localeCompare(b.name));
      for (const entry of entries) {
        if (entry.name.startsWith('.') || entry.isSymbolicLink()) continue;
        if (entry.isDirectory() || entry.isFile()) await walk(join(path, entry.name));
      }
    } else if (info.isFile()) {
      out.push(path);
    }
  };
  for (const path of paths) await walk(resolve(path));
  return out;
}

export async function ingestFiles(library: Library, files: string[], options: IngestOptions = {}): Promise<IngestSummary> {
  const started = performance.now();
  const collection = options.collection
    ? (await library.ensureCollection(options.collection, { public: options.public, user: options.user })).id
    : undefined;
  const results: IngestFileResult[] = new Array(files.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const index = next++;
      const path = files[index]!;
      let result: IngestFileResult;
      try {
        const { asset, duplicate } = await library.ingestFile(path, {
          filename: basename(path),
          collection,
          user: options.user,
        });
        if (duplicate && collection && !asset.collections.includes(collection)) {
          await library.addToCollection(collection, [asset.id]);
        }
        result = { path, status: duplicate ? 'duplicate' : 'created', assetId: asset.id };
      } catch (error) {
        const code = isProtocolError(error) ? error.code : ((error as NodeJS.ErrnoException).code ?? 'ERR_INTERNAL');
        result = { path, status: 'failed', error: { code, message: (error as Error).message } };
      }
      results[index] = result;
      done++;
      options.onProgress?.({ done, total: files.length, last: result });
    }
  };
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_INGEST_CONCURRENCY);
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return {
    created: results.filter((r) => r.status === 'created').length,
    duplicates: results.filter((r) => r.status === 'duplicate').length,
    failed: results.filter((r) => r.status === 'failed').length,
    files: results,
    seconds: (performance.now() - started) / 1000,
  };
}
