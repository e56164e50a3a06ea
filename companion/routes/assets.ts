/**
 * Assets and their versions: search, get, create, delete (tombstone), versions, push with
 * If-Match, metadata edit, download tickets, thumbnails, and the signed file route.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import Type from 'typebox';
import { ProtocolError } from '../../shared/errors.ts';
import { Asset, AssetMetadata, DownloadTicket, SearchPage, Version } from '../../shared/schemas/asset.ts';
import { sendFile } from '../http/send-file.ts';
import { parseSearchQuery } from '../library/search-index.ts';
import { rightsSummary } from '../library/rights.ts';
import { decodeFederatedCursor, federatedSearch } from '../federation/federated-search.ts';
import { presentAsset, presentVersion, privacyFor, visibleMetadata } from '../library/present.ts';
import { currentVersion, type AssetRecord } from '../library/records.ts';
import { parseIdempotencyKey, type IdempotencyScope } from '../library/idempotency.ts';
import {
  API_PREFIX,
  decodeHeader,
  header,
  installActor,
  parseContentDigest,
  parseIfMatch,
  presentContext,
  problemResponses,
  fileResponse,
  type ApiOptions,
} from './api-context.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }) });
const VersionParams = Type.Object({
  id: IdParams.properties.id,
  version: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }),
});
const FileParams = Type.Object({
  id: IdParams.properties.id,
  version: VersionParams.properties.version,
  rendition: Type.Union(
    [Type.Literal('original'), Type.Literal('thumbnail'), Type.Literal('original-country'), Type.Literal('original-none')],
    { description: '`original-country` / `original-none`: the original without the location its reader may not see' },
  ),
});
const SearchQuerystring = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: 500 })),
    collection: Type.Optional(Type.String({ maxLength: 100 })),
    creator: Type.Optional(Type.String({ maxLength: 200 })),
    keyword: Type.Optional(Type.String({ maxLength: 200 })),
    format: Type.Optional(Type.String({ maxLength: 20 })),
    createdAfter: Type.Optional(Type.String({ maxLength: 40 })),
    createdBefore: Type.Optional(Type.String({ maxLength: 40 })),
    orientation: Type.Optional(Type.String({ maxLength: 20 })),
    rights: Type.Optional(Type.String({ maxLength: 20 })),
    sort: Type.Optional(Type.String({ maxLength: 20 })),
    limit: Type.Optional(Type.String({ maxLength: 6 })),
    cursor: Type.Optional(Type.String({ maxLength: 8000 })),
    scope: Type.Optional(
      Type.Enum(['local', 'federated'], {
        description: '`federated`: also ask every peer this server asked to trust it (results carry their own imagine:// URIs; `sources` reports each peer)',
      }),
    ),
  },
  { additionalProperties: false },
);
const UploadHeaders = Type.Object({
  'content-type': Type.Optional(Type.String()),
  'content-digest': Type.Optional(Type.String({ description: 'RFC 9530, sha-256 verified when present' })),
  'imagine-filename': Type.Optional(Type.String({ description: 'Percent-encoded UTF-8 file name' })),
  'imagine-comment': Type.Optional(Type.String({ description: 'Percent-encoded UTF-8 version comment' })),
  'idempotency-key': Type.Optional(
    Type.String({ description: 'A repeated key (same user) answers the first result (200, Idempotent-Replayed) instead of adding again; kept 24 h' }),
  ),
});

/** Routes that take a raw file body: a parser that hands the stream over untouched. */
async function uploadRoutes(app: FastifyInstance, { config, services }: ApiOptions) {
  const { library, auth } = services;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  function checkDeclaredLength(request: FastifyRequest) {
    const length = Number(header(request, 'content-length'));
    if (Number.isFinite(length) && length > config.maxUploadBytes) {
      throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `uploads are limited to ${config.maxUploadBytes} bytes`);
    }
  }

  function fileOptions(request: FastifyRequest) {
    return {
      filename: decodeHeader(header(request, 'imagine-filename'), 'Imagine-Filename') ?? '',
      comment: decodeHeader(header(request, 'imagine-comment'), 'Imagine-Comment'),
      sha256: parseContentDigest(header(request, 'content-digest')),
      user: request.actor?.name,
    };
  }

  /**
   * A repeated Idempotency-Key: the first result is answered (200, `Idempotent-Replayed: true`,
   * `Imagine-Version` the version it made) and the body is discarded unread. Undefined otherwise.
   */
  function replay(request: FastifyRequest, reply: FastifyReply, key: string | undefined, scope: IdempotencyScope) {
    const found = library.idempotentResult(request.actor?.name, key, scope);
    if (!found) return undefined;
    (request.body as Readable | undefined)?.resume();
    const ctx = presentContext(request, config);
    reply
      .code(200)
      .header('idempotent-replayed', 'true')
      .header('imagine-version', found.version)
      .header('location', `${ctx.apiBase}/assets/${encodeURIComponent(found.asset.id)}`)
      .header('etag', `"${currentVersion(found.asset).id}"`);
    return presentAsset(found.asset, ctx);
  }

  /** The version a request made: the one its key recorded, else the current one. */
  function madeVersion(request: FastifyRequest, asset: AssetRecord, key: string | undefined, scope: IdempotencyScope): string {
    return library.idempotentResult(request.actor?.name, key, scope)?.version ?? currentVersion(asset).id;
  }

  function body(request: FastifyRequest): Readable {
    if (!request.body) throw new ProtocolError('ERR_BAD_REQUEST', 'the request has no body');
    return request.body as Readable;
  }

  app.post(
    `${API_PREFIX}/assets`,
    {
      schema: {
        tags: ['assets'],
        summary: 'Add an asset: the file is the raw request body',
        headers: Type.Object({ ...UploadHeaders.properties, 'imagine-collection': Type.Optional(Type.String()) }),
        response: { 200: Asset, 201: Asset, ...problemResponses(400, 401, 403, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      checkDeclaredLength(request);
      const collection = header(request, 'imagine-collection') || undefined;
      auth.require(
        auth.canCreateAsset(request.actor, collection),
        request.actor,
        collection ? `add assets to collection "${collection}"` : 'add assets',
      );
      const idempotencyKey = parseIdempotencyKey(header(request, 'idempotency-key'));
      const replayed = replay(request, reply, idempotencyKey, 'asset');
      if (replayed) return replayed;
      const options = { ...fileOptions(request), collection, idempotencyKey };
      const { asset, duplicate } = await library.createAsset(body(request), options);
      const ctx = presentContext(request, config);
      reply
        .code(duplicate ? 200 : 201)
        .header('imagine-version', madeVersion(request, asset, idempotencyKey, 'asset'))
        .header('location', `${ctx.apiBase}/assets/${encodeURIComponent(asset.id)}`)
        .header('etag', `"${currentVersion(asset).id}"`);
      if (duplicate) reply.header('imagine-duplicate', 'true');
      return presentAsset(asset, ctx);
    },
  );

  app.post<{ Params: { id: string } }>(
    `${API_PREFIX}/assets/:id/versions`,
    {
      schema: {
        tags: ['versions'],
        summary: 'Push a new version (If-Match: the base version) — 412 when stale, 428 without',
        params: IdParams,
        headers: Type.Object({ ...UploadHeaders.properties, 'if-match': Type.Optional(Type.String()) }),
        response: { 200: Asset, 201: Asset, ...problemResponses(400, 401, 403, 404, 409, 410, 412, 413, 415, 428) },
      },
    },
    async (request, reply) => {
      checkDeclaredLength(request);
      const existing = library.getAsset(request.params.id);
      auth.requireRead(request.actor, existing);
      auth.require(auth.canWrite(request.actor, existing), request.actor, 'change this asset');
      const idempotencyKey = parseIdempotencyKey(header(request, 'idempotency-key'));
      const scope = `version:${existing.id}` as const;
      const replayed = replay(request, reply, idempotencyKey, scope);
      if (replayed) return replayed;
      const ifMatch = parseIfMatch(header(request, 'if-match'));
      const options = fileOptions(request);
      const asset = await library.pushVersion(existing.id, body(request), {
        ...options,
        filename: options.filename || existing.filename,
        ifMatch,
        idempotencyKey,
      });
      const ctx = presentContext(request, config);
      reply
        .code(201)
        .header('etag', `"${currentVersion(asset).id}"`)
        .header('imagine-version', madeVersion(request, asset, idempotencyKey, scope));
      return presentAsset(asset, ctx);
    },
  );
}

export async function assetRoutes(app: FastifyInstance, options: ApiOptions) {
  const { config, services } = options;
  const { library, auth, signer } = services;
  installActor(app, services);
  await app.register(uploadRoutes, options);

  app.get<{ Querystring: Record<string, string> }>(
    `${API_PREFIX}/assets`,
    {
      schema: {
        tags: ['assets'],
        summary: 'Search assets (full text and filters), a page at a time',
        querystring: SearchQuerystring,
        response: { 200: SearchPage, ...problemResponses(400, 401) },
      },
    },
    async (request) => {
      const { scope, ...raw } = request.query;
      // A peer's search is always local: federation does not chain.
      if (scope === 'federated' && !request.peer) return searchFederated(request, raw);
      const query = parseSearchQuery(raw);
      if (query.collection && !auth.canReadCollection(request.actor, query.collection)) {
        auth.require(false, request.actor, 'search this collection');
      }
      const result = library.search(query, (asset) => auth.canRead(request.actor, asset), config.maxPageSize);
      const ctx = presentContext(request, config);
      return {
        items: result.ids.map((id) => presentAsset(library.getAsset(id), ctx)),
        next: result.next,
        total: result.total,
      };
    },
  );

  async function searchFederated(request: FastifyRequest, raw: Record<string, string>) {
    const federation = request.server.federation;
    if (!federation) throw new ProtocolError('ERR_NOT_IMPLEMENTED', 'this server does not federate');
    const { cursor, ...query } = raw;
    const position = decodeFederatedCursor(cursor);
    const localQuery = parseSearchQuery({ ...query, ...(position.local ? { cursor: position.local } : {}) });
    if (localQuery.collection && !auth.canReadCollection(request.actor, localQuery.collection)) {
      auth.require(false, request.actor, 'search this collection');
    }
    const ctx = presentContext(request, config);
    let local: { items: Asset[]; next: string | null } | null = null;
    if (position.local !== null) {
      const result = library.search(localQuery, (asset) => auth.canRead(request.actor, asset), config.maxPageSize);
      local = { items: result.ids.map((id) => presentAsset(library.getAsset(id), ctx)), next: result.next };
    }
    const domain = new URL(ctx.origin).host;
    return federatedSearch({
      federation,
      issuer: ctx.origin,
      query,
      cursor: position,
      local,
      ...(request.actor ? { subject: `${request.actor.name}@${domain}` } : {}),
      deadlineMs: config.federatedSearchDeadlineMs,
    });
  }

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/assets/:id`,
    {
      schema: {
        tags: ['assets'],
        summary: 'An asset with its metadata, versions and rights (ETag: current version)',
        params: IdParams,
        response: { 200: Asset, ...problemResponses(401, 404, 410) },
      },
    },
    async (request, reply) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const etag = `"${currentVersion(asset).id}"`;
      reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if (header(request, 'if-none-match') === etag) return reply.code(304).send();
      return presentAsset(asset, presentContext(request, config));
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${API_PREFIX}/assets/:id`,
    {
      schema: {
        tags: ['assets'],
        summary: 'Delete an asset (it stays as a tombstone; versions are kept)',
        params: IdParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404, 410) },
      },
    },
    async (request, reply) => {
      const asset = library.getLiveAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      auth.require(auth.canWrite(request.actor, asset), request.actor, 'delete this asset');
      await library.deleteAsset(asset.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/assets/:id/versions`,
    {
      schema: {
        tags: ['versions'],
        summary: 'The versions of an asset, oldest first',
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(Version) }), ...problemResponses(401, 404) },
      },
    },
    async (request) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      return { items: asset.versions.map(presentVersion) };
    },
  );

  app.get<{ Params: { id: string; version: string } }>(
    `${API_PREFIX}/assets/:id/versions/:version`,
    {
      schema: {
        tags: ['versions'],
        summary: 'One version of an asset, with the metadata its file carries',
        params: VersionParams,
        response: { 200: Version, ...problemResponses(401, 404) },
      },
    },
    async (request) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      const version = library.getVersion(asset, request.params.version);
      return { ...presentVersion(version), metadata: visibleMetadata(version.metadata, presentContext(request, config), asset) };
    },
  );

  app.get<{ Params: { id: string; version: string } }>(
    `${API_PREFIX}/assets/:id/versions/:version/xmp`,
    {
      schema: {
        tags: ['versions'],
        summary: "The version's raw XMP packet, as its file carries it (extended XMP joined)",
        params: VersionParams,
        response: { 200: fileResponse('The XMP packet (UTF-8)', 'application/rdf+xml'), ...problemResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      // The raw packet carries everything, location included: members only, never the public.
      auth.require(request.actor !== undefined, request.actor, 'read raw XMP packets');
      const version = library.getVersion(asset, request.params.version);
      if (!version.xmpSha256) throw new ProtocolError('ERR_VERSION_NOT_FOUND', `version "${version.id}" has no XMP packet`);
      return sendFile(request, reply, {
        path: library.blobs.pathOf(version.xmpSha256),
        size: await fileSize(services, version.xmpSha256),
        etag: `"${version.xmpSha256}"`,
        contentType: 'application/rdf+xml; charset=utf-8',
        cacheControl: 'private, max-age=31536000, immutable',
      });
    },
  );

  app.patch<{ Params: { id: string }; Body: { metadata: Record<string, never>; comment?: string } }>(
    `${API_PREFIX}/assets/:id/metadata`,
    {
      schema: {
        tags: ['assets'],
        summary: 'Edit metadata: writes a new version whose file carries the new values (If-Match required)',
        params: IdParams,
        body: Type.Object(
          { metadata: AssetMetadata, comment: Type.Optional(Type.String({ maxLength: 2000 })) },
          { additionalProperties: false },
        ),
        response: { 201: Asset, ...problemResponses(400, 401, 403, 404, 410, 412, 428) },
      },
    },
    async (request, reply) => {
      const existing = library.getAsset(request.params.id);
      auth.requireRead(request.actor, existing);
      auth.require(auth.canWrite(request.actor, existing), request.actor, 'change this asset');
      const asset = await library.editMetadata(existing.id, request.body.metadata, {
        ifMatch: parseIfMatch(header(request, 'if-match')),
        user: request.actor?.name,
        comment: request.body.comment,
      });
      reply.code(201).header('etag', `"${currentVersion(asset).id}"`);
      return presentAsset(asset, presentContext(request, config));
    },
  );

  app.get<{ Params: { id: string }; Querystring: { rendition?: 'original' | 'thumbnail'; version?: string } }>(
    `${API_PREFIX}/assets/:id/download`,
    {
      schema: {
        tags: ['assets'],
        summary: 'A short-lived signed URL for the original or the thumbnail, with its size and sha256',
        params: IdParams,
        querystring: Type.Object(
          {
            rendition: Type.Optional(Type.Union([Type.Literal('original'), Type.Literal('thumbnail')])),
            version: Type.Optional(VersionParams.properties.version),
          },
          { additionalProperties: false },
        ),
        response: { 200: DownloadTicket, ...problemResponses(401, 404, 410) },
      },
    },
    async (request, reply) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const version = library.getVersion(asset, request.query.version);
      const rendition = request.query.rendition ?? 'original';
      if (request.peer && rendition === 'original') {
        // Another server copying an original: the rights must allow distribution.
        const rights = rightsSummary(version.metadata);
        if (rights.doNotDistribute || rights.expired) {
          throw new ProtocolError('ERR_DISTRIBUTION_FORBIDDEN', `the rights of "${asset.id}" forbid distributing its original`);
        }
      }
      const ctx = presentContext(request, config);
      // Guests, other servers and the public get the original without the location they may not see.
      const policy = rendition === 'original' ? privacyFor(ctx, asset) : undefined;
      const copy = policy ? await services.privateCopies.of(version, policy) : undefined;
      const sha256 = copy ? copy.sha256 : rendition === 'original' ? version.sha256 : version.thumbnailSha256;
      if (!sha256) throw new ProtocolError('ERR_VERSION_NOT_FOUND', `version "${version.id}" has no ${rendition}`);
      const fileRendition = copy?.filtered ? `original-${policy!.location}` : rendition;
      const path = `${API_PREFIX}/files/${encodeURIComponent(asset.id)}/${encodeURIComponent(version.id)}/${fileRendition}`;
      const signed = signer.sign({ method: 'GET', path, version: version.id });
      reply.header('cache-control', 'no-store');
      return {
        url: `${ctx.origin}${signed.url}`,
        expires: signed.expires.toISOString(),
        rendition,
        version: version.id,
        size: copy ? copy.size : rendition === 'original' ? version.size : await fileSize(services, sha256),
        sha256,
        mediaType: rendition === 'original' ? version.mediaType : 'image/jpeg',
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { v?: string } }>(
    `${API_PREFIX}/assets/:id/thumbnail`,
    {
      schema: {
        tags: ['assets'],
        summary: 'The thumbnail of the current (or `v`) version, for <img> tags',
        params: IdParams,
        querystring: Type.Object({ v: Type.Optional(VersionParams.properties.version) }, { additionalProperties: false }),
        response: { 200: fileResponse('The thumbnail (JPEG)', 'image/jpeg'), ...problemResponses(401, 404, 410) },
      },
    },
    async (request, reply) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const version = library.getVersion(asset, request.query.v);
      if (!version.thumbnailSha256) throw new ProtocolError('ERR_VERSION_NOT_FOUND', 'this version has no thumbnail');
      const path = services.library.blobs.pathOf(version.thumbnailSha256);
      const pinned = request.query.v !== undefined;
      return sendFile(request, reply, {
        path,
        size: await fileSize(services, version.thumbnailSha256),
        etag: `"${version.thumbnailSha256}"`,
        contentType: 'image/jpeg',
        cacheControl: pinned ? 'private, max-age=31536000, immutable' : 'private, no-cache',
      });
    },
  );

  // The signed file route: no bearer token needed, the signature is the authorisation.
  app.route<{ Params: { id: string; version: string; rendition: 'original' | 'thumbnail' | 'original-country' | 'original-none' } }>({
    method: ['GET', 'HEAD'],
    url: `${API_PREFIX}/files/:id/:version/:rendition`,
    schema: {
      tags: ['assets'],
      summary: 'A stored file through a signed URL (Range, ETag, If-None-Match)',
      params: FileParams,
      response: { 200: fileResponse('The whole file'), 206: fileResponse('The requested range'), ...problemResponses(403, 404, 410, 416) },
    },
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      const { version: signedVersion } = signer.verify({ method: request.method, rawUrl: request.url });
      if (signedVersion !== request.params.version) {
        throw new ProtocolError('ERR_SIGNATURE_INVALID', 'signature is not valid');
      }
      const asset = library.getAsset(request.params.id);
      // A URL signed before the asset was deleted does not outlive the deletion.
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const version = library.getVersion(asset, request.params.version);
      const rendition = request.params.rendition;
      const original = rendition !== 'thumbnail';
      let sha256 = original ? version.sha256 : version.thumbnailSha256;
      let size = original ? version.size : undefined;
      if (rendition === 'original-country' || rendition === 'original-none') {
        // Made again if it was never made here (the URL was signed for this rendition only).
        const copy = await services.privateCopies.of(version, { location: rendition === 'original-country' ? 'country' : 'none' });
        sha256 = copy.sha256;
        size = copy.size;
      }
      if (!sha256) throw new ProtocolError('ERR_VERSION_NOT_FOUND', 'no such rendition');
      reply.header('referrer-policy', 'no-referrer');
      return sendFile(request, reply, {
        path: library.blobs.pathOf(sha256),
        size: size ?? (await fileSize(services, sha256)),
        etag: `"${sha256}"`,
        contentType: original ? version.mediaType : 'image/jpeg',
        filename: original ? asset.filename : undefined,
        disposition: 'attachment',
        cacheControl: 'private, max-age=300',
      });
    },
  });
}

async function fileSize(services: ApiOptions['services'], sha256: string): Promise<number> {
  return (await stat(services.library.blobs.pathOf(sha256))).size;
}
