/**
 * A small durable JSON document (lowdb: whole-file atomic writes, temp file then rename) with
 * the catalog's discipline: every change goes through `mutate()`, one after another, and
 * resolves once it is on disk; a failed write reloads the file so memory never runs ahead of
 * what is stored. The folder is created private (0700): the events store holds secrets.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Low, Memory } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { Adapter } from 'lowdb';

export class JsonStore<T extends object> {
  readonly #db: Low<T>;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(adapter: Adapter<T>, empty: () => T) {
    this.#db = new Low(adapter, empty());
  }

  get data(): Readonly<T> {
    return this.#db.data;
  }

  async load(): Promise<void> {
    await this.#db.read();
  }

  /** Runs `fn` (synchronous) on the data and writes the result. Throwing writes nothing. */
  mutate<R>(fn: (data: T) => R): Promise<R> {
    const run = this.#queue.then(async () => {
      let result: R;
      try {
        result = fn(this.#db.data);
      } catch (error) {
        await this.#reload();
        throw error;
      }
      try {
        await this.#db.write();
      } catch (error) {
        await this.#reload();
        throw error;
      }
      return result;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves when every pending write is on disk. */
  async flush(): Promise<void> {
    await this.#queue;
  }

  async #reload(): Promise<void> {
    try {
      await this.#db.read();
    } catch {
      // Keep memory as it is; the next write retries.
    }
  }
}

export async function openJsonStore<T extends object>(path: string, empty: () => T): Promise<JsonStore<T>> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const adapter = new DataFile<T>(path, { parse: JSON.parse, stringify: (data) => JSON.stringify(data) });
  const store = new JsonStore(adapter, empty);
  await store.load();
  return store;
}

export async function openMemoryJsonStore<T extends object>(empty: () => T): Promise<JsonStore<T>> {
  const store = new JsonStore(new Memory<T>(), empty);
  await store.load();
  return store;
}
