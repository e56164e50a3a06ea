/** Schemas of assets, their versions and rights, collections and search pages. */
import Type, { type Static } from 'typebox';

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Lowercase hex SHA-256.' });
const Timestamp = Type.String({ format: 'date-time' });
const ImagineUriString = Type.String({ maxLength: 2048, pattern: '^imagine://' });

/** Metadata keyed by the API field names of the metadata profile. */
export const AssetMetadata = Type.Record(
  Type.String({ pattern: '^[A-Za-z][A-Za-z0-9]{0,99}$' }),
  Type.Union([Type.String(), Type.Array(Type.String()), Type.Number(), Type.Boolean(), Type.Null()]),
);
export type AssetMetadata = Static<typeof AssetMetadata>;

export const Version = Type.Object(
  {
    id: Type.String({ maxLength: 100, description: 'Version id; also the asset ETag when current.' }),
    number: Type.Integer({ minimum: 1 }),
    created: Timestamp,
    createdBy: Type.Optional(Type.String({ maxLength: 320 })),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
    sha256: Sha256,
    size: Type.Integer({ minimum: 0 }),
    mediaType: Type.String({ maxLength: 100 }),
    width: Type.Optional(Type.Integer({ minimum: 0 })),
    height: Type.Optional(Type.Integer({ minimum: 0 })),
    derivedFrom: Type.Optional(Type.String({ maxLength: 100, description: 'Base version id.' })),
  },
  { additionalProperties: true, $id: 'Version' },
);
export type Version = Static<typeof Version>;

export const Rights = Type.Object(
  {
    copyrightNotice: Type.Optional(Type.String()),
    usageTerms: Type.Optional(Type.String()),
    webStatement: Type.Optional(Type.String()),
    licenseEndDate: Type.Optional(Type.String()),
    doNotDistribute: Type.Boolean(),
    expired: Type.Boolean(),
  },
  { additionalProperties: true, $id: 'Rights' },
);
export type Rights = Static<typeof Rights>;

export const Asset = Type.Object(
  {
    id: Type.String({ maxLength: 100 }),
    uri: ImagineUriString,
    filename: Type.String({ maxLength: 255 }),
    mediaType: Type.String({ maxLength: 100 }),
    width: Type.Optional(Type.Integer({ minimum: 0 })),
    height: Type.Optional(Type.Integer({ minimum: 0 })),
    created: Timestamp,
    updated: Timestamp,
    currentVersion: Type.String({ maxLength: 100 }),
    metadata: AssetMetadata,
    versions: Type.Array(Version, { description: 'Oldest first.' }),
    rights: Rights,
    collections: Type.Array(Type.String({ maxLength: 100 })),
    thumbnail: Type.Union([Type.String(), Type.Null()], { description: 'Thumbnail URL.' }),
    iiif: Type.Union([Type.String(), Type.Null()], { description: 'IIIF Image API service base.' }),
    deleted: Type.Optional(Type.String({ format: 'date-time', description: 'Set on a tombstone.' })),
    provenance: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
  },
  { additionalProperties: true, $id: 'Asset' },
);
export type Asset = Static<typeof Asset>;

export const Collection = Type.Object(
  {
    id: Type.String({ maxLength: 100 }),
    uri: ImagineUriString,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    public: Type.Boolean(),
    created: Timestamp,
    itemCount: Type.Integer({ minimum: 0 }),
    privacy: Type.Optional(
      Type.Object(
        {
          guests: Type.Object({ location: Type.Union([Type.Literal('full'), Type.Literal('country'), Type.Literal('none')]) }),
          public: Type.Object({ location: Type.Union([Type.Literal('full'), Type.Literal('country'), Type.Literal('none')]) }),
        },
        { description: 'What guests and the public may learn of where its pictures were taken.' },
      ),
    ),
  },
  { additionalProperties: true, $id: 'Collection' },
);
export type Collection = Static<typeof Collection>;

export const SearchPage = Type.Object(
  {
    items: Type.Array(Asset),
    next: Type.Union([Type.String({ maxLength: 1000 }), Type.Null()], {
      description: 'Opaque cursor for the next page, or null on the last page.',
    }),
    total: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: true, $id: 'SearchPage' },
);
export type SearchPage = Static<typeof SearchPage>;

export const DownloadTicket = Type.Object(
  {
    url: Type.String({ maxLength: 4096 }),
    expires: Timestamp,
    rendition: Type.Union([Type.Literal('original'), Type.Literal('thumbnail')]),
    version: Type.String({ maxLength: 100 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Sha256,
    mediaType: Type.String({ maxLength: 100 }),
  },
  { additionalProperties: true, $id: 'DownloadTicket' },
);
export type DownloadTicket = Static<typeof DownloadTicket>;

export const SEARCH_SORTS = ['relevance', 'created', '-created', 'updated', '-updated', 'title', '-title'] as const;
export type SearchSort = (typeof SEARCH_SORTS)[number];
export const ORIENTATIONS = ['landscape', 'portrait', 'square'] as const;
export type Orientation = (typeof ORIENTATIONS)[number];
export const RIGHTS_FILTERS = ['unrestricted', 'restricted', 'expired'] as const;
export type RightsFilter = (typeof RIGHTS_FILTERS)[number];

/** A search as the protocol defines it (`GET {api}/assets?...`): the client sends it, the server parses it. */
export interface SearchQuery {
  /** Full-text query; all terms must match (the last one as a prefix). */
  q?: string;
  /** Collection id. */
  collection?: string;
  /** One of the current version's creators. */
  creator?: string;
  /** One of the current version's keywords. */
  keyword?: string;
  /** Subtype of the current version's media type: 'jpeg' (or 'jpg'), 'png', 'tiff' (or 'tif'), 'webp'… */
  format?: string;
  /** ISO date or date-time: assets created at or after it. */
  createdAfter?: string;
  /** ISO date or date-time: assets created strictly before it. */
  createdBefore?: string;
  orientation?: Orientation;
  rights?: RightsFilter;
  /** Default: 'relevance' with `q`, '-updated' without. */
  sort?: SearchSort;
  /** Page size; default 50, clamped to [1, maxLimit]. */
  limit?: number;
  /** `next` of the previous page. */
  cursor?: string;
}
