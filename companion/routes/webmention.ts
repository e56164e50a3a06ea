/**
 * Webmention routes: the receiving endpoint `POST /webmention` (form-encoded `source` and
 * `target`; 202 and a status URL, verified in the background), its status
 * `GET /webmention/{id}`, supplements this server publishes about other servers' resources
 * (`{api}/supplements`, sent as webmentions), and their documents under `{iiif}/supplements/`.
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import { requestOrigin } from '../http/origin.ts';
import type { PublishedRecord } from '../webmention/store.ts';
import { SUPPLEMENTS_PATH, WEBMENTION_PATH, type WebmentionServices } from '../webmention/services.ts';
import { API_PREFIX, installActor, problemResponses, type ApiOptions } from './api-context.ts';

const FORM = 'application/x-www-form-urlencoded';
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 40, pattern: '^[A-Za-z0-9]+$' }) });

const MentionStatus = Type.Object(
  {
    id: Type.String(),
    source: Type.String(),
    target: Type.String(),
    state: Type.Union(['queued', 'verifying', 'accepted', 'updated', 'removed', 'refused'].map((s) => Type.Literal(s))),
    received: Type.String({ format: 'date-time' }),
    finished: Type.Optional(Type.String({ format: 'date-time' })),
    error: Type.Optional(Type.Object({ code: Type.String(), detail: Type.String() })),
    supplement: Type.Optional(Type.String()),
  },
  { $id: 'WebmentionStatus' },
);

const Published = Type.Object(
  {
    id: Type.String(),
    asset: Type.String(),
    target: Type.String(),
    url: Type.String({ description: 'The supplement document (a IIIF AnnotationPage), the webmention source.' }),
    label: Type.Optional(Type.String()),
    created: Type.String({ format: 'date-time' }),
    createdBy: Type.Optional(Type.String()),
    deleted: Type.Optional(Type.String({ format: 'date-time' })),
    send: Type.Object({
      state: Type.Union(['sending', 'sent', 'no-endpoint', 'failed'].map((s) => Type.Literal(s))),
      endpoint: Type.Optional(Type.String()),
      status: Type.Optional(Type.Integer()),
      error: Type.Optional(Type.String()),
      at: Type.Optional(Type.String({ format: 'date-time' })),
    }),
  },
  { $id: 'PublishedSupplement' },
);

const JSON_DOCUMENT = { schema: { type: 'object', additionalProperties: true } };
const PRESENTATION = { description: 'IIIF Presentation 3 AnnotationPage', content: { 'application/json': JSON_DOCUMENT, 'application/ld+json': JSON_DOCUMENT } };

export async function webmentionRoutes(app: FastifyInstance, { config, services, webmention }: ApiOptions & { webmention: WebmentionServices }) {
  const { auth, library } = services;
  installActor(app, services);

  // Form bodies for this plugin only; a repeated field becomes an array (and is refused).
  app.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
    const fields: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(body as string)) {
      const seen = fields[key];
      fields[key] = seen === undefined ? value : ([] as string[]).concat(seen, value);
    }
    done(null, fields);
  });

  const present = (record: PublishedRecord) => {
    const { assetId, origin: _origin, ...rest } = record;
    return { ...rest, asset: assetId, url: webmention.supplementUrl(record) };
  };

  app.post<{ Body: { source?: unknown; target?: unknown } }>(
    WEBMENTION_PATH,
    {
      attachValidation: true,
      schema: {
        tags: ['webmention'],
        summary: 'Receive a webmention: `source` links to `target` (a manifest, canvas or asset of this server); 202, verified later',
        consumes: [FORM],
        body: Type.Object({ source: Type.String({ maxLength: 2048 }), target: Type.String({ maxLength: 2048 }) }),
        response: { 202: MentionStatus, ...problemResponses(400, 401, 415, 429) },
      },
    },
    async (request, reply) => {
      const body = (request.body ?? {}) as { source?: unknown; target?: unknown };
      try {
        if (!String(request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM)) {
          throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `a webmention is sent as ${FORM}`);
        }
        if (request.validationError && (typeof body.source !== 'string' || typeof body.target !== 'string')) {
          throw new ProtocolError('ERR_WEBMENTION_INVALID', 'source and target are required, once each');
        }
        const origin = requestOrigin(request, config.publicOrigin);
        const status = await webmention.receive({ source: body.source, target: body.target, origin, actor: request.actor });
        request.log.info({ webmention: status.id, source: status.source, target: status.target }, 'webmention accepted for verification');
        const location = `${origin}${WEBMENTION_PATH}/${status.id}`;
        return reply.code(202).header('location', location).header('cache-control', 'no-store').send(status);
      } catch (error) {
        if (isProtocolError(error) && error.status < 500) {
          request.log.warn({ code: error.code, detail: error.message, source: String(body.source ?? '').slice(0, 300) }, 'webmention refused');
        }
        throw error;
      }
    },
  );

  app.get<{ Params: { id: string } }>(
    `${WEBMENTION_PATH}/:id`,
    {
      schema: {
        tags: ['webmention'],
        summary: 'Where the verification of a received webmention stands',
        params: IdParams,
        response: { 200: MentionStatus, ...problemResponses(404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return webmention.status(request.params.id);
    },
  );

  app.post<{ Body: { asset: string; target: string; label?: string } }>(
    `${API_PREFIX}/supplements`,
    {
      schema: {
        tags: ['webmention'],
        summary: "Publish a supplement linking one of our assets to another server's resource, and send it a webmention",
        body: Type.Object(
          {
            asset: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }),
            target: Type.String({ minLength: 1, maxLength: 2048 }),
            label: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 202: Published, ...problemResponses(400, 401, 403, 404, 410) },
      },
    },
    async (request, reply) => {
      const asset = library.getAsset(request.body.asset);
      auth.requireRead(request.actor, asset);
      auth.require(auth.canWrite(request.actor, asset), request.actor, 'publish supplements of this asset');
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const record = await webmention.publish({
        assetId: asset.id,
        target: request.body.target,
        label: request.body.label,
        origin: requestOrigin(request, config.publicOrigin),
        createdBy: request.actor?.name,
      });
      reply.code(202).header('location', `${record.origin}${API_PREFIX}/supplements/${record.id}`);
      return present(record);
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/supplements/:id`,
    {
      schema: {
        tags: ['webmention'],
        summary: 'A published supplement and the state of its webmention',
        params: IdParams,
        response: { 200: Published, ...problemResponses(401, 404) },
      },
    },
    async (request) => {
      const record = webmention.published(request.params.id);
      const asset = library.catalog.asset(record.assetId);
      if (!asset || !auth.canRead(request.actor, asset)) {
        auth.require(!!request.actor, request.actor, 'read supplements');
        throw new ProtocolError('ERR_WEBMENTION_NOT_FOUND', `no supplement "${request.params.id}"`);
      }
      return present(record);
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${API_PREFIX}/supplements/:id`,
    {
      schema: {
        tags: ['webmention'],
        summary: 'Withdraw a published supplement: its document answers 410 and the target is notified',
        params: IdParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const record = webmention.published(request.params.id);
      const asset = library.catalog.asset(record.assetId);
      if (!asset || !auth.canRead(request.actor, asset)) {
        auth.require(!!request.actor, request.actor, 'withdraw supplements');
        throw new ProtocolError('ERR_WEBMENTION_NOT_FOUND', `no supplement "${request.params.id}"`);
      }
      auth.require(auth.canWrite(request.actor, asset), request.actor, 'withdraw supplements of this asset');
      await webmention.withdraw(record.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    `${SUPPLEMENTS_PATH}/:id`,
    {
      schema: {
        tags: ['iiif'],
        summary: 'A supplement this server published (IIIF Presentation 3 AnnotationPage); 410 once withdrawn',
        params: IdParams,
        response: { 200: PRESENTATION, ...problemResponses(404, 410) },
      },
    },
    async (request, reply) => {
      reply.header('access-control-allow-origin', '*');
      const record = webmention.published(request.params.id);
      if (record.deleted) throw new ProtocolError('ERR_WEBMENTION_NOT_FOUND', 'this supplement was withdrawn', { status: 410 });
      const ld = (request.headers.accept ?? '').includes('application/ld+json');
      reply
        .header('cache-control', 'public, max-age=60')
        .type(ld ? 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"' : 'application/json');
      return reply.send(JSON.stringify(webmention.supplementDocument(record)));
    },
  );
}
