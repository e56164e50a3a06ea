/**
 * The offline mirror (issue 9) through the agent's local API:
 *
 *   GET  /sync                       { items: SyncStatus[] } (with details: phase, thumbnails…)
 *   POST /sync/:connection[?wait=true]  sync now → 202 SyncStatus (200 once done with `wait`)
 *   PUT  /sync/:connection           { collections: string[] | null } → 200 SyncStatus (a full sync follows)
 *   GET  /sync/search?q=&connection=&…  AgentSearchPage answered from the mirror only (`local: true`),
 *                                    so `imagine search` works with every server down
 *
 * The mirror starts syncing when the agent starts listening.
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { ProtocolError } from '../../../shared/errors.ts';
import { AgentSearchPage, SyncStatus, type AgentAsset } from '../../../shared/schemas/agent.ts';
import { ORIENTATIONS, RIGHTS_FILTERS, SEARCH_SORTS, type SearchQuery } from '../../../shared/schemas/asset.ts';
import { problemResponses } from '../../routes/api-context.ts';
import { Mirror } from '../mirror/mirror.ts';
import { toAgentAsset } from '../present.ts';
import { SearchQuerystring } from './search.ts';
import { encodeCursor, searchTargets, type CombinedCursor } from '../search-cursor.ts';
import type { AgentServices } from '../services.ts';

const ConnectionParams = Type.Object({ connection: Type.String({ minLength: 1, maxLength: 200 }) });

const SyncQuerystring = Type.Object(
  { wait: Type.Optional(Type.Boolean({ description: 'Answer once the sync has ended (200) rather than at once (202).' })) },
  { additionalProperties: false },
);

const ScopeBody = Type.Object(
  {
    collections: Type.Union([
      Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 1000 }),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);

/** The same query as the agent's search (the mirror answers the server's query language). */
const LocalSearchQuerystring = SearchQuerystring;
type LocalSearchQuerystring = SearchQuery & { connection?: string };

const StatusList = Type.Object({ items: Type.Array(SyncStatus) });

/** The agent's mirror; ERR_SERVICE_UNAVAILABLE when this agent runs without one. */
export function mirrorOf(services: AgentServices): Mirror {
  const mirror = services.mirror;
  if (!(mirror instanceof Mirror)) throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'this agent keeps no local mirror');
  return mirror;
}

export async function syncRoutes(app: FastifyInstance, options: { services: AgentServices }): Promise<void> {
  const { services } = options;

  // Sync talks to the servers, which may be this very process (role both): start once it listens.
  app.addHook('onListen', async () => {
    if (services.mirror instanceof Mirror) services.mirror.start();
  });

  app.get(
    '/sync',
    {
      schema: {
        tags: ['agent'],
        summary: 'The local mirror of each connection: state, last sync, lag, size on disk, last error',
        response: { 200: StatusList, ...problemResponses(401, 403, 503) },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { items: mirrorOf(services).status() };
    },
  );

  app.post<{ Params: { connection: string }; Querystring: { wait?: boolean } }>(
    '/sync/:connection',
    {
      schema: {
        tags: ['agent'],
        summary: "Sync a connection's mirror now (also the hint a webhook receiver gives)",
        params: ConnectionParams,
        querystring: SyncQuerystring,
        response: { 200: SyncStatus, 202: SyncStatus, ...problemResponses(401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const mirror = mirrorOf(services);
      services.connections.require(request.params.connection);
      const wait = request.query.wait === true;
      const status = await mirror.syncNow(request.params.connection, { wait });
      reply.header('cache-control', 'no-store');
      return reply.code(wait ? 200 : 202).send(status);
    },
  );

  app.put<{ Params: { connection: string }; Body: { collections: string[] | null } }>(
    '/sync/:connection',
    {
      schema: {
        tags: ['agent'],
        summary: 'Choose what a connection mirrors: some collections, or everything (null); a full sync follows',
        params: ConnectionParams,
        body: ScopeBody,
        response: { 200: SyncStatus, ...problemResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const mirror = mirrorOf(services);
      services.connections.require(request.params.connection);
      const status = await mirror.setCollections(request.params.connection, request.body.collections);
      reply.header('cache-control', 'no-store');
      return status;
    },
  );

  app.get<{ Querystring: LocalSearchQuerystring }>(
    '/sync/search',
    {
      schema: {
        tags: ['agent'],
        summary: 'Search the local mirror only (every connection, or one): works with the servers down',
        querystring: LocalSearchQuerystring,
        response: { 200: AgentSearchPage, ...problemResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const mirror = mirrorOf(services);
      const { connection, cursor, ...query } = request.query;
      const targets = searchTargets(services, connection, cursor);
      const ids = Object.keys(targets).filter((id) => services.connections.get(id) !== undefined);
      const answers = await Promise.all(
        ids.map(async (id) => {
          const page = await mirror.search(id, { ...query, cursor: targets[id]!.c });
          return { id, page };
        }),
      );
      if (ids.length > 0 && answers.every((a) => a.page === undefined)) {
        const which = connection ?? ids.join(', ');
        throw new ProtocolError('ERR_MIRROR_UNAVAILABLE', `no local mirror of ${which} yet (its first sync has not finished; see imagine sync status)`);
      }
      // Interleaved, each source's own order kept (as the agent's main search does).
      const lists = answers.map((a) => (a.page?.items ?? []).map((asset) => toAgentAsset(services, a.id, asset)));
      const items: AgentAsset[] = [];
      for (let i = 0; lists.some((list) => i < list.length); i++) {
        for (const list of lists) if (i < list.length) items.push(list[i]!);
      }
      const next: CombinedCursor = {};
      for (const { id, page } of answers) if (page?.next) next[id] = { c: page.next, l: 'mirror' };
      const sources = answers.map(({ id, page }) =>
        page
          ? { connection: id, state: 'ok' as const, local: true, count: page.items.length, ...(page.total !== undefined ? { total: page.total } : {}) }
          : {
              connection: id,
              state: 'failed' as const,
              local: true,
              count: 0,
              error: { code: 'ERR_MIRROR_UNAVAILABLE', message: `no local mirror of ${id} yet` },
            },
      );
      reply.header('cache-control', 'no-store');
      return { items, next: encodeCursor(next), sources };
    },
  );
}
