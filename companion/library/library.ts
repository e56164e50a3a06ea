/**
 * The library: assets, versions and collections over the catalog, the blob store and the
 * search index. Framework-free; the HTTP routes are thin wrappers around these methods.
 *
 * A new file (asset or version) is always: received into a temp file and hashed → probed →
 * metadata read → thumbnail made → both adopted into the blob store → one catalog mutation.
 * Until that mutation is on disk nothing is visible; a crash before it leaves at most an
 * unreferenced blob, never a catalog entry without its file.
 */
import { copyFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { ProtocolError } from '../../shared/errors.ts';
import { formatIdentity, parseIdentity } from '../../shared/identity.ts';
import type { CollectionPrivacy } from '../metadata/privacy.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { loadMetadataProfile, type MetadataProfile } from '../metadata/profile.ts';
import { readMetadata } from '../metadata/read.ts';
import { writeMetadata, validateMetadataChange } from '../metadata/write.ts';
import { extractXmpPacket, scanXmp } from '../metadata/xmp-packet.ts';
import { BlobStore, type StoredBlob } from './blob-store.ts';
import type { Catalog, CatalogTransaction } from './catalog.ts';
import { newId, versionId } from './ids.ts';
import { findIdempotent, rememberIdempotent, type IdempotencyScope } from './idempotency.ts';
import { ImageChildError } from './image-child.ts';
import { canRender, probeImage, thumbnailInChild, writeThumbnail, type ImageProbe } from './probe.ts';
import {
  currentVersion,
  type AssetRecord,
  type ChangeRecord,
  type CollectionRecord,
  type Permission,
  type VersionRecord,
} from './records.ts';
import { SearchIndex, type SearchQuery, type SearchResult } from './search-index.ts';

export interface NewFileOptions {
  filename: string;
  user?: string;
  comment?: string;
  /** Expected sha256 (hex) of the body, from Content-Digest or an upload's metadata. */
  sha256?: string;
  /** Exact expected size in bytes. */
  size?: number;
  /** `Idempotency-Key` of the request: a repeated key returns the first result (library/idempotency.ts). */
  idempotencyKey?: string;
}

export interface CreateAssetOptions extends NewFileOptions {
  collection?: string;
  /** What the new asset was made from (an import's parent imagine:// URI), kept on its first version. */
  derivedFrom?: string;
}

export interface PushVersionOptions extends NewFileOptions {
  /** The version the new one is based on (the If-Match value). */
  ifMatch: string | undefined;
}

export interface CreateResult {
  asset: AssetRecord;
  /** true when identical content was already in the library: nothing was added. */
  duplicate: boolean;
}

const FILENAME_MAX = 255;

/** A safe display file name: no path, no control characters, bounded. */
export function cleanFilename(input: string | undefined): string {
  const base = (input ?? '').split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (!clean || clean === '.' || clean === '..') {
    throw new ProtocolError('ERR_FILENAME_INVALID', 'a file name is required');
  }
  if (clean.length > FILENAME_MAX) {
    throw new ProtocolError('ERR_FILENAME_INVALID', `file name longer than ${FILENAME_MAX} characters`);
  }
  return clean;
}

interface PreparedFile {
  original: StoredBlob;
  thumbnail?: StoredBlob;
  xmp?: StoredBlob;
  mediaType: string;
  width?: number;
  height?: number;
  metadata: AssetMetadata;
  warnings: string[];
}

export class Library {
  readonly catalog: Catalog;
  readonly blobs: BlobStore;
  readonly index = new SearchIndex();
  readonly maxUploadBytes: number;
  /** Resolves when the full-text index is complete. */
  readonly textIndexed: Promise<void>;
  /** sha256 of every version of every live asset → asset id (exact-duplicate detection). */
  #bySha = new Map<string, string>();

  #profile?: Promise<MetadataProfile>;

  constructor(options: { catalog: Catalog; blobs: BlobStore; maxUploadBytes: number; metadataProfile?: MetadataProfile }) {
    this.catalog = options.catalog;
    this.blobs = options.blobs;
    this.maxUploadBytes = options.maxUploadBytes;
    if (options.metadataProfile) this.#profile = Promise.resolve(options.metadataProfile);
    // Filters answer at once; the full-text part fills in between requests (a text search that
    // comes first finishes it), so a 100,000-asset catalog starts serving within seconds.
    this.textIndexed = this.index.rebuildInBackground(this.catalog.data.assets);
    for (const asset of this.catalog.data.assets) this.#rememberHashes(asset);
    this.catalog.onCommit((_changes, touched) => {
      for (const asset of touched) {
        this.index.upsert(asset);
        if (asset.deleted) this.#forgetHashes(asset);
        else this.#rememberHashes(asset);
      }
    });
  }

  #rememberHashes(asset: AssetRecord) {
    if (asset.deleted) return;
    for (const v of asset.versions) this.#bySha.set(v.sha256, asset.id);
  }

  #forgetHashes(asset: AssetRecord) {
    for (const v of asset.versions) if (this.#bySha.get(v.sha256) === asset.id) this.#bySha.delete(v.sha256);
  }

  /** The live asset with this content, if any. */
  findByHash(sha256: string): AssetRecord | undefined {
    const id = this.#bySha.get(sha256);
    return id ? this.catalog.asset(id) : undefined;
  }

  /** The metadata profile files are read and written with (`<data>/metadata-profile.json`, else the core one). */
  metadataProfile(): Promise<MetadataProfile> {
    this.#profile ??= loadMetadataProfile(dirname(this.blobs.root));
    return this.#profile;
  }

  getAsset(id: string): AssetRecord {
    const asset = this.catalog.asset(id);
    if (!asset) throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${id}"`);
    return asset;
  }

  /** A live (not deleted) asset. */
  getLiveAsset(id: string): AssetRecord {
    const asset = this.getAsset(id);
    if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${id}" was deleted`);
    return asset;
  }

  getVersion(asset: AssetRecord, id: string | undefined): VersionRecord {
    if (id === undefined) return currentVersion(asset);
    const version = asset.versions.find((v) => v.id === id);
    if (!version) throw new ProtocolError('ERR_VERSION_NOT_FOUND', `asset "${asset.id}" has no version "${id}"`);
    return version;
  }

  /**
   * The asset and version a repeated `Idempotency-Key` of `user` made, when it is remembered;
   * ERR_CONFLICT when the key was used for another scope.
   */
  idempotentResult(user: string | undefined, key: string | undefined, scope: IdempotencyScope): { asset: AssetRecord; version: string } | undefined {
    if (!key) return undefined;
    const record = findIdempotent(this.catalog.data, user, key, scope);
    const asset = record && this.catalog.asset(record.assetId);
    return record && asset ? { asset, version: record.version } : undefined;
  }

  /** The collection, or undefined. */
  findCollection(id: string): CollectionRecord | undefined {
    return this.catalog.collection(id);
  }

  getCollection(id: string): CollectionRecord {
    const collection = this.catalog.collection(id);
    if (!collection) throw new ProtocolError('ERR_COLLECTION_NOT_FOUND', `no collection "${id}"`);
    return collection;
  }

  /** `canSee` must depend only on the asset's collections (it is asked once per set of them). */
  search(query: SearchQuery, canSee: (asset: AssetRecord) => boolean, maxLimit: number): SearchResult {
    return this.index.search(query, { canSee, byCollections: true, maxLimit });
  }

  /** Receives a stream into a temp file, hashing it, with the size limits applied. */
  async receive(source: Readable, options: NewFileOptions): Promise<{ path: string; sha256: string; size: number }> {
    const tmp = this.blobs.tempPath();
    const { sha256, size } = await this.blobs.receive(source, tmp, {
      maxBytes: this.maxUploadBytes,
      expectedSize: options.size,
      expectedSha256: options.sha256,
    });
    return { path: tmp, sha256, size };
  }

  /** Probes, reads and stores a received temp file (which this call consumes). */
  async #prepare(tmpPath: string, sha256: string, size: number): Promise<PreparedFile> {
    let thumbTmp: string | undefined;
    try {
      const probe = await probeImage(tmpPath);
      // Reading the metadata (exiftool, another process), taking the XMP packet out, making the
      // thumbnail (libvips threads) and flushing the original to disk use different resources:
      // they run side by side, and each is waited for (settled) before the temp files go.
      const thumbWarnings: string[] = [];
      if (canRender(probe)) thumbTmp = this.blobs.tempPath('.jpg');
      // One read of the file's metadata segments serves both the hazard check before exiftool
      // and the packet extraction (a JPEG is read up to its image data only).
      const xmpScan = scanXmp(tmpPath);
      xmpScan.catch(() => undefined); // each user reports a failure its own way
      const [read, xmpPart, thumbPart, synced] = await Promise.allSettled([
        this.metadataProfile().then((profile) => readMetadata(tmpPath, { profile, xmpScan })),
        extractXmpPacket(tmpPath, { scan: xmpScan }).then(async (packet) => ({
          warnings: packet.warnings,
          xmp: packet.packet ? await this.blobs.put(Readable.from([packet.packet])) : undefined,
        })),
        thumbTmp ? this.#makeThumbnail(tmpPath, thumbTmp, probe, thumbWarnings) : Promise.resolve(undefined),
        this.blobs.sync(tmpPath),
      ]);
      for (const part of [read, xmpPart, thumbPart, synced]) if (part.status === 'rejected') throw part.reason;
      const { metadata, warnings } = (read as PromiseFulfilledResult<Awaited<ReturnType<typeof readMetadata>>>).value;
      const { xmp, warnings: xmpWarnings } = (xmpPart as PromiseFulfilledResult<{ warnings: string[]; xmp?: StoredBlob }>).value;
      const thumbnail = (thumbPart as PromiseFulfilledResult<StoredBlob | undefined>).value;
      warnings.push(...xmpWarnings, ...thumbWarnings);
      const original = await this.blobs.adopt(tmpPath, sha256, size, { synced: true });
      return { original, thumbnail, xmp, mediaType: probe.mediaType, width: probe.width, height: probe.height, metadata, warnings };
    } finally {
      await rm(tmpPath, { force: true });
      if (thumbTmp) await rm(thumbTmp, { force: true });
    }
  }

  /**
   * The thumbnail of a received file. Pixels that cannot be decoded (a truncated or corrupt
   * file whose header was readable) refuse the file: an asset nothing can show is worse than
   * none. A Photoshop file whose composite cannot be read, or a failure to write the
   * thumbnail itself, only costs the thumbnail (a warning). Big images are decoded in a child
   * process (image-child.ts): one that dies or runs out of time refuses the file like pixels
   * that cannot be decoded; one that cannot be started only costs the thumbnail.
   */
  async #makeThumbnail(source: string, target: string, probe: ImageProbe, warnings: string[]): Promise<StoredBlob | undefined> {
    try {
      await writeThumbnail(source, target, probe.mediaType, { inChild: thumbnailInChild(probe) });
    } catch (error) {
      const message = (error as Error).message;
      const childFailed = error instanceof ImageChildError && error.kind === 'spawn';
      if (probe.decodable && !childFailed && !isOutputFailure(message, target)) {
        throw new ProtocolError('ERR_NOT_AN_IMAGE', `the image data cannot be decoded: ${message.split('\n')[0]}`);
      }
      warnings.push(`thumbnail could not be made: ${message}`);
      return undefined;
    }
    try {
      const hashed = await BlobStore.hashFile(target);
      return await this.blobs.adopt(target, hashed.sha256, hashed.size);
    } catch (error) {
      warnings.push(`thumbnail could not be stored: ${(error as Error).message}`);
      return undefined;
    }
  }

  #versionRecord(number: number, file: PreparedFile, options: NewFileOptions, derivedFrom?: string): VersionRecord {
    const version: VersionRecord = {
      id: versionId(number),
      number,
      created: new Date().toISOString(),
      sha256: file.original.sha256,
      size: file.original.size,
      mediaType: file.mediaType,
      metadata: file.metadata,
    };
    if (options.user) version.createdBy = options.user;
    if (options.comment) version.comment = options.comment;
    if (file.width) version.width = file.width;
    if (file.height) version.height = file.height;
    if (derivedFrom) version.derivedFrom = derivedFrom;
    if (file.thumbnail) version.thumbnailSha256 = file.thumbnail.sha256;
    if (file.xmp) version.xmpSha256 = file.xmp.sha256;
    return version;
  }

  /**
   * Adds a new asset from a temp file this call takes over (moved into the store or deleted).
   * Identical content already in the library is not added again: the existing asset comes
   * back with `duplicate: true`.
   */
  async createAssetFromTemp(
    tmp: { path: string; sha256: string; size: number },
    options: CreateAssetOptions,
  ): Promise<CreateResult> {
    const filename = cleanFilename(options.filename);
    if (options.collection) this.getCollection(options.collection);
    const key = options.idempotencyKey;
    const replay = this.idempotentResult(options.user, key, 'asset');
    const existing = replay?.asset ?? this.findByHash(tmp.sha256);
    if (existing) {
      await rm(tmp.path, { force: true });
      if (!replay && key) await this.#remember(options.user, key, 'asset', existing);
      return { asset: existing, duplicate: !replay };
    }
    const file = await this.#prepare(tmp.path, tmp.sha256, tmp.size);
    return this.catalog.mutate((tx) => {
      const replayed = this.idempotentResult(options.user, key, 'asset');
      if (replayed) return { asset: replayed.asset, duplicate: false };
      const again = this.findByHash(tmp.sha256);
      if (again) {
        if (key) rememberIdempotent(tx.data, { user: options.user, key, scope: 'asset', assetId: again.id, version: currentVersion(again).id });
        return { asset: again, duplicate: true };
      }
      if (options.collection && !tx.collection(options.collection)) {
        throw new ProtocolError('ERR_COLLECTION_NOT_FOUND', `no collection "${options.collection}"`);
      }
      const now = new Date().toISOString();
      const version = this.#versionRecord(1, file, options, options.derivedFrom);
      const asset: AssetRecord = {
        id: newId(),
        filename,
        created: now,
        updated: now,
        versions: [version],
        collections: options.collection ? [options.collection] : [],
      };
      if (options.user) asset.createdBy = options.user;
      tx.addAsset(asset);
      if (key) rememberIdempotent(tx.data, { user: options.user, key, scope: 'asset', assetId: asset.id, version: version.id });
      tx.addChange({ type: 'asset.created', assetId: asset.id, version: version.id });
      if (options.collection) {
        tx.addChange({ type: 'collection.items_added', collectionId: options.collection, items: [asset.id] });
      }
      return { asset, duplicate: false };
    });
  }

  async #remember(user: string | undefined, key: string, scope: IdempotencyScope, asset: AssetRecord): Promise<void> {
    await this.catalog.mutate((tx) => {
      if (!findIdempotent(tx.data, user, key, scope)) {
        rememberIdempotent(tx.data, { user, key, scope, assetId: asset.id, version: currentVersion(asset).id });
      }
    });
  }

  async createAsset(source: Readable, options: CreateAssetOptions): Promise<CreateResult> {
    cleanFilename(options.filename);
    if (options.collection) this.getCollection(options.collection);
    const tmp = await this.receive(source, options);
    return this.createAssetFromTemp(tmp, options);
  }

  /** Ingests a file on disk (copied into the store; the source is never modified). */
  async ingestFile(path: string, options: CreateAssetOptions): Promise<CreateResult> {
    // Copy (a kernel copy), then hash the copy: what is stored is what was hashed, even if the
    // source changes meanwhile; a duplicate's copy is dropped by createAssetFromTemp.
    const tmp = this.blobs.tempPath();
    try {
      await copyFile(path, tmp);
      const { sha256, size } = await BlobStore.hashFile(tmp);
      return await this.createAssetFromTemp({ path: tmp, sha256, size }, options);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  #checkBase(asset: AssetRecord, ifMatch: string | undefined): VersionRecord {
    const current = currentVersion(asset);
    if (ifMatch === undefined || ifMatch === '') {
      throw new ProtocolError('ERR_PRECONDITION_REQUIRED', 'If-Match with the base version is required');
    }
    if (ifMatch !== current.id) {
      throw new ProtocolError(
        'ERR_PRECONDITION_FAILED',
        `base version "${ifMatch}" is not the current version "${current.id}"`,
        { extensions: { currentVersion: current.id } },
      );
    }
    return current;
  }

  async pushVersionFromTemp(
    assetId: string,
    tmp: { path: string; sha256: string; size: number },
    options: PushVersionOptions,
  ): Promise<AssetRecord> {
    const scope = `version:${assetId}` as const;
    try {
      const replay = this.idempotentResult(options.user, options.idempotencyKey, scope);
      if (replay) {
        await rm(tmp.path, { force: true });
        return replay.asset;
      }
      this.#checkBase(this.getLiveAsset(assetId), options.ifMatch);
    } catch (error) {
      await rm(tmp.path, { force: true });
      throw error;
    }
    const file = await this.#prepare(tmp.path, tmp.sha256, tmp.size);
    return this.catalog.mutate((tx) => {
      // The same key may have been committed while this file was being prepared.
      const replay = this.idempotentResult(options.user, options.idempotencyKey, scope);
      if (replay) return replay.asset;
      return this.#appendVersion(tx, assetId, file, options);
    });
  }

  /** A repeated Idempotency-Key answers the first result before the base is checked. */
  async pushVersion(assetId: string, source: Readable, options: PushVersionOptions): Promise<AssetRecord> {
    const replay = this.idempotentResult(options.user, options.idempotencyKey, `version:${assetId}`);
    if (replay) return replay.asset;
    this.#checkBase(this.getLiveAsset(assetId), options.ifMatch);
    const tmp = await this.receive(source, options);
    return this.pushVersionFromTemp(assetId, tmp, options);
  }

  #appendVersion(tx: CatalogTransaction, assetId: string, file: PreparedFile, options: PushVersionOptions): AssetRecord {
    const asset = tx.asset(assetId);
    if (!asset) throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${assetId}"`);
    if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${assetId}" was deleted`);
    const base = this.#checkBase(asset, options.ifMatch);
    const version = this.#versionRecord(base.number + 1, file, options, base.id);
    const rightsBefore = rightsFingerprint(base.metadata);
    asset.versions.push(version);
    asset.updated = version.created;
    if (options.filename) asset.filename = cleanFilename(options.filename);
    tx.addChange({ type: 'asset.updated', assetId, version: version.id });
    if (options.idempotencyKey) {
      rememberIdempotent(tx.data, { user: options.user, key: options.idempotencyKey, scope: `version:${assetId}`, assetId, version: version.id });
    }
    if (rightsFingerprint(version.metadata) !== rightsBefore) {
      tx.addChange({ type: 'rights.changed', assetId, version: version.id });
    }
    return asset;
  }

  /** Writes metadata into a copy of the current file and stores it as a new version. */
  async editMetadata(
    assetId: string,
    change: AssetMetadata,
    options: { ifMatch: string | undefined; user?: string; comment?: string },
  ): Promise<AssetRecord> {
    const profile = await this.metadataProfile();
    validateMetadataChange(change, profile);
    const asset = this.getLiveAsset(assetId);
    const base = this.#checkBase(asset, options.ifMatch);
    const tmp = this.blobs.tempPath();
    try {
      await copyFile(this.blobs.pathOf(base.sha256), tmp);
      await writeMetadata(tmp, change, { profile });
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    const { sha256, size } = await BlobStore.hashFile(tmp);
    return this.pushVersionFromTemp(
      assetId,
      { path: tmp, sha256, size },
      { ifMatch: options.ifMatch, user: options.user, filename: asset.filename, comment: options.comment ?? 'metadata edited' },
    );
  }

  /** Deletes an asset as a tombstone: its versions stay stored, it leaves search and lists. */
  async deleteAsset(assetId: string): Promise<void> {
    this.getLiveAsset(assetId);
    await this.catalog.mutate((tx) => {
      const asset = tx.asset(assetId);
      if (!asset || asset.deleted) return;
      asset.deleted = new Date().toISOString();
      asset.updated = asset.deleted;
      tx.addChange({ type: 'asset.deleted', assetId });
    });
  }

  async createCollection(input: { name: string; public?: boolean; user?: string }): Promise<CollectionRecord> {
    const name = input.name.trim();
    if (!name || name.length > 200) throw new ProtocolError('ERR_VALIDATION', 'a collection needs a name of 1-200 characters');
    return this.catalog.mutate((tx) => {
      const collection: CollectionRecord = {
        id: newId(12),
        name,
        public: input.public ?? false,
        created: new Date().toISOString(),
      };
      if (input.user) collection.createdBy = input.user;
      tx.data.collections.push(collection);
      return collection;
    });
  }

  /** Finds a collection by name, creating it when missing (for ingest). */
  async ensureCollection(name: string, options: { public?: boolean; user?: string } = {}): Promise<CollectionRecord> {
    const found = this.catalog.data.collections.find((c) => c.name === name);
    if (found) {
      if (options.public && !found.public) return this.updateCollection(found.id, { public: true });
      return found;
    }
    return this.createCollection({ name, ...options });
  }

  async updateCollection(
    id: string,
    patch: { name?: string; public?: boolean; privacy?: Partial<CollectionPrivacy> },
  ): Promise<CollectionRecord> {
    this.getCollection(id);
    return this.catalog.mutate((tx) => {
      const collection = tx.collection(id)!;
      if (patch.name !== undefined) collection.name = patch.name.trim() || collection.name;
      if (patch.public !== undefined) collection.public = patch.public;
      if (patch.privacy !== undefined) collection.privacy = { ...collection.privacy, ...patch.privacy };
      // Visibility of every member changes with the flag: touch them so the index follows.
      for (const asset of tx.data.assets) if (asset.collections.includes(id)) tx.asset(asset.id);
      return collection;
    });
  }

  /**
   * Shares a collection with a user of another server (`name@domain`), or ends the share
   * (`permission` null). Their server's signed requests for that user then read it.
   */
  async shareCollection(id: string, identity: string, permission: Permission | null): Promise<CollectionRecord> {
    this.getCollection(id);
    const who = formatIdentity(parseIdentity(identity));
    return this.catalog.mutate((tx) => {
      const collection = tx.collection(id)!;
      const shares = { ...collection.shares };
      if (permission === null) delete shares[who];
      else shares[who] = permission;
      collection.shares = shares;
      for (const asset of tx.data.assets) if (asset.collections.includes(id)) tx.asset(asset.id);
      return collection;
    });
  }

  /** The live asset made from `parentUri` (an import of it), if any. */
  findDerivedFrom(parentUri: string): AssetRecord | undefined {
    return this.catalog.data.assets.find((a) => !a.deleted && a.versions[0]?.derivedFrom === parentUri);
  }

  /** The collections shared with `identity` (`name@domain`), as grants. */
  sharesOf(identity: string): Record<string, Permission> {
    const grants: Record<string, Permission> = {};
    for (const collection of this.catalog.data.collections) {
      const permission = collection.shares?.[identity];
      if (permission) grants[collection.id] = permission;
    }
    return grants;
  }

  async addToCollection(id: string, assetIds: string[]): Promise<string[]> {
    this.getCollection(id);
    for (const assetId of assetIds) this.getLiveAsset(assetId);
    return this.catalog.mutate((tx) => {
      const added: string[] = [];
      for (const assetId of new Set(assetIds)) {
        const asset = tx.asset(assetId);
        if (asset && !asset.deleted && !asset.collections.includes(id)) {
          asset.collections.push(id);
          added.push(assetId);
        }
      }
      if (added.length) tx.addChange({ type: 'collection.items_added', collectionId: id, items: added });
      return added;
    });
  }

  async removeFromCollection(id: string, assetId: string): Promise<boolean> {
    this.getCollection(id);
    this.getAsset(assetId);
    return this.catalog.mutate((tx) => {
      const asset = tx.asset(assetId)!;
      const at = asset.collections.indexOf(id);
      if (at === -1) return false;
      asset.collections.splice(at, 1);
      tx.addChange({ type: 'collection.items_removed', collectionId: id, items: [assetId] });
      return true;
    });
  }

  collectionSize(id: string): number {
    let n = 0;
    for (const asset of this.catalog.data.assets) if (!asset.deleted && asset.collections.includes(id)) n++;
    return n;
  }

  /**
   * The change feed after `since` (a sequence number as a string; empty for the start).
   * Returns at most `limit` events, in order.
   */
  changes(since: string | undefined, limit: number): { events: ChangeRecord[]; next: string; hasMore: boolean } {
    let after = 0;
    if (since !== undefined && since !== '') {
      if (!/^\d{1,15}$/.test(since)) throw new ProtocolError('ERR_VALIDATION', '`since` must be a cursor from a changes page');
      after = Number(since);
    }
    const all = this.catalog.data.changes;
    // Sequence numbers are dense and start at 1, so the position is known without searching.
    const start = Math.min(all.length, Math.max(0, after));
    const events = all.slice(start, start + limit);
    const last = events[events.length - 1];
    return { events, next: String(last ? last.seq : Math.max(after, 0)), hasMore: start + limit < all.length };
  }
}

/** Whether a thumbnail error is about writing the output (disk, permissions), not decoding the input. */
function isOutputFailure(message: string, target: string): boolean {
  return message.includes(target) || /ENOSPC|EACCES|EROFS|EMFILE|no space left|permission denied|unable to open .* for write/i.test(message);
}

/** A string that changes when any rights field changes. */
function rightsFingerprint(metadata: AssetMetadata): string {
  return JSON.stringify([
    metadata.copyrightNotice,
    metadata.usageTerms,
    metadata.webStatement,
    metadata.rightsMarked,
    metadata.licensor,
    metadata.licenseEndDate,
  ]);
}
