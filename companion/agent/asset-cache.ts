/**
 * Asset metadata the agent has seen through search and get, kept on disk per connection
 * (`<data>/agent/cache/assets/<connection>.json`, written behind, atomically), so a recently
 * browsed library can still be browsed when its server is unreachable, even without the
 * mirror. Bounded: the most recently seen `maxPerConnection` assets of each connection.
 *
 * Searching it is deliberately simple (every query term must appear in the file name or a
 * metadata value; collection, creator, keyword and format filters), most recently seen first.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import type { Asset, SearchPage, SearchQuery } from '../../shared/schemas/asset.ts';
import { readJsonFile, writeJsonFile } from './json-file.ts';

export const ASSET_CACHE_DEFAULTS = Object.freeze({
  maxPerConnection: 5_000, // assets kept per connection
  writeDelayMs: 1_000, // each connection's file is written at most once a second
  pageSize: 50,
});

interface Seen {
  seen: string;
  asset: Asset;
}

interface ConnectionFile {
  version: 1;
  /** Least recently seen first. */
  assets: Seen[];
}

const ASSETS = 'assets';

function fileName(connectionId: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/.test(connectionId)
    ? `${connectionId}.json`
    : `${createHash('sha256').update(connectionId).digest('hex')}.json`;
}

export class AssetCache {
  readonly dir: string;
  readonly #max: number;
  readonly #byConnection = new Map<string, Map<string, Seen>>();
  readonly #dirty = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, max: number) {
    this.dir = dir;
    this.#max = max;
  }

  /** Opens the cache in `<data>/agent/cache`, loading what earlier runs saw. */
  static async open(cacheDir: string, options: { maxPerConnection?: number } = {}): Promise<AssetCache> {
    const dir = join(cacheDir, ASSETS);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const cache = new AssetCache(dir, options.maxPerConnection ?? ASSET_CACHE_DEFAULTS.maxPerConnection);
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const file = await readJsonFile<ConnectionFile & { connection?: string }>(join(dir, name), { version: 1, assets: [] }).catch(
        () => undefined,
      );
      if (!file || typeof file.connection !== 'string' || !Array.isArray(file.assets)) continue;
      const map = new Map<string, Seen>();
      for (const seen of file.assets) if (typeof seen?.asset?.id === 'string') map.set(seen.asset.id, seen);
      cache.#byConnection.set(file.connection, map);
    }
    return cache;
  }

  /** Records assets just received from a connection's server. */
  remember(connectionId: string, assets: Asset[]): void {
    if (assets.length === 0) return;
    const map = this.#byConnection.get(connectionId) ?? new Map<string, Seen>();
    this.#byConnection.set(connectionId, map);
    const now = new Date().toISOString();
    for (const asset of assets) {
      map.delete(asset.id);
      map.set(asset.id, { seen: now, asset });
    }
    for (const id of map.keys()) {
      if (map.size <= this.#max) break;
      map.delete(id);
    }
    this.#markDirty(connectionId);
  }

  get(connectionId: string, assetId: string): Asset | undefined {
    return this.#byConnection.get(connectionId)?.get(assetId)?.asset;
  }

  /** Whether anything of this connection was seen. */
  knows(connectionId: string): boolean {
    return (this.#byConnection.get(connectionId)?.size ?? 0) > 0;
  }

  count(connectionId: string): number {
    return this.#byConnection.get(connectionId)?.size ?? 0;
  }

  /** Forgets an asset, or a whole connection. */
  forget(connectionId: string, assetId?: string): void {
    if (assetId === undefined) {
      this.#byConnection.delete(connectionId);
      this.#dirty.delete(connectionId);
      rm(join(this.dir, fileName(connectionId)), { force: true }).catch(() => {});
      return;
    }
    if (this.#byConnection.get(connectionId)?.delete(assetId)) this.#markDirty(connectionId);
  }

  /** A page of the assets seen from a connection that match `query` (cursor: an offset). */
  search(connectionId: string, query: SearchQuery): SearchPage {
    const all = [...(this.#byConnection.get(connectionId)?.values() ?? [])].reverse().map((s) => s.asset);
    const matching = all.filter((asset) => !asset.deleted && matches(asset, query));
    const offset = query.cursor === undefined ? 0 : parseOffset(query.cursor);
    const limit = Math.max(1, Math.min(query.limit ?? ASSET_CACHE_DEFAULTS.pageSize, 1000));
    const items = matching.slice(offset, offset + limit);
    const end = offset + items.length;
    return { items, next: end < matching.length ? `seen:${end}` : null, total: matching.length };
  }

  /** Writes what is pending and stops writing behind. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flush();
  }

  #markDirty(connectionId: string): void {
    this.#dirty.add(connectionId);
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush().catch(() => {});
    }, ASSET_CACHE_DEFAULTS.writeDelayMs);
    this.#timer.unref();
  }

  #flush(): Promise<void> {
    const ids = [...this.#dirty];
    this.#dirty.clear();
    const snapshots = ids.map((id) => ({
      path: join(this.dir, fileName(id)),
      value: { version: 1, connection: id, assets: [...(this.#byConnection.get(id)?.values() ?? [])] },
    }));
    this.#writing = this.#writing
      .catch(() => {})
      .then(async () => {
        for (const { path, value } of snapshots) await writeJsonFile(path, value);
      });
    return this.#writing;
  }
}

function parseOffset(cursor: string): number {
  const match = /^seen:(\d{1,9})$/.exec(cursor);
  if (!match) throw new ProtocolError('ERR_VALIDATION', 'cursor is not valid');
  return Number(match[1]);
}

function text(value: unknown): string {
  if (Array.isArray(value)) return value.map(text).join(' ');
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

function includesFolded(values: unknown, wanted: string): boolean {
  const list = Array.isArray(values) ? values : [values];
  return list.some((v) => typeof v === 'string' && v.toLowerCase() === wanted.toLowerCase());
}

function matches(asset: Asset, query: SearchQuery): boolean {
  if (query.collection && !asset.collections.includes(query.collection)) return false;
  if (query.creator && !includesFolded(asset.metadata.creator, query.creator)) return false;
  if (query.keyword && !includesFolded(asset.metadata.keywords, query.keyword)) return false;
  if (query.format) {
    const wanted = query.format.toLowerCase().replace(/^jpg$/, 'jpeg').replace(/^tif$/, 'tiff');
    if (asset.mediaType.toLowerCase() !== `image/${wanted}`) return false;
  }
  if (query.q) {
    const haystack = `${asset.filename} ${Object.values(asset.metadata).map(text).join(' ')}`.toLowerCase();
    const terms = query.q.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.every((term) => haystack.includes(term))) return false;
  }
  return true;
}
