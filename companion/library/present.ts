/**
 * Catalog records as the protocol shows them: `imagine://` URIs, absolute URLs for the
 * thumbnail and the IIIF service, the rights summary. The origin comes from the request.
 */
import type { Asset, AssetMetadata, Collection, Version } from '../../shared/schemas/asset.ts';
import type { ChangeEvent } from '../../shared/schemas/changes.ts';
import { formatUri, uriAuthorityFromOrigin } from '../../shared/uri.ts';
import { currentVersion, type AssetRecord, type ChangeRecord, type CollectionRecord, type VersionRecord } from './records.ts';
import { rightsSummary } from './rights.ts';
import { DEFAULT_COLLECTION_PRIVACY, filterMetadata, type PrivacyPolicy } from '../metadata/privacy.ts';

export interface PresentContext {
  origin: string;
  apiBase: string;
  iiifBase: string;
  /** What the caller may learn of where pictures were taken; everything when absent. */
  privacy?: PrivacyPolicy;
  /** The same for one asset, from its collections' settings (overrides `privacy`). */
  privacyOf?: (asset: AssetRecord) => PrivacyPolicy;
}

/** The privacy policy that applies to this caller for `asset`; undefined = everything. */
export function privacyFor(ctx: PresentContext, asset?: AssetRecord): PrivacyPolicy | undefined {
  return asset && ctx.privacyOf ? ctx.privacyOf(asset) : ctx.privacy;
}

/** Metadata as this caller may see it (the privacy filter for guests and public callers). */
export function visibleMetadata(metadata: AssetMetadata, ctx: PresentContext, asset?: AssetRecord): AssetMetadata {
  const policy = privacyFor(ctx, asset);
  return policy ? filterMetadata(metadata, policy) : metadata;
}

export function assetUri(origin: string, id: string, version?: string): string {
  return formatUri({ authority: uriAuthorityFromOrigin(origin), type: 'images', id, ...(version ? { version } : {}) });
}

export function collectionUri(origin: string, id: string): string {
  return formatUri({ authority: uriAuthorityFromOrigin(origin), type: 'collections', id });
}

export function presentVersion(version: VersionRecord): Version {
  const { metadata: _metadata, thumbnailSha256: _thumb, ...rest } = version;
  return rest;
}

export function presentAsset(asset: AssetRecord, ctx: PresentContext): Asset {
  const current = currentVersion(asset);
  const id = encodeURIComponent(asset.id);
  const out: Asset = {
    id: asset.id,
    uri: assetUri(ctx.origin, asset.id),
    filename: asset.filename,
    mediaType: current.mediaType,
    created: asset.created,
    updated: asset.updated,
    currentVersion: current.id,
    metadata: visibleMetadata(current.metadata, ctx, asset),
    versions: asset.versions.map(presentVersion),
    rights: rightsSummary(current.metadata),
    collections: asset.collections,
    thumbnail: current.thumbnailSha256 ? `${ctx.apiBase}/assets/${id}/thumbnail?v=${current.id}` : null,
    iiif: current.thumbnailSha256 ? `${ctx.iiifBase}/3/${id}` : null,
  };
  if (current.width) out.width = current.width;
  if (current.height) out.height = current.height;
  if (asset.deleted) out.deleted = asset.deleted;
  return out;
}

export function presentCollection(collection: CollectionRecord, itemCount: number, ctx: PresentContext): Collection {
  return {
    id: collection.id,
    uri: collectionUri(ctx.origin, collection.id),
    name: collection.name,
    public: collection.public,
    created: collection.created,
    itemCount,
    privacy: { ...DEFAULT_COLLECTION_PRIVACY, ...collection.privacy },
  };
}

export function presentChange(change: ChangeRecord, ctx: PresentContext): ChangeEvent {
  const event: ChangeEvent = {
    seq: change.seq,
    id: change.id,
    type: change.type,
    time: change.time,
    subject: change.assetId
      ? assetUri(ctx.origin, change.assetId)
      : collectionUri(ctx.origin, change.collectionId ?? ''),
  };
  if (change.version) event.version = change.version;
  if (change.items) event.items = change.items.map((id) => assetUri(ctx.origin, id));
  return event;
}
