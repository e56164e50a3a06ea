/**
 * What the catalog stores. The catalog is an index of the files: embedded metadata is the
 * source of truth, and `metadata` here is what was read from the current version's file.
 * Records are plain JSON (lowdb writes them as they are).
 */
import type { CollectionPrivacy } from '../metadata/privacy.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import type { ChangeEventType } from '../../shared/schemas/changes.ts';

export interface VersionRecord {
  id: string;
  number: number;
  created: string;
  createdBy?: string;
  comment?: string;
  sha256: string;
  size: number;
  mediaType: string;
  width?: number;
  height?: number;
  derivedFrom?: string;
  /** sha256 of the thumbnail rendition (a JPEG), when one could be made. */
  thumbnailSha256?: string;
  /** sha256 of the file's raw XMP packet (UTF-8, stored as a blob), when it has one. */
  xmpSha256?: string;
  /** Metadata read from this version's file. */
  metadata: AssetMetadata;
}

export interface AssetRecord {
  id: string;
  filename: string;
  created: string;
  updated: string;
  createdBy?: string;
  /** Oldest first; never rewritten, only appended to. */
  versions: VersionRecord[];
  collections: string[];
  /** Set when the asset was deleted: it stays as a tombstone so feeds and URIs stay meaningful. */
  deleted?: string;
}

export interface CollectionRecord {
  id: string;
  name: string;
  public: boolean;
  created: string;
  createdBy?: string;
  /** Users of other servers (`name@domain`) this collection is shared with. */
  shares?: Record<string, Permission>;
  /** What guests and the public may learn of where its pictures were taken (default: nothing). */
  privacy?: Partial<CollectionPrivacy>;
}

export type Permission = 'read' | 'write';

export interface UserRecord {
  name: string;
  email?: string;
  admin: boolean;
  created: string;
  /** Per-collection permissions (collection id → permission). */
  grants: Record<string, Permission>;
}

export interface TokenRecord {
  id: string;
  user: string;
  /** SHA-256 (hex) of the token: the token itself is never stored. */
  hash: string;
  created: string;
  label?: string;
  revoked?: string;
}

export interface ChangeRecord {
  seq: number;
  id: string;
  type: ChangeEventType;
  time: string;
  /** Local id of what changed (asset or collection); URIs are made when served. */
  assetId?: string;
  collectionId?: string;
  version?: string;
  items?: string[];
}

/** An `Idempotency-Key` and the result of the first request that sent it (library/idempotency.ts). */
export interface IdempotencyRecord {
  key: string;
  /** The user who sent it ('' for none). */
  user: string;
  scope: string;
  assetId: string;
  version: string;
  created: string;
  expires: string;
}

export interface CatalogData {
  schemaVersion: 1;
  assets: AssetRecord[];
  collections: CollectionRecord[];
  users: UserRecord[];
  tokens: TokenRecord[];
  changes: ChangeRecord[];
  /** Next change sequence number. */
  nextSeq: number;
  /** Idempotency keys of recent uploads (absent in catalogs written before they existed). */
  idempotency?: IdempotencyRecord[];
}

export function currentVersion(asset: AssetRecord): VersionRecord {
  const version = asset.versions[asset.versions.length - 1];
  if (!version) throw new Error(`asset ${asset.id} has no version`);
  return version;
}
