/**
 * Plain IIIF sources, read-only: `GET /iiif?url=` fetches a Presentation 3 / 2.1 manifest or
 * collection, or an Image API info.json, and answers it normalised (IiifSource) with every
 * thumbnail relayed through `GET /iiif/image?url=&exp=&sig=`, a URL the agent signs itself
 * (so the panel's `<img>` needs no token, and only URLs the agent handed out are relayed),
 * cached on disk like server thumbnails.
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { ProtocolError } from '../../../shared/errors.ts';
import { AGENT_PREFIX, IiifSource } from '../../../shared/schemas/agent.ts';
import { fileResponse, problemResponses } from '../../routes/api-context.ts';
import { checkHttpUrl, fetchImage } from '../fetch-image.ts';
import { readIiifSource } from '../iiif-source.ts';
import type { AgentServices } from '../services.ts';
import { THUMB_CACHE_DEFAULTS } from '../thumb-cache.ts';
import { sendCachedImage } from './thumbs.ts';

export const IIIF_FETCH_DEFAULTS = Object.freeze({
  timeoutMs: 15_000, // one IIIF document, body included
  maxBytes: 8 * 1024 ** 2, // a bigger document is refused
  maxRedirects: 3, // http → https, a moved manifest
});

const UrlQuery = Type.Object({ url: Type.String({ minLength: 1, maxLength: 2000 }) }, { additionalProperties: false });
const SignedUrlQuery = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2000 }),
    exp: Type.Optional(Type.String({ maxLength: 20 })),
    sig: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

/** The agent-relative signed URL that relays a remote IIIF image. */
export function relayUrl(services: Pick<AgentServices, 'urls'>, remote: string): string {
  return services.urls.sign(`${AGENT_PREFIX}/iiif/image?url=${encodeURIComponent(remote)}`);
}

/** GETs a JSON document with a size cap, a deadline and a few redirects; every failure a ProtocolError. */
export async function fetchIiifDocument(url: string, doFetch: typeof fetch): Promise<{ doc: unknown; url: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), IIIF_FETCH_DEFAULTS.timeoutMs);
  const shown = url.slice(0, 200);
  try {
    let target = url;
    for (let hop = 0; ; hop++) {
      checkHttpUrl(target);
      let response: Response;
      try {
        response = await doFetch(target, {
          headers: { accept: 'application/ld+json, application/json;q=0.9, */*;q=0.1' },
          redirect: 'manual',
          signal: controller.signal,
        });
      } catch (error) {
        throw controller.signal.aborted
          ? new ProtocolError('ERR_UPSTREAM_TIMEOUT', `${shown} took more than ${IIIF_FETCH_DEFAULTS.timeoutMs} ms`, { cause: error })
          : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${shown} could not be reached`, { cause: error });
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location && hop < IIIF_FETCH_DEFAULTS.maxRedirects) {
        response.body?.cancel().catch(() => {});
        target = new URL(location, target).href;
        continue;
      }
      if (!response.ok) {
        response.body?.cancel().catch(() => {});
        throw new ProtocolError('ERR_UPSTREAM_ERROR', `${shown} answered ${response.status}`, {
          extensions: { remoteStatus: response.status },
        });
      }
      const declared = Number(response.headers.get('content-length'));
      if (Number.isFinite(declared) && declared > IIIF_FETCH_DEFAULTS.maxBytes) {
        response.body?.cancel().catch(() => {});
        throw new ProtocolError('ERR_IIIF_SOURCE_INVALID', `${shown} is larger than ${IIIF_FETCH_DEFAULTS.maxBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of (response.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.length;
          if (size > IIIF_FETCH_DEFAULTS.maxBytes) {
            controller.abort();
            throw new ProtocolError('ERR_IIIF_SOURCE_INVALID', `${shown} is larger than ${IIIF_FETCH_DEFAULTS.maxBytes} bytes`);
          }
          chunks.push(Buffer.from(chunk));
        }
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        throw controller.signal.aborted
          ? new ProtocolError('ERR_UPSTREAM_TIMEOUT', `${shown} took more than ${IIIF_FETCH_DEFAULTS.timeoutMs} ms`, { cause: error })
          : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${shown} ended early`, { cause: error });
      }
      try {
        return { doc: JSON.parse(Buffer.concat(chunks).toString('utf8')), url: target };
      } catch (error) {
        throw new ProtocolError('ERR_IIIF_SOURCE_INVALID', `${shown} is not JSON`, { cause: error });
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

export async function iiifSourceRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { services } = options;

  app.get<{ Querystring: { url: string } }>(
    '/iiif',
    {
      schema: {
        tags: ['agent'],
        summary: 'A plain IIIF source (Presentation 3/2.1 manifest or collection, Image API info.json), normalised',
        querystring: UrlQuery,
        response: { 200: IiifSource, ...problemResponses(400, 401, 403, 502, 504) },
      },
    },
    async (request, reply) => {
      const requested = checkHttpUrl(request.query.url).href;
      const { doc, url } = await fetchIiifDocument(requested, services.fetch);
      reply.header('cache-control', 'no-store');
      return readIiifSource(doc, url, (remote) => relayUrl(services, remote));
    },
  );

  app.get<{ Querystring: { url: string } }>(
    '/iiif/image',
    {
      schema: {
        tags: ['agent'],
        summary: 'A IIIF thumbnail relayed and cached by the agent (URL signed by the agent: exp, sig)',
        querystring: SignedUrlQuery,
        response: {
          200: fileResponse('The image', 'image/jpeg'),
          304: { description: 'Not modified' },
          ...problemResponses(400, 401, 403, 502, 504),
        },
      },
    },
    async (request, reply) => {
      // The guard checked the signature: this URL is one the agent handed out.
      const url = checkHttpUrl(request.query.url).href;
      const image = await services.thumbs.relay(url, () =>
        fetchImage(url, {
          fetch: services.fetch,
          timeoutMs: THUMB_CACHE_DEFAULTS.timeoutMs,
          maxBytes: THUMB_CACHE_DEFAULTS.maxImageBytes,
          maxRedirects: IIIF_FETCH_DEFAULTS.maxRedirects,
        }),
      );
      return sendCachedImage(request, reply, image);
    },
  );
}
