/**
 * Local search over one connection's mirror, with the server's own index
 * (companion/library/search-index.ts): the same query language, filters, sorts, totals and
 * cursor rules as `GET {api}/assets`, answered from the mirrored assets.
 *
 * The index knows catalog records, so each mirrored asset is shown to it as a one-version
 * record (its current version with the asset's metadata, media type and size): that is all the
 * index reads. Everything mirrored is visible (the server already filtered by the token).
 */
import type { Asset, SearchPage, SearchQuery } from '../../../shared/schemas/asset.ts';
import type { AssetRecord, VersionRecord } from '../../library/records.ts';
import { SearchIndex } from '../../library/search-index.ts';
import type { AppliedChanges, MirrorStore } from './store.ts';

/** Largest page answered locally (the server's default maximum). */
export const LOCAL_MAX_LIMIT = 200;

/** The catalog record the search index reads for a protocol asset. */
export function indexRecordOf(asset: Asset): AssetRecord {
  const current = asset.versions.find((v) => v.id === asset.currentVersion) ?? asset.versions[asset.versions.length - 1];
  const version: VersionRecord = {
    id: asset.currentVersion,
    number: current?.number ?? 1,
    created: current?.created ?? asset.updated,
    sha256: current?.sha256 ?? '',
    size: current?.size ?? 0,
    mediaType: asset.mediaType,
    metadata: asset.metadata,
  };
  const width = asset.width ?? current?.width;
  const height = asset.height ?? current?.height;
  if (width !== undefined) version.width = width;
  if (height !== undefined) version.height = height;
  const record: AssetRecord = {
    id: asset.id,
    filename: asset.filename,
    created: asset.created,
    updated: asset.updated,
    versions: [version],
    collections: asset.collections,
  };
  if (asset.deleted) record.deleted = asset.deleted;
  return record;
}

const seeEverything = { canSee: () => true, byCollections: true } as const;

export class LocalIndex {
  readonly #store: MirrorStore;
  readonly #index = new SearchIndex();
  /** Resolves when the full-text part of the first build is complete. */
  readonly ready: Promise<void>;

  constructor(store: MirrorStore) {
    this.#store = store;
    this.ready = this.#index.rebuildInBackground(mapIterable(store.assets(), indexRecordOf));
    store.onApply((changes) => this.#follow(changes));
  }

  get size(): number {
    return this.#index.size;
  }

  /**
   * One page of matches, as the server would answer it. Throws ERR_VALIDATION / ERR_BAD_REQUEST
   * for a bad filter or cursor, like the server.
   */
  search(query: SearchQuery, now = Date.now()): SearchPage {
    const result = this.#index.search(query, { ...seeEverything, maxLimit: LOCAL_MAX_LIMIT, now });
    const items: Asset[] = [];
    for (const id of result.ids) {
      const asset = this.#store.get(id);
      if (asset) items.push(asset);
    }
    return { items, next: result.next, total: result.total };
  }

  #follow(changes: AppliedChanges): void {
    if (changes.cleared) {
      this.#index.rebuild(mapIterable(this.#store.assets(), indexRecordOf));
      return;
    }
    for (const id of changes.deleted) this.#index.remove(id);
    for (const asset of changes.put) this.#index.upsert(indexRecordOf(asset));
  }
}

function* mapIterable<T, U>(items: Iterable<T>, fn: (item: T) => U): IterableIterator<U> {
  for (const item of items) yield fn(item);
}
