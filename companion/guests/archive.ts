/**
 * A guest's batch download: one zip (stored, not compressed: pictures are compressed already)
 * streamed as it is made, never held whole. Items are fetched a few at a time ahead of the one
 * being written (remote originals into temp files, verified against their sha256 before a byte
 * of them enters the archive), and written in the order asked. An item that fails is skipped and
 * listed in `MANIFEST.txt`, the archive's last entry, with its error code; the archive never
 * breaks for one item. Entries go in one folder per server; names are made safe and unique.
 *
 * Limits: no Zip64, so an archive is meant for pictures (each entry and the whole under 4 GiB).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { Zip, ZipPassThrough } from 'fflate';
import { isProtocolError } from '../../shared/errors.ts';

export interface PreparedItem {
  /** Folder in the archive (the server's authority). */
  folder: string;
  filename: string;
  /** The file to copy into the archive. */
  path: string;
  sha256: string;
  size: number;
  /** Removes a temp file once written. */
  cleanup?: () => Promise<void>;
}

export interface ArchiveOptions {
  uris: string[];
  /** Fetches and verifies one item. Throwing (ideally a ProtocolError) lists it as failed. */
  prepare: (uri: string, signal: AbortSignal) => Promise<PreparedItem>;
  /** Items fetched ahead of the one being written (default 3). */
  concurrency?: number;
  signal?: AbortSignal;
  now?: () => Date;
}

export interface ArchiveSummary {
  written: Array<{ uri: string; name: string; sha256: string; size: number }>;
  failed: Array<{ uri: string; code: string; message: string }>;
}

type Outcome = { ok: true; item: PreparedItem } | { ok: false; code: string; message: string };

/** A file or folder name that is safe in a zip on every system. */
export function safeName(name: string, fallback: string): string {
  const clean = name
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_')
    .replace(/^[.\s]+|[.\s]+$/g, '')
    .slice(0, 180);
  return clean || fallback;
}

/** `name.jpg`, then `name (2).jpg`, `name (3).jpg`... (case-insensitively unique). */
export function uniqueName(wanted: string, taken: Set<string>): string {
  const dot = wanted.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [wanted.slice(0, dot), wanted.slice(dot)] : [wanted, ''];
  let name = wanted;
  for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${stem} (${n})${ext}`;
  taken.add(name.toLowerCase());
  return name;
}

/** Writes the archive to `out` and ends it; resolves with what went in and what failed. */
export async function writeArchive(out: Writable, options: ArchiveOptions): Promise<ArchiveSummary> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  out.once('close', abort);
  const concurrency = Math.max(1, options.concurrency ?? 3);
  const now = options.now ?? (() => new Date());
  const summary: ArchiveSummary = { written: [], failed: [] };
  const taken = new Set<string>();

  let zipError: Error | undefined;
  const zip = new Zip((error, chunk, final) => {
    if (error) {
      zipError = error;
      out.destroy(error);
      return;
    }
    if (!out.destroyed) out.write(chunk);
    if (final && !out.destroyed) out.end();
  });
  const pause = async () => {
    if (out.writableNeedDrain && !out.destroyed) await Promise.race([once(out, 'drain'), once(out, 'close')]);
  };

  const started = new Map<number, Promise<Outcome>>();
  const start = (i: number) => {
    if (i >= options.uris.length || started.has(i) || controller.signal.aborted) return;
    started.set(
      i,
      options.prepare(options.uris[i]!, controller.signal).then(
        (item): Outcome => ({ ok: true, item }),
        (error: unknown): Outcome => ({
          ok: false,
          code: isProtocolError(error) ? error.code : 'ERR_INTERNAL',
          message: isProtocolError(error) ? error.message : 'the item could not be fetched',
        }),
      ),
    );
  };

  try {
    for (let i = 0; i < options.uris.length && !controller.signal.aborted; i++) {
      for (let j = i; j < i + concurrency; j++) start(j);
      const outcome = await started.get(i)!;
      started.delete(i);
      const uri = options.uris[i]!;
      if (!outcome.ok) {
        summary.failed.push({ uri, code: outcome.code, message: outcome.message });
        continue;
      }
      const { item } = outcome;
      try {
        const folder = safeName(item.folder, 'server');
        const name = `${folder}/${uniqueName(safeName(item.filename, 'picture'), taken)}`;
        const entry = new ZipPassThrough(name);
        entry.mtime = now();
        zip.add(entry);
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of createReadStream(item.path) as AsyncIterable<Buffer>) {
          if (controller.signal.aborted) break;
          hash.update(chunk);
          size += chunk.length;
          entry.push(chunk);
          await pause();
        }
        entry.push(new Uint8Array(0), true);
        if (controller.signal.aborted) break;
        const digest = hash.digest('hex');
        if (digest !== item.sha256 || size !== item.size) {
          // Local files are checked while written: a damaged one is in the archive, and said so.
          summary.failed.push({ uri, code: 'ERR_DIGEST_MISMATCH', message: `${name} does not match its sha256 ${item.sha256}: do not trust it` });
        } else {
          summary.written.push({ uri, name, sha256: digest, size });
        }
      } catch (error) {
        summary.failed.push({ uri, code: 'ERR_INTERNAL', message: 'the item could not be written' });
        if (zipError) throw zipError;
        throw error;
      } finally {
        await item.cleanup?.().catch(() => {});
      }
    }
    if (!controller.signal.aborted) {
      const manifest = new ZipPassThrough('MANIFEST.txt');
      manifest.mtime = now();
      zip.add(manifest);
      manifest.push(new TextEncoder().encode(manifestText(summary, now())), true);
      zip.end();
    }
    return summary;
  } finally {
    options.signal?.removeEventListener('abort', abort);
    // Items fetched ahead and never written leave no temp file behind.
    controller.abort();
    for (const pending of started.values()) {
      const outcome = await pending;
      if (outcome.ok) await outcome.item.cleanup?.().catch(() => {});
    }
    if (zipError && !out.destroyed) out.destroy(zipError);
  }
}

export function manifestText(summary: ArchiveSummary, when: Date): string {
  const lines = [
    `Imagine guest download, ${when.toISOString()}`,
    `${summary.written.length} file(s) written, ${summary.failed.length} failed.`,
    '',
  ];
  for (const item of summary.written) lines.push(`OK\t${item.name}\tsha256:${item.sha256}\t${item.size}\t${item.uri}`);
  for (const item of summary.failed) lines.push(`FAILED\t${item.uri}\t${item.code}\t${item.message.replace(/\s+/g, ' ')}`);
  return `${lines.join('\r\n')}\r\n`;
}
