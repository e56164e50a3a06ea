/**
 * IIIF Presentation 3 documents for the library: a Manifest per asset (one Canvas with the
 * current version, or the version the identifier names, painted by an image whose service is
 * this server's Image API 3.0 endpoint) and a Collection per library collection (a list of
 * the asset manifests the caller may read).
 *
 * URLs (see docs/decisions.md): `{iiif}/manifests/{id}` and `{iiif}/collections/{id}`, apart
 * from the image services under `{iiif}/3/` and `{iiif}/2/`.
 *
 * @example
 *   buildManifest({ iiifBase: 'https://host/iiif', apiBase: 'https://host/api/v1', asset, version, identifier: 'a1b2' });
 */
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import type { AssetRecord, CollectionRecord, VersionRecord } from '../library/records.ts';

export const PRESENTATION_CONTEXT = 'http://iiif.io/api/presentation/3/context.json';
const THUMBNAIL_EDGE = 256;

type LanguageMap = Record<string, string[]>;

function text(value: AssetMetadata[string] | undefined): string[] {
  if (typeof value === 'string') return value.trim() ? [value] : [];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v.trim() !== '');
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)];
  return [];
}

const none = (values: string[]): LanguageMap => ({ none: values });
const en = (value: string): LanguageMap => ({ en: [value] });

/** Presentation 3 `rights` must be a Creative Commons or RightsStatements.org URI. */
export function presentationRights(value: AssetMetadata[string] | undefined): string | undefined {
  const url = text(value)[0]?.trim();
  if (!url) return undefined;
  return /^https?:\/\/(creativecommons\.org\/(licenses|publicdomain)\/|rightsstatements\.org\/vocab\/)[^\s]*$/.test(url)
    ? url
    : undefined;
}

const METADATA_LABELS: Array<[string, string]> = [
  ['creator', 'Creator'],
  ['description', 'Description'],
  ['keywords', 'Keywords'],
  ['dateCreated', 'Date created'],
  ['copyrightNotice', 'Copyright'],
  ['usageTerms', 'Usage terms'],
  ['credit', 'Credit'],
];

export interface ManifestInput {
  iiifBase: string;
  apiBase: string;
  asset: AssetRecord;
  version: VersionRecord;
  /** As in the URL: `id` or `id@v2` (percent-encoded). */
  identifier: string;
  /** Verified webmention supplements of the asset (companion/webmention). */
  supplements?: readonly ManifestSupplement[];
}

/**
 * A supplement another server published about the asset and announced by webmention: an
 * AnnotationPage is referenced from the manifest's `annotations`, anything else is `seeAlso`.
 */
export interface ManifestSupplement {
  source: string;
  kind: 'annotations' | 'seeAlso';
  type: string;
  format: string;
  label?: string;
}

/** The image service and a thumbnail that never asks for upscaling. */
function imageParts(iiifBase: string, identifier: string, version: VersionRecord) {
  const service = `${iiifBase}/3/${identifier}`;
  const width = version.width ?? 0;
  const height = version.height ?? 0;
  const scale = Math.min(1, THUMBNAIL_EDGE / Math.max(width, height, 1));
  const tw = Math.max(1, Math.round(width * scale));
  const th = Math.max(1, Math.round(height * scale));
  return {
    service,
    thumbnail: {
      id: `${service}/full/${tw},${th}/0/default.jpg`,
      type: 'Image',
      format: 'image/jpeg',
      width: tw,
      height: th,
      service: [{ id: service, type: 'ImageService3', profile: 'level2' }],
    },
  };
}

export function manifestUrl(iiifBase: string, identifier: string): string {
  return `${iiifBase}/manifests/${identifier}`;
}

export function buildManifest(input: ManifestInput): Record<string, unknown> {
  const { asset, version, iiifBase } = input;
  const id = manifestUrl(iiifBase, input.identifier);
  const metadata = version.metadata;
  const title = text(metadata.title)[0] ?? asset.filename;
  const { service, thumbnail } = imageParts(iiifBase, input.identifier, version);
  const canvas = `${id}/canvas/${version.id}`;
  const manifest: Record<string, unknown> = {
    '@context': PRESENTATION_CONTEXT,
    id,
    type: 'Manifest',
    label: none([title]),
    metadata: METADATA_LABELS.flatMap(([key, label]) => {
      const values = text(metadata[key]);
      return values.length ? [{ label: en(label), value: none(values) }] : [];
    }).concat([{ label: en('Version'), value: none([version.id]) }]),
    thumbnail: [thumbnail],
    seeAlso: [
      {
        id: `${input.apiBase}/assets/${encodeURIComponent(asset.id)}`,
        type: 'Dataset',
        format: 'application/json',
        label: en('Imagine asset record'),
      },
    ],
    items: [
      {
        id: canvas,
        type: 'Canvas',
        label: none([`${asset.filename} (${version.id})`]),
        width: version.width,
        height: version.height,
        items: [
          {
            id: `${canvas}/page`,
            type: 'AnnotationPage',
            items: [
              {
                id: `${canvas}/page/image`,
                type: 'Annotation',
                motivation: 'painting',
                target: canvas,
                body: {
                  id: `${service}/full/max/0/default.jpg`,
                  type: 'Image',
                  format: 'image/jpeg',
                  width: version.width,
                  height: version.height,
                  service: [{ id: service, type: 'ImageService3', profile: 'level2' }],
                },
              },
            ],
          },
        ],
      },
    ],
  };
  const summary = text(metadata.description)[0];
  if (summary) manifest.summary = none([summary]);
  const copyright = text(metadata.copyrightNotice)[0];
  if (copyright) manifest.requiredStatement = { label: en('Copyright'), value: none([copyright]) };
  const rights = presentationRights(metadata.webStatement);
  if (rights) manifest.rights = rights;
  addSupplements(manifest, input.supplements ?? []);
  return manifest;
}

function addSupplements(manifest: Record<string, unknown>, supplements: readonly ManifestSupplement[]): void {
  const pages = supplements.filter((s) => s.kind === 'annotations');
  if (pages.length) {
    manifest.annotations = pages.map((s) => ({ id: s.source, type: 'AnnotationPage', ...(s.label ? { label: none([s.label]) } : {}) }));
  }
  const seeAlso = manifest.seeAlso as Record<string, unknown>[];
  for (const s of supplements) {
    if (s.kind !== 'seeAlso') continue;
    seeAlso.push({ id: s.source, type: s.type, format: s.format, ...(s.label ? { label: none([s.label]) } : {}) });
  }
}

export interface CollectionInput {
  iiifBase: string;
  collection: CollectionRecord;
  /** The readable assets with an image, in the order to list them. */
  assets: AssetRecord[];
}

export function buildCollection(input: CollectionInput): Record<string, unknown> {
  const { iiifBase, collection } = input;
  return {
    '@context': PRESENTATION_CONTEXT,
    id: `${iiifBase}/collections/${encodeURIComponent(collection.id)}`,
    type: 'Collection',
    label: none([collection.name]),
    items: input.assets.map((asset) => {
      const version = asset.versions[asset.versions.length - 1]!;
      const identifier = encodeURIComponent(asset.id);
      return {
        id: manifestUrl(iiifBase, identifier),
        type: 'Manifest',
        label: none([text(version.metadata.title)[0] ?? asset.filename]),
        thumbnail: [imageParts(iiifBase, identifier, version).thumbnail],
      };
    }),
  };
}
