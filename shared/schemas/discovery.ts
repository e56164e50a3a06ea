/**
 * Schemas of the discovery documents a server publishes under `/.well-known/imagine`.
 * One source of truth: the server's routes validate against them, the OpenAPI document is
 * generated from them, and clients check what they receive with them.
 */
import Type, { type Static } from 'typebox';

export const PROTOCOL_NAME = 'imagine';
export const PROTOCOL_VERSION = '0.1';

const Url = Type.String({ minLength: 1, maxLength: 2048, description: 'An absolute URL.' });

export const DiscoveryDocument = Type.Object(
  {
    protocol: Type.Literal(PROTOCOL_NAME),
    version: Type.String({ pattern: '^[0-9]+\\.[0-9]+$', description: 'Protocol version, major.minor.' }),
    server: Type.Object(
      {
        origin: Type.String({
          maxLength: 300,
          description: 'The origin this document was served from (scheme, host, port).',
        }),
        domain: Type.String({ maxLength: 260, description: 'Host name, with the port when not the default.' }),
        name: Type.Optional(Type.String({ maxLength: 200 })),
        software: Type.Optional(
          Type.Object({ name: Type.String({ maxLength: 100 }), version: Type.String({ maxLength: 50 }) }),
        ),
      },
      { additionalProperties: true },
    ),
    endpoints: Type.Object(
      {
        api: Url,
        iiif: Type.Optional(Url),
        openapi: Type.Optional(Url),
        jwks: Type.Optional(Url),
        webmention: Type.Optional(Url),
        uploads: Type.Optional(Url),
        agent: Type.Optional(Url),
        panel: Type.Optional(Url),
      },
      { additionalProperties: Url },
    ),
    links: Type.Object(
      { capabilities: Url, metadataProfile: Url },
      { additionalProperties: Url },
    ),
  },
  { additionalProperties: true, $id: 'DiscoveryDocument' },
);
export type DiscoveryDocument = Static<typeof DiscoveryDocument>;

export const Extension = Type.Object(
  {
    name: Type.String({ maxLength: 317, description: 'Reverse-domain extension name.' }),
    version: Type.String({ maxLength: 50 }),
    spec: Url,
    openapi: Type.Optional(Url),
  },
  { additionalProperties: true },
);
export type Extension = Static<typeof Extension>;

export const CapabilitiesDocument = Type.Object(
  {
    protocol: Type.Literal(PROTOCOL_NAME),
    version: Type.String(),
    core: Type.Array(Type.String({ maxLength: 100 }), {
      description: 'Core capabilities this server implements (for example "search", "versions").',
    }),
    extensions: Type.Array(Extension),
    limits: Type.Optional(
      Type.Object(
        {
          maxUploadBytes: Type.Optional(Type.Integer({ minimum: 0 })),
          maxPageSize: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true, $id: 'CapabilitiesDocument' },
);
export type CapabilitiesDocument = Static<typeof CapabilitiesDocument>;

export const MetadataFieldMapping = Type.Object(
  {
    field: Type.String({ maxLength: 100, description: 'API field name.' }),
    label: Type.String({ maxLength: 200 }),
    type: Type.Union([
      Type.Literal('text'),
      Type.Literal('list'),
      Type.Literal('langAlt'),
      Type.Literal('date'),
      Type.Literal('integer'),
      Type.Literal('boolean'),
    ]),
    xmp: Type.String({ maxLength: 200, description: 'XMP property, prefix:name (e.g. dc:creator).' }),
    iim: Type.Optional(Type.String({ maxLength: 100, description: 'IIM dataset, record:number name.' })),
    iimMaxLength: Type.Optional(Type.Integer({ minimum: 1 })),
    exif: Type.Optional(Type.String({ maxLength: 100 })),
    exiftool: Type.String({ maxLength: 100, description: 'Group-qualified exiftool tag to write.' }),
  },
  { additionalProperties: true },
);
export type MetadataFieldMapping = Static<typeof MetadataFieldMapping>;

export const MetadataProfileDocument = Type.Object(
  {
    profile: Type.String({ maxLength: 300, description: 'Profile name and version.' }),
    fields: Type.Array(MetadataFieldMapping),
    custom: Type.Array(MetadataFieldMapping),
  },
  { additionalProperties: true, $id: 'MetadataProfileDocument' },
);
export type MetadataProfileDocument = Static<typeof MetadataProfileDocument>;
