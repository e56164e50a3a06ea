/**
 * Guests: people invited by e-mail address, who sign in with a one-time link.
 *
 *   POST {api}/guests               invite (administrators, or writers of every collection named)
 *   GET  /guest/login?token=         the sign-in page of a link (uses nothing)
 *   POST /guest/login                uses the link: a session cookie, then 303 to /guest/
 *   POST /guest/logout               ends the session
 *   GET  /guest/                     the combined view (HTML; script at /guest/app.js)
 *   GET  /guest/api/me               who is signed in
 *   GET  /guest/api/assets?q=&cursor=   this server's shares + every peer's, in one list
 *   GET  /guest/api/thumbnail?uri=   a thumbnail, relayed (signed) from its server
 *   POST /guest/api/archive          one zip of the originals asked for (JSON {uris} or a form)
 *
 * The session is a cookie (`HttpOnly; SameSite=Strict; Path=/guest`) honoured on `/guest/`
 * routes only; the guest reads what is shared with their address, as the `guest` audience
 * (privacy-filtered metadata and originals). POSTs from another origin are refused.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import { stat } from 'node:fs/promises';
import Type from 'typebox';
import { ProtocolError } from '../../shared/errors.ts';
import type { Config } from '../config.ts';
import type { FederationServices } from '../federation/services.ts';
import { requestOrigin } from '../http/origin.ts';
import { normaliseError } from '../http/problem.ts';
import { sendFile } from '../http/send-file.ts';
import type { LibraryServices } from '../library/services.ts';
import type { UserRecord } from '../library/records.ts';
import { presentAsset } from '../library/present.ts';
import { uriAuthorityFromOrigin } from '../../shared/uri.ts';
import { writeArchive } from '../guests/archive.ts';
import { fetchRemoteThumbnail, guestSearch, locate } from '../guests/combined.ts';
import { GUEST_PREFIX, inviteGuest } from '../guests/invite.ts';
import { guestOriginals } from '../guests/originals.ts';
import { APP_CSS, APP_JS, appPage, GUEST_CSP, messagePage, signInPage } from '../guests/page.ts';
import { openGuestStore, type GuestSessionRecord, type GuestStore } from '../guests/store.ts';
import { API_PREFIX, fileResponse, installActor, presentContext, problemResponses } from './api-context.ts';
import { AssetMetadata, Rights } from '../../shared/schemas/asset.ts';

export const GUEST_COOKIE = 'imagine_guest';

const Invitation = Type.Object({
  email: Type.String(),
  collections: Type.Array(Type.String()),
  link: Type.String({ description: 'The one-time sign-in link (shown only here)' }),
  expires: Type.String(),
  mail: Type.Object({
    sent: Type.Boolean(),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  }),
});

const GuestPage = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          uri: Type.String(),
          server: Type.String({ description: "The asset's server (its imagine:// authority)" }),
          local: Type.Boolean({ description: 'Whether it lives on this server' }),
          filename: Type.String(),
          mediaType: Type.String(),
          width: Type.Optional(Type.Integer()),
          height: Type.Optional(Type.Integer()),
          metadata: AssetMetadata,
          rights: Rights,
          thumbnail: Type.Union([Type.String(), Type.Null()], { description: 'Same-origin thumbnail URL (relayed)' }),
        },
        { additionalProperties: true },
      ),
    ),
    next: Type.Union([Type.String(), Type.Null()]),
    sources: Type.Array(
      Type.Object(
        {
          origin: Type.String({ description: '`local` or a peer origin' }),
          state: Type.String({ description: 'ok, slow or failed' }),
          count: Type.Integer(),
          ms: Type.Number(),
          error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true },
);

export interface GuestRoutesOptions {
  config: Config;
  services: LibraryServices;
  federation?: FederationServices;
  /** The store of links and sessions; opened from the data folder when absent. */
  store?: GuestStore;
}

/** A guest acts as a reader of the collections shared with their address, nothing more. */
export function guestActor(session: GuestSessionRecord, services: LibraryServices): UserRecord {
  const grants = Object.fromEntries(Object.keys(services.library.sharesOf(session.identity)).map((id) => [id, 'read' as const]));
  return { name: session.identity, admin: false, created: session.created, grants };
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', GUEST_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-store');
}

const wantsHtml = (request: FastifyRequest) => /text\/html/.test(request.headers.accept ?? '');

/** Errors of the HTML routes: a page for browsers, a problem document for everyone else. */
function htmlOrProblem(request: FastifyRequest, reply: FastifyReply, error: unknown, title: string) {
  if (!wantsHtml(request)) throw error;
  const problem = normaliseError(error);
  const message = problem.status >= 500 ? 'Something went wrong on this server. Try again later.' : problem.message;
  return pageHeaders(reply).code(problem.status).type('text/html; charset=utf-8').send(messagePage(title, message, problem.code));
}

export async function guestRoutes(app: FastifyInstance, options: GuestRoutesOptions) {
  const { config, services, federation } = options;
  const { library, auth } = services;
  const store = options.store ?? (await openGuestStore(config.dataDir));
  app.addHook('onClose', async () => store.flush());

  // The invitation, on the protocol API (bearer tokens).
  await app.register(async (api) => {
    installActor(api, services);
    api.post<{ Body: { email: string; collections: string[] } }>(
      `${API_PREFIX}/guests`,
      {
        schema: {
          tags: ['guests'],
          summary: 'Invite a guest by e-mail: shares the collections with the address and makes a one-time sign-in link (mailed when SMTP is configured)',
          body: Type.Object(
            {
              email: Type.String({ minLength: 3, maxLength: 320 }),
              collections: Type.Array(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }), { minItems: 1, maxItems: 100 }),
            },
            { additionalProperties: false },
          ),
          response: { 201: Invitation, ...problemResponses(400, 401, 403, 404) },
        },
      },
      async (request, reply) => {
        const { collections } = request.body;
        for (const id of collections) library.getCollection(id);
        auth.require(
          !!request.actor?.admin || collections.every((id) => auth.canWriteCollection(request.actor, id)),
          request.actor,
          'invite guests to these collections',
        );
        const invitation = await inviteGuest({
          library,
          store,
          email: request.body.email,
          collections,
          origin: requestOrigin(request, config.publicOrigin),
          linkTtlSeconds: config.guestLinkTtlSeconds,
          createdBy: request.actor?.name,
          ...(config.smtpUrl ? { mail: { smtpUrl: config.smtpUrl, from: config.smtpFrom } } : {}),
        });
        // Never the link: it is a credential.
        request.log.info({ guest: invitation.email, collections, mailed: invitation.mail.sent, mailError: invitation.mail.error?.code }, 'guest invited');
        reply.code(201).header('cache-control', 'no-store');
        return invitation;
      },
    );
  });

  // The guest's side: pages and their API, authenticated by the session cookie only.
  await app.register(async (guest) => {
    guest.decorateRequest('actor', undefined);
    guest.decorateRequest('peer', undefined);
    guest.decorateRequest('guest', undefined);
    guest.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_request, body, done) =>
      done(null, new URLSearchParams(body as string)),
    );

    const originOf = (request: FastifyRequest) => requestOrigin(request, config.publicOrigin);
    const sessionOf = (request: FastifyRequest) => store.session(cookieValue(request.headers.cookie, GUEST_COOKIE));
    const signIn = (request: FastifyRequest, session: GuestSessionRecord) => {
      request.actor = guestActor(session, services);
      request.guest = { identity: session.identity, expires: session.expires };
    };
    /** A state-changing request must come from this origin (SameSite=Strict already keeps the cookie home). */
    const checkSameOrigin = (request: FastifyRequest) => {
      const origin = request.headers.origin;
      const site = request.headers['sec-fetch-site'];
      if ((origin !== undefined && origin !== originOf(request)) || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
        throw new ProtocolError('ERR_FORBIDDEN', 'guest requests must come from this server\'s own pages');
      }
    };
    const cookie = (request: FastifyRequest, value: string, maxAge: number) =>
      `${GUEST_COOKIE}=${value}; Path=${GUEST_PREFIX}; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${
        originOf(request).startsWith('https:') ? '; Secure' : ''
      }`;

    guest.get(`${GUEST_PREFIX}`, { schema: { hide: true } }, async (_request, reply) => reply.redirect(`${GUEST_PREFIX}/`, 301));

    guest.get(`${GUEST_PREFIX}/`, { schema: { hide: true } }, async (request, reply) => {
      const session = sessionOf(request);
      pageHeaders(reply).type('text/html; charset=utf-8');
      if (!session) {
        return reply
          .code(401)
          .send(messagePage('Not signed in', 'Open the sign-in link of your invitation to see the pictures shared with you.', 'ERR_GUEST_SESSION_REQUIRED'));
      }
      return appPage(session.identity);
    });

    guest.get(`${GUEST_PREFIX}/app.js`, { schema: { hide: true } }, async (_request, reply) =>
      pageHeaders(reply).header('cache-control', 'no-cache').type('text/javascript; charset=utf-8').send(APP_JS),
    );
    guest.get(`${GUEST_PREFIX}/app.css`, { schema: { hide: true } }, async (_request, reply) =>
      pageHeaders(reply).header('cache-control', 'no-cache').type('text/css; charset=utf-8').send(APP_CSS),
    );

    guest.get<{ Querystring: { token?: string } }>(
      `${GUEST_PREFIX}/login`,
      {
        // Browser pages (HTML forms), not protocol API: left out of the OpenAPI document.
        schema: { hide: true, querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })) }) },
      },
      async (request, reply) => {
        try {
          const invite = store.checkInvite(request.query.token);
          return pageHeaders(reply).type('text/html; charset=utf-8').send(signInPage(request.query.token!, invite.identity, uriAuthorityFromOrigin(originOf(request))));
        } catch (error) {
          return htmlOrProblem(request, reply, error, 'This link does not work');
        }
      },
    );

    guest.post<{ Body: URLSearchParams | { token?: unknown } | undefined }>(
      `${GUEST_PREFIX}/login`,
      { schema: { hide: true } },
      async (request, reply) => {
        try {
          checkSameOrigin(request);
          const body = request.body;
          const token = body instanceof URLSearchParams ? body.get('token') ?? undefined : typeof body?.token === 'string' ? body.token : undefined;
          const { session, record } = await store.consumeInvite(token, config.guestSessionTtlSeconds);
          request.log.info({ guest: record.identity }, 'guest signed in');
          return pageHeaders(reply)
            .header('set-cookie', cookie(request, session, config.guestSessionTtlSeconds))
            .redirect(`${GUEST_PREFIX}/`, 303);
        } catch (error) {
          return htmlOrProblem(request, reply, error, 'This link does not work');
        }
      },
    );

    guest.post(`${GUEST_PREFIX}/logout`, { schema: { hide: true } }, async (request, reply) => {
      checkSameOrigin(request);
      await store.endSession(cookieValue(request.headers.cookie, GUEST_COOKIE));
      return pageHeaders(reply).header('set-cookie', cookie(request, '', 0)).redirect(`${GUEST_PREFIX}/`, 303);
    });

    await guest.register(async (api) => {
      api.addHook('onRequest', async (request) => {
        const session = sessionOf(request);
        if (!session) throw new ProtocolError('ERR_GUEST_SESSION_REQUIRED', 'sign in with the link of your invitation');
        signIn(request, session);
      });

      api.get(
        `${GUEST_PREFIX}/api/me`,
        {
          schema: {
            tags: ['guests'],
            summary: 'The signed-in guest',
            response: { 200: Type.Object({ email: Type.String(), expires: Type.String() }), ...problemResponses(401) },
          },
        },
        async (request) => ({ email: request.guest!.identity, expires: request.guest!.expires }),
      );

      api.get<{ Querystring: { q?: string; cursor?: string; limit?: string } }>(
        `${GUEST_PREFIX}/api/assets`,
        {
          schema: {
            tags: ['guests'],
            summary: "What is shared with the guest here and on every peer, in one list (each item's `server`; `sources` per server)",
            querystring: Type.Object(
              {
                q: Type.Optional(Type.String({ maxLength: 500 })),
                cursor: Type.Optional(Type.String({ maxLength: 8000 })),
                limit: Type.Optional(Type.String({ maxLength: 6 })),
              },
              { additionalProperties: false },
            ),
            response: { 200: GuestPage, ...problemResponses(400, 401) },
          },
        },
        async (request, reply) => {
          const ctx = presentContext(request, config);
          reply.header('cache-control', 'private, no-store');
          return guestSearch({
            library,
            federation,
            origin: ctx.origin,
            identity: request.guest!.identity,
            canRead: (asset) => auth.canRead(request.actor, asset),
            present: (asset) => presentAsset(asset, ctx),
            query: request.query,
            maxPageSize: config.maxPageSize,
            deadlineMs: config.federatedSearchDeadlineMs,
          });
        },
      );

      api.get<{ Querystring: { uri: string } }>(
        `${GUEST_PREFIX}/api/thumbnail`,
        {
          schema: {
            tags: ['guests'],
            summary: "An item's thumbnail, from this server or relayed (signed) from its own",
            querystring: Type.Object({ uri: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
            response: { 200: fileResponse('The thumbnail (JPEG)', 'image/jpeg'), ...problemResponses(400, 401, 403, 404, 502) },
          },
        },
        async (request, reply) => {
          const origin = originOf(request);
          const located = await locate(request.query.uri, origin, federation);
          reply
            .header('content-security-policy', "default-src 'none'")
            .header('x-content-type-options', 'nosniff')
            .header('cross-origin-resource-policy', 'same-origin');
          if (!located.local) {
            const bytes = await fetchRemoteThumbnail(federation!, located, origin, request.guest!.identity);
            return reply.header('cache-control', 'private, max-age=300').type('image/jpeg').send(bytes);
          }
          const asset = library.catalog.asset(located.id);
          if (!asset || !auth.canRead(request.actor, asset)) throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${located.id}" shared with you`);
          if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
          const version = library.getVersion(asset, located.version);
          if (!version.thumbnailSha256) throw new ProtocolError('ERR_VERSION_NOT_FOUND', 'this version has no thumbnail');
          const path = library.blobs.pathOf(version.thumbnailSha256);
          return sendFile(request, reply, {
            path,
            size: (await stat(path)).size,
            etag: `"${version.thumbnailSha256}"`,
            contentType: 'image/jpeg',
            cacheControl: 'private, max-age=300',
          });
        },
      );

      api.post<{ Body: URLSearchParams | { uris?: unknown } | undefined }>(
        `${GUEST_PREFIX}/api/archive`,
        {
          schema: {
            tags: ['guests'],
            summary: 'One zip of the originals asked for (JSON {uris} or form fields uri), from every server; failed items are listed in MANIFEST.txt',
            response: { 200: fileResponse('The zip, streamed (stored entries, one folder per server, MANIFEST.txt last)', 'application/zip'), ...problemResponses(400, 401, 403) },
          },
        },
        async (request, reply) => {
          checkSameOrigin(request);
          const uris = archiveUris(request.body, config.guestArchiveMaxItems);
          const origin = originOf(request);
          const out = new PassThrough();
          const prepare = guestOriginals({
            library,
            auth,
            privateCopies: services.privateCopies,
            federation,
            origin,
            actor: request.actor!,
            identity: request.guest!.identity,
            maxBytes: config.maxUploadBytes,
          });
          writeArchive(out, { uris, prepare }).then(
            (summary) =>
              request.log.info(
                { guest: request.guest!.identity, written: summary.written.length, failed: summary.failed.map((f) => f.code) },
                'guest archive',
              ),
            (error: unknown) => {
              request.log.warn({ err: error }, 'guest archive broke off');
              out.destroy(error instanceof Error ? error : new Error(String(error)));
            },
          );
          const day = new Date().toISOString().slice(0, 10);
          return reply
            .header('content-type', 'application/zip')
            .header('content-disposition', `attachment; filename="shared-pictures-${day}.zip"`)
            .header('cache-control', 'no-store')
            .header('x-content-type-options', 'nosniff')
            .send(out);
        },
      );
    });
  });
}

/** The URIs of an archive request: JSON `{ uris: [...] }` or form fields `uri`. */
export function archiveUris(body: unknown, max: number): string[] {
  const list: unknown = body instanceof URLSearchParams ? body.getAll('uri') : (body as { uris?: unknown } | undefined)?.uris;
  if (!Array.isArray(list) || list.length === 0 || !list.every((u) => typeof u === 'string' && u.length > 0 && u.length <= 2048)) {
    throw new ProtocolError('ERR_VALIDATION', 'give the imagine:// URIs to download as `uris` (a non-empty array of strings)');
  }
  const uris = [...new Set(list as string[])];
  if (uris.length > max) throw new ProtocolError('ERR_VALIDATION', `an archive holds at most ${max} items (${uris.length} asked)`);
  return uris;
}
