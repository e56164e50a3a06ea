/**
 * A bounded, content-addressed derivative cache on disk with least-recently-used eviction.
 *
 * Keys are sha256 hex digests (callers hash the source's sha256 with the canonical request,
 * so a key names its content forever and entries never go stale). A file lives at
 * `<dir>/ab/<key><suffix>`, written to a temp file and renamed, so a reader never sees half a
 * file. The index (key → size, in recency order) is rebuilt from the folder at `init()`,
 * oldest modification first. When the total passes `maxBytes`, the least recently used
 * entries are deleted, except pinned ones (a pyramid being read).
 *
 * A small in-memory layer (`memoryBytes`) keeps the hottest small entries as buffers.
 *
 * @example
 *   const cache = new DiskCache({ dir: join(dataDir, 'cache', 'iiif'), maxBytes: 2 * 1024 ** 3 });
 *   await cache.init();
 *   const key = cacheKey(sourceSha, 'full/max/0/default.jpg');
 *   const bytes = (await cache.get(key)) ?? (await cache.put(key, await render()));
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskCacheOptions {
  dir: string;
  /** Largest total size on disk, bytes. */
  maxBytes: number;
  /** Largest total size of entries kept in memory too, bytes (0: none). */
  memoryBytes?: number;
  /** Largest single entry kept in memory, bytes. */
  memoryEntryBytes?: number;
  /** File name suffix of entries (e.g. ".tif"). */
  suffix?: string;
}

const KEY = /^[0-9a-f]{64}$/;

/** sha256 of the parts joined by newlines: the content address of a derivative. */
export function cacheKey(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

export class DiskCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #suffix: string;
  /** key → size on disk; Map order is recency (first = least recently used). */
  readonly #entries = new Map<string, number>();
  readonly #memory = new Map<string, Buffer>();
  readonly #memoryMax: number;
  readonly #memoryEntryMax: number;
  readonly #pins = new Map<string, number>();
  #bytes = 0;
  #memoryBytes = 0;
  #evicting: Promise<void> = Promise.resolve();

  constructor(options: DiskCacheOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.#suffix = options.suffix ?? '';
    this.#memoryMax = options.memoryBytes ?? 0;
    this.#memoryEntryMax = options.memoryEntryBytes ?? 1024 * 1024;
  }

  /** Creates the folder and indexes what is already there (oldest first). */
  async init(): Promise<void> {
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    const found: Array<{ key: string; size: number; time: number }> = [];
    for (const sub of await readdir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const name of await readdir(join(this.dir, sub)).catch(() => [] as string[])) {
        const key = name.slice(0, 64);
        if (!KEY.test(key) || name !== key + this.#suffix) continue;
        const info = await stat(join(this.dir, sub, name)).catch(() => undefined);
        if (info) found.push({ key, size: info.size, time: info.mtimeMs });
      }
    }
    found.sort((a, b) => a.time - b.time);
    for (const entry of found) {
      this.#entries.set(entry.key, entry.size);
      this.#bytes += entry.size;
    }
    await this.#evict();
  }

  get size(): { entries: number; bytes: number; memoryBytes: number } {
    return { entries: this.#entries.size, bytes: this.#bytes, memoryBytes: this.#memoryBytes };
  }

  pathOf(key: string): string {
    if (!KEY.test(key)) throw new Error('cache keys are sha256 hex digests');
    return join(this.dir, key.slice(0, 2), key + this.#suffix);
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Marks an entry used (most recent) and returns whether it exists. */
  touch(key: string): boolean {
    const size = this.#entries.get(key);
    if (size === undefined) return false;
    this.#entries.delete(key);
    this.#entries.set(key, size);
    return true;
  }

  /** The bytes of an entry, or undefined when absent (or gone from disk meanwhile). */
  async get(key: string): Promise<Buffer | undefined> {
    if (!this.touch(key)) return undefined;
    const hot = this.#memory.get(key);
    if (hot) {
      this.#memory.delete(key);
      this.#memory.set(key, hot);
      return hot;
    }
    try {
      const bytes = await readFile(this.pathOf(key));
      this.#remember(key, bytes);
      return bytes;
    } catch {
      this.#forget(key);
      return undefined;
    }
  }

  /** Stores bytes under a key (atomically) and returns them. */
  async put(key: string, bytes: Buffer): Promise<Buffer> {
    const tmp = this.tempPath();
    await writeFile(tmp, bytes);
    await this.adopt(key, tmp);
    this.#remember(key, bytes);
    return bytes;
  }

  /** A temp path inside the cache folder (same file system, so `adopt` is a rename). */
  tempPath(suffix = ''): string {
    return join(this.dir, 'tmp', `${randomUUID()}${suffix}`);
  }

  /** Moves a finished file into the cache under `key`. */
  async adopt(key: string, tmpPath: string): Promise<void> {
    const path = this.pathOf(key);
    const { size } = await stat(tmpPath);
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
    await rename(tmpPath, path);
    const previous = this.#entries.get(key);
    if (previous !== undefined) this.#bytes -= previous;
    this.#entries.delete(key);
    this.#entries.set(key, size);
    this.#bytes += size;
    if (this.#bytes > this.maxBytes) await this.#evict();
  }

  /** Keeps an entry from eviction until the returned function is called. */
  pin(key: string): () => void {
    this.#pins.set(key, (this.#pins.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.#pins.get(key) ?? 1) - 1;
      if (n <= 0) this.#pins.delete(key);
      else this.#pins.set(key, n);
    };
  }

  async delete(key: string): Promise<void> {
    this.#forget(key);
    await rm(this.pathOf(key), { force: true });
  }

  #forget(key: string): void {
    const size = this.#entries.get(key);
    if (size !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= size;
    }
    const hot = this.#memory.get(key);
    if (hot) {
      this.#memory.delete(key);
      this.#memoryBytes -= hot.length;
    }
  }

  #remember(key: string, bytes: Buffer): void {
    if (bytes.length > this.#memoryEntryMax || bytes.length > this.#memoryMax || this.#memory.has(key)) return;
    this.#memory.set(key, bytes);
    this.#memoryBytes += bytes.length;
    for (const [oldKey, old] of this.#memory) {
      if (this.#memoryBytes <= this.#memoryMax) break;
      this.#memory.delete(oldKey);
      this.#memoryBytes -= old.length;
    }
  }

  /** Deletes least recently used, unpinned entries until the total fits. One eviction at a time. */
  #evict(): Promise<void> {
    this.#evicting = this.#evicting.then(async () => {
      const victims: string[] = [];
      for (const [key] of this.#entries) {
        if (this.#bytes <= this.maxBytes) break;
        if (this.#pins.has(key)) continue;
        victims.push(key);
        this.#forget(key);
      }
      await Promise.all(victims.map((key) => rm(this.pathOf(key), { force: true })));
    });
    return this.#evicting;
  }
}
