/**
 * The IIIF routes: Image API 3.0 under `/iiif/3/`, 2.1 under `/iiif/2/`, the same behind a
 * signed prefix `/iiif/s/{token}/…` (for <img> tags and viewers that cannot send a bearer
 * token; `POST /iiif/sign/{id}` hands one out to a reader), Presentation 3 manifests under
 * `/iiif/manifests/{id}` and `/iiif/collections/{id}`.
 *
 * Identifiers name library assets (`id`, `id@version`) or images of configured web sources
 * (`{source}:{name}`, companion/iiif/web-origins.ts: public, fetched and cached on demand).
 *
 * Thin: the grammar is companion/iiif/parse.ts, the work companion/iiif/service.ts. Image
 * errors answer `text/plain` unless `application/problem+json` is accepted; info.json and
 * manifests answer problem documents. Every answer carries `Access-Control-Allow-Origin: *`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { join } from 'node:path';
import Type from 'typebox';
import { ProtocolError, type ErrorCode } from '../../shared/errors.ts';
import { normaliseError, sendProblem } from '../http/problem.ts';
import { loadOrCreateSigningKeys } from '../library/signed-url.ts';
import { currentVersion, type AssetRecord } from '../library/records.ts';
import { buildInfo, CONTEXT, PROFILE, rightsUrl } from '../iiif/info.ts';
import { buildCollection, buildManifest } from '../iiif/manifest.ts';
import { isWebIdentifier, validateIdentifier, validateIiifPath, type IiifRequest, type IiifVersion } from '../iiif/parse.ts';
import { resolveImageRequest } from '../iiif/resolve.ts';
import { IiifService } from '../iiif/service.ts';
import { IiifSigner } from '../iiif/signed-prefix.ts';
import { hasImage, resolveIdentifier, type ImageDescription, type ImageOrigin } from '../iiif/source.ts';
import { WebOrigins } from '../iiif/web-origins.ts';
import { IIIF_PREFIX, installActor, presentContext, problemResponses, type ApiOptions } from './api-context.ts';

const BINARY = { schema: { type: 'string', format: 'binary' } };
const JSON_DOCUMENT = { schema: { type: 'object', additionalProperties: true } };
/** 200 of the image routes: info.json (JSON or JSON-LD) or an image. */
const IMAGE_OR_INFO = {
  description: 'info.json, or the image',
  content: {
    'application/json': JSON_DOCUMENT,
    'application/ld+json': JSON_DOCUMENT,
    'image/jpeg': BINARY,
    'image/png': BINARY,
    'image/webp': BINARY,
    'image/tiff': BINARY,
    'image/gif': BINARY,
  },
};
const PRESENTATION = { description: 'IIIF Presentation 3 document', content: { 'application/json': JSON_DOCUMENT, 'application/ld+json': JSON_DOCUMENT } };

const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'ERR_BAD_REQUEST',
  404: 'ERR_ASSET_NOT_FOUND',
  415: 'ERR_NOT_AN_IMAGE',
  500: 'ERR_INTERNAL',
  501: 'ERR_NOT_IMPLEMENTED',
  503: 'ERR_SERVICE_UNAVAILABLE',
};

function iiifError(status: number, message: string, code?: ErrorCode): ProtocolError {
  return new ProtocolError(code ?? STATUS_CODES[status] ?? 'ERR_BAD_REQUEST', message, { status });
}

/** Image errors as text unless problem+json is asked for; JSON routes always as problems. */
function sendIiifError(request: FastifyRequest, reply: FastifyReply, error: unknown) {
  reply.header('access-control-allow-origin', '*');
  const accept = request.headers.accept ?? '';
  const isImage = !/\/(info\.json|manifests|collections)\b/.test(request.url) && /^\/iiif\/(s\/[^/]+\/)?[23]\//.test(request.url);
  if (!isImage || accept.includes('application/problem+json')) return sendProblem(request, reply, error);
  const problem = normaliseError(error);
  if (problem.status >= 500 && problem.status !== 501 && problem.status !== 503) {
    request.log.error({ err: problem.cause ?? problem }, 'request failed');
  }
  if (problem.status === 503) reply.header('retry-after', '1');
  // Internals never leak: the detail of an unexpected error stays in the log.
  const detail = problem.code === 'ERR_INTERNAL' ? 'internal error' : problem.message;
  return reply.code(problem.status).type('text/plain; charset=utf-8').send(`${problem.status} ${problem.code}: ${detail}\n`);
}

/** What an identifier resolved to: the file to render and how to answer about it. */
interface Target {
  origin: ImageOrigin;
  cacheControl: string;
  rights?: string;
  /** Keeps the origin's file while work outlives the request (a pyramid built in the background). */
  hold?: () => () => void;
}

interface Access {
  /** The prefix the request came through: `/iiif` or `/iiif/s/{token}`. */
  prefix: string;
  /** The signed prefix's token, when the request came through one. */
  token?: string;
}

export async function iiifRoutes(app: FastifyInstance, { config, services }: ApiOptions) {
  const { library, auth } = services;
  installActor(app, services);
  app.setErrorHandler((error, request, reply) => sendIiifError(request, reply, error));

  const service = new IiifService({
    library,
    dir: join(config.dataDir, 'cache', 'iiif'),
    cacheBytes: config.iiifCacheBytes,
    pyramidBytes: config.iiifPyramidCacheBytes,
    memoryBytes: config.iiifMemoryCacheBytes,
    pyramidThreshold: config.iiifPyramidThreshold,
    concurrency: config.iiifConcurrency,
    queue: config.iiifQueue,
    tileSize: config.iiifTileSize,
    limits: { maxWidth: config.iiifMaxWidth, maxHeight: config.iiifMaxHeight, maxArea: config.iiifMaxArea },
    prerender: config.iiifPrerender,
    timeoutSeconds: config.iiifRenderTimeoutSeconds,
  });
  await service.init();
  const web = new WebOrigins({
    sources: config.iiifWebSources,
    dir: join(config.dataDir, 'cache', 'iiif', 'web'),
    cacheBytes: config.iiifWebCacheBytes,
    maxBytes: config.iiifWebMaxBytes,
    timeoutMs: config.iiifWebTimeoutMs,
    allowPrivate: config.iiifWebAllowPrivate,
    ttlSeconds: config.iiifWebTtlSeconds,
  });
  await web.init();
  const signer = new IiifSigner({ keys: await loadOrCreateSigningKeys(config.dataDir), ttlSeconds: config.iiifSignedTtlSeconds });
  app.decorate('iiif', service);
  app.addHook('onClose', async () => service.close());

  function checkRead(request: FastifyRequest, asset: AssetRecord, access: Access) {
    if (access.token !== undefined) return signer.verify(access.token, asset.id);
    auth.requireRead(request.actor, asset);
  }

  function cacheControl(asset: AssetRecord, pinned: boolean, access: Access): string {
    const visibility = access.token === undefined && auth.canRead(undefined, asset) ? 'public' : 'private';
    return pinned ? `${visibility}, max-age=31536000, immutable` : `${visibility}, max-age=60`;
  }

  async function handle(request: FastifyRequest, reply: FastifyReply, version: IiifVersion, rest: string, access: Access) {
    reply.header('access-control-allow-origin', '*');
    const parsed = validateIiifPath(version, rest);
    if (!parsed.ok) throw iiifError(parsed.error.status, parsed.error.message);
    const req = parsed.value;
    const rawId = rest.split('/')[0]!;
    const origin = presentContext(request, config).origin;
    const base = `${origin}${access.prefix}/${version}/${rawId}`;
    if (isWebIdentifier(req.identifier)) {
      // Web sources are public: no token is checked, whatever prefix the request came through.
      web.url(req.identifier); // 404 before anything is fetched when it names nothing
      if (req.kind === 'base') return reply.code(303).header('location', `${base}/info.json`).send();
      const lease = await web.acquire(req.identifier);
      try {
        return await serve(request, reply, req, base, {
          origin: lease.origin,
          cacheControl: web.cacheControl,
          hold: () => web.hold(lease.origin),
        });
      } finally {
        lease.release();
      }
    }
    const found = resolveIdentifier(library, req.identifier);
    checkRead(request, found.asset, access);
    if (req.kind === 'base') return reply.code(303).header('location', `${base}/info.json`).send();
    return serve(request, reply, req, base, {
      origin: service.origin(found.version),
      cacheControl: cacheControl(found.asset, found.pinned, access),
      rights: rightsUrl(found.version.metadata.webStatement),
    });
  }

  /** info.json or the image of a resolved target. */
  async function serve(request: FastifyRequest, reply: FastifyReply, req: Exclude<IiifRequest, { kind: 'base' }>, base: string, target: Target) {
    const { version } = req;
    const { origin } = target;
    const described: ImageDescription | undefined = origin.size ?? (await service.sources.describe(origin));
    if (!described) throw new ProtocolError('ERR_NOT_AN_IMAGE', 'this version has no image the IIIF service can render');
    const size = { width: described.width, height: described.height };
    reply.header('link', `<${PROFILE[version]}>;rel="profile"`);
    reply.header('cache-control', target.cacheControl);
    if (req.kind === 'info') {
      // A viewer asks for info.json first: prepare a big image while it does.
      if (!service.sources.hasPyramid(origin)) {
        const release = target.hold?.();
        void service
          .prepare(origin)
          .catch(() => undefined)
          .finally(() => release?.());
      }
      const info = buildInfo({
        version,
        id: base,
        ...size,
        limits: service.options.limits,
        tileSize: service.options.tileSize,
        rights: target.rights,
        sourceNote: described.source,
      });
      const ld = (request.headers.accept ?? '').includes('application/ld+json');
      reply.header('vary', 'Accept');
      reply.type(ld ? `application/ld+json;profile="${CONTEXT[version]}"` : 'application/json');
      return reply.send(JSON.stringify(info));
    }
    const plan = resolveImageRequest(req, size, service.options.limits);
    if (!plan.ok) {
      const limit = plan.error.status === 404;
      throw iiifError(plan.error.status, plan.error.message, limit ? 'ERR_IMAGE_SIZE_LIMIT' : undefined);
    }
    const etag = `"${service.key(origin, plan.value)}"`;
    reply.header('link', `<${PROFILE[version]}>;rel="profile", <${base}/${plan.value.canonical}>;rel="canonical"`);
    reply.header('etag', etag);
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    const result = await service.render(origin, plan.value);
    if (!result.ok) throw iiifError(result.status, result.message);
    return reply.type(result.contentType).send(result.bytes);
  }

  const wildcard = Type.Object({ '*': Type.String() });
  for (const version of [3, 2] as const) {
    app.get<{ Params: { '*': string } }>(
      `${IIIF_PREFIX}/${version}/*`,
      {
        schema: {
          tags: ['iiif'],
          summary: `IIIF Image API ${version === 3 ? '3.0' : '2.1'}: info.json and image requests (level 2)`,
          params: wildcard,
          response: { 200: IMAGE_OR_INFO, 303: { description: 'The base URI redirects to info.json' }, 304: { description: 'Not modified' }, ...problemResponses(400, 401, 403, 404, 410, 415, 501, 502, 503, 504) },
        },
      },
      (request, reply) => handle(request, reply, version, rawRest(request.url, `${IIIF_PREFIX}/${version}/`), { prefix: IIIF_PREFIX }),
    );
    app.get<{ Params: { token: string; '*': string } }>(
      `${IIIF_PREFIX}/s/:token/${version}/*`,
      {
        schema: {
          tags: ['iiif'],
          summary: `IIIF Image API ${version === 3 ? '3.0' : '2.1'} behind a signed prefix (no token needed)`,
          params: Type.Object({ token: Type.String({ maxLength: 200 }), '*': Type.String() }),
          response: { 200: IMAGE_OR_INFO, 303: { description: 'The base URI redirects to info.json' }, 304: { description: 'Not modified' }, ...problemResponses(400, 403, 404, 410, 415, 501, 502, 503, 504) },
        },
      },
      (request, reply) => {
        const token = request.params.token;
        const prefix = `${IIIF_PREFIX}/s/${token}`;
        return handle(request, reply, version, rawRest(request.url, `${prefix}/${version}/`), { prefix, token });
      },
    );
  }

  app.post<{ Params: { id: string } }>(
    `${IIIF_PREFIX}/sign/:id`,
    {
      schema: {
        tags: ['iiif'],
        summary: 'A signed IIIF prefix for one asset, usable in <img> tags and viewers without a token',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }) }),
        response: {
          200: Type.Object({ iiif: Type.String(), expires: Type.String({ format: 'date-time' }) }),
          ...problemResponses(401, 404, 410),
        },
      },
    },
    async (request, reply) => {
      const asset = library.getAsset(request.params.id);
      auth.requireRead(request.actor, asset);
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const signed = signer.sign(asset.id);
      const origin = presentContext(request, config).origin;
      reply.header('cache-control', 'no-store');
      return { iiif: `${origin}${IIIF_PREFIX}/s/${signed.token}/3/${encodeURIComponent(asset.id)}`, expires: signed.expires.toISOString() };
    },
  );

  app.get<{ Params: { id: string } }>(
    `${IIIF_PREFIX}/manifests/:id`,
    {
      schema: {
        tags: ['iiif'],
        summary: 'IIIF Presentation 3 manifest of an asset (`id` or `id@version`)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 201 }) }),
        response: { 200: PRESENTATION, ...problemResponses(401, 404, 410, 415) },
      },
    },
    async (request, reply) => {
      reply.header('access-control-allow-origin', '*');
      const rawId = rawRest(request.url, `${IIIF_PREFIX}/manifests/`);
      const identifier = validateIdentifier(request.params.id);
      // Manifests describe library assets; web images have only their image service.
      if (!identifier.ok || isWebIdentifier(identifier.value)) throw new ProtocolError('ERR_ASSET_NOT_FOUND', 'unknown identifier');
      const found = resolveIdentifier(library, identifier.value);
      auth.requireRead(request.actor, found.asset);
      if (!hasImage(found.version)) throw new ProtocolError('ERR_NOT_AN_IMAGE', 'this version has no image');
      const ctx = presentContext(request, config);
      reply.header('cache-control', cacheControl(found.asset, found.pinned, { prefix: IIIF_PREFIX }));
      const ld = (request.headers.accept ?? '').includes('application/ld+json');
      reply.type(ld ? 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"' : 'application/json');
      // Webmention: supplements others announced are shown, and where to announce more.
      const webmention = request.server.webmention;
      if (webmention) reply.header('link', `<${ctx.origin}/webmention>; rel="webmention"`);
      const supplements = webmention?.supplementsFor(found.asset.id);
      return reply.send(
        JSON.stringify(
          buildManifest({ iiifBase: ctx.iiifBase, apiBase: ctx.apiBase, asset: found.asset, version: found.version, identifier: rawId, supplements }),
        ),
      );
    },
  );

  app.get<{ Params: { id: string } }>(
    `${IIIF_PREFIX}/collections/:id`,
    {
      schema: {
        tags: ['iiif'],
        summary: 'IIIF Presentation 3 collection: the manifests of a collection the caller may read',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }) }),
        response: { 200: PRESENTATION, ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      reply.header('access-control-allow-origin', '*');
      const collection = library.getCollection(request.params.id);
      if (!auth.canReadCollection(request.actor, collection.id)) auth.require(false, request.actor, 'read this collection');
      const assets = library.catalog.data.assets.filter(
        (a) => !a.deleted && a.collections.includes(collection.id) && auth.canRead(request.actor, a) && hasImage(currentVersion(a)),
      );
      const ctx = presentContext(request, config);
      reply.header('cache-control', 'private, max-age=60');
      reply.type('application/json');
      return reply.send(JSON.stringify(buildCollection({ iiifBase: ctx.iiifBase, collection, assets })));
    },
  );

  // CORS preflight, for viewers that send a bearer token.
  app.options(`${IIIF_PREFIX}/*`, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .code(204)
      .header('access-control-allow-origin', '*')
      .header('access-control-allow-methods', 'GET, HEAD, OPTIONS')
      .header('access-control-allow-headers', 'Authorization, Accept')
      .header('access-control-max-age', '86400')
      .send(),
  );
}

/** The request target after `prefix`, as sent (still percent-encoded), without the query. */
function rawRest(url: string, prefix: string): string {
  const path = url.split('?')[0]!;
  return path.startsWith(prefix) ? path.slice(prefix.length) : '';
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The IIIF image service (library roles). */
    iiif?: IiifService;
  }
}
