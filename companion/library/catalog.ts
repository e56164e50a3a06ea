/**
 * The catalog: assets, versions, collections, users, tokens and the change log, held in
 * memory and persisted by lowdb (whole-file atomic writes: temp file then rename, concurrent
 * writes coalesced by steno). Every mutation goes through `mutate()`, which applies it in
 * memory and resolves once it is on disk; a failed write reloads the catalog from disk so
 * memory never runs ahead of what is stored.
 *
 * `openMemoryCatalog()` gives the same interface without a file, for tests.
 */
import { join } from 'node:path';
import { Low, Memory } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { Adapter } from 'lowdb';
import type {
  AssetRecord,
  CatalogData,
  ChangeRecord,
  CollectionRecord,
  TokenRecord,
  UserRecord,
} from './records.ts';

export const CATALOG_FILE = 'catalog.json';

function emptyCatalog(): CatalogData {
  return { schemaVersion: 1, assets: [], collections: [], users: [], tokens: [], changes: [], nextSeq: 1 };
}

export type ChangeInput = Omit<ChangeRecord, 'seq' | 'id' | 'time'>;

/** Read access given to a mutation, plus the one way to append to the change log. */
export interface CatalogTransaction {
  data: CatalogData;
  asset(id: string): AssetRecord | undefined;
  collection(id: string): CollectionRecord | undefined;
  addAsset(asset: AssetRecord): void;
  addChange(change: ChangeInput): ChangeRecord;
}

export type CatalogListener = (changes: readonly ChangeRecord[], touchedAssets: readonly AssetRecord[]) => void;

export class Catalog {
  readonly #db: Low<CatalogData>;
  #assetsById = new Map<string, AssetRecord>();
  #collectionsById = new Map<string, CollectionRecord>();
  #listeners = new Set<CatalogListener>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(adapter: Adapter<CatalogData>) {
    this.#db = new Low(adapter, emptyCatalog());
  }

  async load(): Promise<void> {
    await this.#db.read();
    const data = this.#db.data;
    if (data.schemaVersion !== 1 || !Array.isArray(data.assets)) {
      throw new Error('catalog file has an unknown layout');
    }
    this.#reindex();
  }

  #reindex(): void {
    this.#assetsById = new Map(this.#db.data.assets.map((a) => [a.id, a]));
    this.#collectionsById = new Map(this.#db.data.collections.map((c) => [c.id, c]));
  }

  get data(): Readonly<CatalogData> {
    return this.#db.data;
  }

  asset(id: string): AssetRecord | undefined {
    return this.#assetsById.get(id);
  }

  collection(id: string): CollectionRecord | undefined {
    return this.#collectionsById.get(id);
  }

  user(name: string): UserRecord | undefined {
    return this.#db.data.users.find((u) => u.name === name);
  }

  tokenByHash(hash: string): TokenRecord | undefined {
    return this.#db.data.tokens.find((t) => t.hash === hash && !t.revoked);
  }

  /** Called after each committed mutation with its change events and the assets it touched. */
  onCommit(listener: CatalogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `fn` against the catalog and persists the result. Mutations run one after another;
   * `fn` must be synchronous so no other mutation sees a half-applied change. If `fn` throws,
   * nothing is written (it must throw before changing anything, or the catalog is reloaded).
   */
  mutate<T>(fn: (tx: CatalogTransaction) => T): Promise<T> {
    const run = this.#queue.then(() => this.#apply(fn));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply<T>(fn: (tx: CatalogTransaction) => T): Promise<T> {
    const data = this.#db.data;
    const changes: ChangeRecord[] = [];
    const touched = new Map<string, AssetRecord>();
    const tx: CatalogTransaction = {
      data,
      asset: (id) => {
        const asset = this.#assetsById.get(id);
        if (asset) touched.set(id, asset);
        return asset;
      },
      collection: (id) => this.#collectionsById.get(id),
      addAsset: (asset) => {
        data.assets.push(asset);
        this.#assetsById.set(asset.id, asset);
        touched.set(asset.id, asset);
      },
      addChange: (input) => {
        const seq = data.nextSeq++;
        const change: ChangeRecord = { ...input, seq, id: `evt-${seq}`, time: new Date().toISOString() };
        data.changes.push(change);
        changes.push(change);
        return change;
      },
    };
    let result: T;
    try {
      result = fn(tx);
    } catch (error) {
      if (changes.length > 0) await this.#reloadAfterFailure();
      throw error;
    }
    try {
      await this.#db.write();
    } catch (error) {
      await this.#reloadAfterFailure();
      throw error;
    }
    this.#collectionsById = new Map(data.collections.map((c) => [c.id, c]));
    for (const listener of this.#listeners) listener(changes, [...touched.values()]);
    return result;
  }

  async #reloadAfterFailure(): Promise<void> {
    try {
      await this.#db.read();
      this.#reindex();
    } catch {
      // The file could not be read back either; keep memory as it is, the next write retries.
    }
  }
}

export async function openCatalog(dataDir: string): Promise<Catalog> {
  const adapter = new DataFile<CatalogData>(join(dataDir, CATALOG_FILE), {
    parse: JSON.parse,
    stringify: (data) => JSON.stringify(data),
  });
  const catalog = new Catalog(adapter);
  await catalog.load();
  return catalog;
}

export async function openMemoryCatalog(): Promise<Catalog> {
  const catalog = new Catalog(new Memory<CatalogData>());
  await catalog.load();
  return catalog;
}
