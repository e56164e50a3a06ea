/**
 * `GET /thumbs/:connection/:id/:version?exp=&sig=`: a thumbnail from the agent's disk cache,
 * fetched from the server on a miss. The URL is signed by the agent (the guard checks it), so
 * an `<img>` loads it; one version's thumbnail never changes, hence the immutable caching.
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { problemResponses, fileResponse } from '../../routes/api-context.ts';
import type { AgentServices } from '../services.ts';
import type { CachedImage } from '../thumb-cache.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { recordOutcome } from '../relay.ts';

const Segment = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' });
const ThumbParams = Type.Object({ connection: Type.String({ minLength: 1, maxLength: 200 }), id: Segment, version: Segment });
const SignedQuery = Type.Object(
  { exp: Type.Optional(Type.String({ maxLength: 20 })), sig: Type.Optional(Type.String({ maxLength: 100 })) },
  { additionalProperties: false },
);

/** Sends a cached image with its ETag; 304 when the client has it. */
export function sendCachedImage(request: FastifyRequest, reply: FastifyReply, image: CachedImage) {
  const etag = `"${image.sha256}"`;
  reply
    .header('etag', etag)
    .header('cache-control', 'private, max-age=31536000, immutable')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'")
    .header('imagine-cache', image.hit ? 'hit' : 'miss');
  const match = request.headers['if-none-match'];
  if (typeof match === 'string' && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
    return reply.code(304).send();
  }
  return reply.type(image.contentType).send(image.body);
}

export async function thumbRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { services } = options;
  app.get<{ Params: { connection: string; id: string; version: string } }>(
    '/thumbs/:connection/:id/:version',
    {
      schema: {
        tags: ['agent'],
        summary: 'The thumbnail of a version, from the agent cache (URL signed by the agent: exp, sig)',
        params: ThumbParams,
        querystring: SignedQuery,
        response: {
          200: fileResponse('The thumbnail', 'image/jpeg'),
          304: { description: 'Not modified' },
          ...problemResponses(401, 403, 404, 502, 504),
        },
      },
    },
    async (request, reply) => {
      const { connection, id, version } = request.params;
      services.connections.require(connection);
      let image: CachedImage;
      try {
        image = await services.thumbs.ensure(connection, id, version);
      } catch (error) {
        await recordOutcome(services, connection, error);
        throw error;
      }
      return sendCachedImage(request, reply, image);
    },
  );
}
