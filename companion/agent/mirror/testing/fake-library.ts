/**
 * An in-memory library as the sync engine sees one (`SyncSource`): assets with tombstones, a
 * change feed numbered like the reference server's (`next` = the last event's `seq`; a cursor
 * past the end is echoed back), search pages by offset, and the failures a real one has:
 * forgotten cursors, a restore from a backup, a broken feed, an unreachable network. For the
 * mirror's unit tests and benchmarks; the integration test uses the real server.
 */
import { ProtocolError } from '../../../../shared/errors.ts';
import type { Asset, SearchPage, SearchQuery } from '../../../../shared/schemas/asset.ts';
import type { ChangeEvent, ChangeEventType, ChangesPage } from '../../../../shared/schemas/changes.ts';
import type { SyncSource } from '../sync-engine.ts';

export type FakeOp = 'changes' | 'search' | 'getAsset';

export interface FakeBackup {
  assets: Map<string, Asset>;
  changes: ChangeEvent[];
  nextSeq: number;
}

export class FakeLibrary implements SyncSource {
  readonly authority: string;
  assets = new Map<string, Asset>();
  events: ChangeEvent[] = [];
  nextSeq = 1;
  /** Events up to this seq were pruned: older cursors are refused. */
  prunedThrough = 0;
  calls: Record<FakeOp, number> = { changes: 0, search: 0, getAsset: 0 };
  /** Fault injection: an error to throw for this call, or undefined to answer. */
  fault: ((op: FakeOp, arg: unknown) => Error | undefined) | undefined;
  /** Replaces a feed page before it is answered (garbage tests). */
  mangle: ((page: ChangesPage, since: string | undefined) => unknown) | undefined;
  #clock = Date.parse('2025-01-01T00:00:00Z');

  constructor(authority = 'fake.example') {
    this.authority = authority;
  }

  tick(): string {
    this.#clock += 1000;
    return new Date(this.#clock).toISOString();
  }

  uri(id: string): string {
    return `imagine://${this.authority}/images/${id}`;
  }

  #event(type: ChangeEventType, subject: string, extra: Partial<ChangeEvent> = {}): void {
    const seq = this.nextSeq++;
    this.events.push({ seq, id: `evt-${seq}`, type, time: this.tick(), subject, ...extra });
  }

  create(id: string, fields: { title?: string; keywords?: string[]; collections?: string[]; width?: number; height?: number } = {}): Asset {
    const time = this.tick();
    const asset = makeAsset(this.authority, id, { ...fields, created: time });
    this.assets.set(id, asset);
    this.#event('asset.created', this.uri(id), { version: asset.currentVersion });
    return asset;
  }

  update(id: string, metadata: Record<string, string | string[] | null>): Asset {
    const old = this.#live(id);
    const time = this.tick();
    const number = old.versions.length + 1;
    const version = { ...old.versions[0]!, id: `${id}-v${number}`, number, created: time };
    const merged = { ...old.metadata };
    for (const [key, value] of Object.entries(metadata)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    const asset: Asset = { ...old, metadata: merged, versions: [...old.versions, version], currentVersion: version.id, updated: time };
    const rightsBefore = old.rights;
    if ('usageTerms' in metadata || 'copyrightNotice' in metadata) {
      asset.rights = {
        ...rightsBefore,
        doNotDistribute: /do not distribute/i.test(String(merged.usageTerms ?? '')),
        ...(typeof merged.usageTerms === 'string' ? { usageTerms: merged.usageTerms } : {}),
      };
    }
    this.assets.set(id, asset);
    this.#event('asset.updated', this.uri(id), { version: version.id });
    if (asset.rights !== rightsBefore) this.#event('rights.changed', this.uri(id), { version: version.id });
    return asset;
  }

  remove(id: string): void {
    const old = this.#live(id);
    this.assets.set(id, { ...old, deleted: this.tick() });
    this.#event('asset.deleted', this.uri(id));
  }

  addToCollection(collection: string, ids: string[]): void {
    for (const id of ids) {
      const old = this.#live(id);
      this.assets.set(id, { ...old, collections: [...old.collections, collection] });
    }
    this.#event('collection.items_added', `imagine://${this.authority}/collections/${collection}`, { items: ids.map((id) => this.uri(id)) });
  }

  /** The live assets, as the mirror should hold them. */
  live(): Asset[] {
    return [...this.assets.values()].filter((a) => !a.deleted);
  }

  backup(): FakeBackup {
    return { assets: new Map(this.assets), changes: [...this.events], nextSeq: this.nextSeq };
  }

  restore(backup: FakeBackup): void {
    this.assets = new Map(backup.assets);
    this.events = [...backup.changes];
    this.nextSeq = backup.nextSeq;
  }

  #live(id: string): Asset {
    const asset = this.assets.get(id);
    if (!asset || asset.deleted) throw new Error(`fake: no live asset ${id}`);
    return asset;
  }

  #check(op: FakeOp, arg: unknown): void {
    this.calls[op] += 1;
    const error = this.fault?.(op, arg);
    if (error) throw error;
  }

  async changes(since?: string, limit = 100): Promise<ChangesPage> {
    this.#check('changes', { since, limit });
    // Without a cursor: from the oldest event kept.
    let after = this.prunedThrough;
    if (since !== undefined && since !== '') {
      if (!/^\d{1,15}$/.test(since)) throw new ProtocolError('ERR_VALIDATION', '`since` must be a cursor from a changes page', { status: 400 });
      after = Number(since);
      if (after < this.prunedThrough) throw new ProtocolError('ERR_VALIDATION', `cursor ${after} is older than the feed keeps`, { status: 400 });
    }
    const rest = this.events.filter((e) => e.seq > after);
    const events = rest.slice(0, limit);
    const last = events[events.length - 1];
    const page: ChangesPage = { events, next: String(last ? last.seq : after), hasMore: rest.length > limit };
    if (this.mangle) return this.mangle(page, since) as ChangesPage;
    return structuredClone(page);
  }

  async search(query: SearchQuery): Promise<SearchPage> {
    this.#check('search', query);
    const matches = this.live()
      .filter((a) => query.collection === undefined || a.collections.includes(query.collection))
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
    const offset = query.cursor === undefined ? 0 : Number(query.cursor);
    if (!Number.isInteger(offset) || offset < 0) throw new ProtocolError('ERR_BAD_REQUEST', 'malformed cursor');
    const limit = query.limit ?? 50;
    const items = matches.slice(offset, offset + limit);
    const end = offset + items.length;
    return structuredClone({ items, next: end < matches.length ? String(end) : null, total: matches.length });
  }

  async getAsset(id: string): Promise<{ asset: Asset; etag: string }> {
    this.#check('getAsset', id);
    const asset = this.assets.get(id);
    if (!asset) throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${id}"`);
    if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${id}" was deleted`);
    return { asset: structuredClone(asset), etag: asset.currentVersion };
  }
}

export interface MakeAssetFields {
  title?: string;
  keywords?: string[];
  collections?: string[];
  created?: string;
  width?: number;
  height?: number;
  mediaType?: string;
  creator?: string[];
  usageTerms?: string;
}

/** A protocol asset as a server would present it. */
export function makeAsset(authority: string, id: string, fields: MakeAssetFields = {}): Asset {
  const created = fields.created ?? '2025-01-01T00:00:00.000Z';
  const mediaType = fields.mediaType ?? 'image/jpeg';
  const width = fields.width ?? 640;
  const height = fields.height ?? 480;
  const metadata: Asset['metadata'] = { title: fields.title ?? `Asset ${id}`, keywords: fields.keywords ?? ['test'] };
  if (fields.creator) metadata.creator = fields.creator;
  if (fields.usageTerms) metadata.usageTerms = fields.usageTerms;
  return {
    id,
    uri: `imagine://${authority}/images/${id}`,
    filename: `${id}.jpg`,
    mediaType,
    width,
    height,
    created,
    updated: created,
    currentVersion: `${id}-v1`,
    metadata,
    versions: [{ id: `${id}-v1`, number: 1, created, sha256: '0'.repeat(64), size: 1234, mediaType, width, height }],
    rights: { doNotDistribute: /do not distribute/i.test(fields.usageTerms ?? ''), expired: false, ...(fields.usageTerms ? { usageTerms: fields.usageTerms } : {}) },
    collections: fields.collections ?? [],
    thumbnail: `https://${authority}/api/v1/assets/${id}/thumbnail?v=${id}-v1`,
    iiif: `https://${authority}/iiif/3/${id}`,
  };
}
