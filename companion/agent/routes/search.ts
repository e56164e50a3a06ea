/**
 * Search and browse through the agent: `GET /search` fans out to every connection (or the one
 * named) in parallel with a deadline and merges the pages, each source with its own status;
 * `GET /assets/:connection/:id` and `GET /resolve?uri=imagine://...` answer one asset. Every
 * asset comes back as an AgentAsset (a signed local thumbnail URL); a server that cannot be
 * reached is answered from the mirror or the assets seen before (`local: true`).
 */
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { ProtocolError } from '../../../shared/errors.ts';
import { AgentAsset, AgentSearchPage } from '../../../shared/schemas/agent.ts';
import { ORIENTATIONS, RIGHTS_FILTERS, SEARCH_SORTS, type SearchPage, type SearchQuery } from '../../../shared/schemas/asset.ts';
import { parseUri } from '../../../shared/uri.ts';
import { problemResponses } from '../../routes/api-context.ts';
import { isUnreachable, type AgentServices } from '../services.ts';
import { toAgentAsset } from '../present.ts';
import { describeError, getAsset, localSearch, recordOutcome, RELAY_DEFAULTS } from '../relay.ts';
import { encodeCursor, searchTargets, MAX_CURSOR_LENGTH, type CombinedCursor, type SourceCursor } from '../search-cursor.ts';

export const SEARCH_DEFAULTS = Object.freeze({
  /** A source that has not answered by then is reported `slow` (answered locally when it can). */
  deadlineMs: 5_000,
  limit: 50,
  maxLimit: 200,
});

/** The agent's search query: the protocol's, plus `connection` (one server, or all). */
export const SearchQuerystring = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: 500 })),
    connection: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    collection: Type.Optional(Type.String({ maxLength: 100 })),
    creator: Type.Optional(Type.String({ maxLength: 200 })),
    keyword: Type.Optional(Type.String({ maxLength: 200 })),
    format: Type.Optional(Type.String({ maxLength: 20 })),
    createdAfter: Type.Optional(Type.String({ maxLength: 40 })),
    createdBefore: Type.Optional(Type.String({ maxLength: 40 })),
    orientation: Type.Optional(Type.Enum([...ORIENTATIONS])),
    rights: Type.Optional(Type.Enum([...RIGHTS_FILTERS])),
    sort: Type.Optional(Type.Enum([...SEARCH_SORTS])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: SEARCH_DEFAULTS.maxLimit })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_CURSOR_LENGTH })),
  },
  { additionalProperties: false },
);
type SearchQuerystring = SearchQuery & { connection?: string };

const AssetParams = Type.Object({
  connection: Type.String({ minLength: 1, maxLength: 200 }),
  id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._~-]+$' }),
});

type Source = AgentSearchPage['sources'][number];

interface SourceAnswer {
  source: Source;
  page?: SearchPage;
  /** What to put in the next combined cursor for this source (undefined: exhausted or dropped). */
  next?: SourceCursor;
}

export interface SearchRoutesOptions {
  services: AgentServices;
  /** Overrides SEARCH_DEFAULTS.deadlineMs (tests). */
  deadlineMs?: number;
}

export async function searchRoutes(app: FastifyInstance, options: SearchRoutesOptions): Promise<void> {
  const { services } = options;
  const deadlineMs = options.deadlineMs ?? SEARCH_DEFAULTS.deadlineMs;

  async function askLocal(id: string, query: SearchQuery, state: Source['state'], from?: 'mirror' | 'seen', error?: unknown) {
    const local = await localSearch(services, id, query, from).catch(() => undefined);
    const described = error === undefined ? undefined : describeError(error);
    if (!local) {
      return { source: { connection: id, state, count: 0, ...(described ? { error: described } : {}) } } satisfies SourceAnswer;
    }
    return {
      source: {
        connection: id,
        state,
        local: true,
        count: local.page.items.length,
        ...(local.page.total !== undefined ? { total: local.page.total } : {}),
        ...(described ? { error: described } : {}),
      },
      page: local.page,
      next: local.page.next === null ? undefined : { c: local.page.next, l: local.from },
    } satisfies SourceAnswer;
  }

  async function searchOne(id: string, query: SearchQuery, cursor: SourceCursor): Promise<SourceAnswer> {
    const sourceQuery = { ...query, cursor: cursor.c };
    if (cursor.l) return askLocal(id, sourceQuery, 'ok', cursor.l);
    let client;
    try {
      client = services.client(id, { timeoutMs: RELAY_DEFAULTS.timeoutMs });
    } catch (error) {
      return { source: { connection: id, state: 'failed', count: 0, error: describeError(error) } };
    }
    const asked = client.search(sourceQuery).then(
      async (page) => {
        services.assetCache.remember(id, page.items);
        await recordOutcome(services, id);
        return page;
      },
      async (error: unknown) => {
        await recordOutcome(services, id, error);
        throw error;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    try {
      const page = await Promise.race([asked, late]);
      if (page === 'late') {
        asked.catch(() => {}); // still remembered when it lands; nobody waits for it
        return askLocal(id, sourceQuery, 'slow');
      }
      return {
        source: { connection: id, state: 'ok', count: page.items.length, ...(page.total !== undefined ? { total: page.total } : {}) },
        page,
        next: page.next === null ? undefined : { c: page.next },
      };
    } catch (error) {
      if (isUnreachable(error)) return askLocal(id, sourceQuery, 'offline', undefined, error);
      return { source: { connection: id, state: 'failed', count: 0, error: describeError(error) } };
    } finally {
      clearTimeout(timer);
    }
  }

  app.get<{ Querystring: SearchQuerystring }>(
    '/search',
    {
      schema: {
        tags: ['agent'],
        summary: 'Search every connection (or one) at once: a merged page, each source with its status',
        querystring: SearchQuerystring,
        response: { 200: AgentSearchPage, ...problemResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { connection, cursor, ...query } = request.query;
      const targets = searchTargets(services, connection, cursor);
      const limit = query.limit ?? SEARCH_DEFAULTS.limit;
      const ids = Object.keys(targets).filter((id) => services.connections.get(id) !== undefined);
      const answers = await Promise.all(ids.map((id) => searchOne(id, { ...query, limit }, targets[id]!)));

      // Interleaved, each source's own order kept: no library buries the others.
      const lists = answers.map((a) => (a.page?.items ?? []).map((asset) => toAgentAsset(services, a.source.connection, asset)));
      const items = [];
      for (let i = 0; lists.some((list) => i < list.length); i++) {
        for (const list of lists) if (i < list.length) items.push(list[i]!);
      }
      const next: CombinedCursor = {};
      for (const answer of answers) if (answer.next) next[answer.source.connection] = answer.next;
      reply.header('cache-control', 'no-store');
      return { items, next: encodeCursor(next), sources: answers.map((a) => a.source) };
    },
  );

  app.get<{ Params: { connection: string; id: string } }>(
    '/assets/:connection/:id',
    {
      schema: {
        tags: ['agent'],
        summary: "An asset of a connection's server (a local copy when the server cannot be reached)",
        params: AssetParams,
        response: { 200: AgentAsset, ...problemResponses(401, 403, 404, 410, 502, 504) },
      },
    },
    async (request, reply) => {
      const { connection, id } = request.params;
      services.connections.require(connection);
      const { asset, local } = await getAsset(services, connection, id);
      reply.header('cache-control', 'no-store');
      if (local) reply.header('imagine-local', 'true');
      return { ...toAgentAsset(services, connection, asset), ...(local ? { local: true } : {}) };
    },
  );

  app.get<{ Querystring: { uri: string } }>(
    '/resolve',
    {
      schema: {
        tags: ['agent'],
        summary: 'The asset an imagine:// URI names, from the connection its authority belongs to',
        querystring: Type.Object({ uri: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
        response: { 200: AgentAsset, ...problemResponses(400, 401, 403, 404, 410, 502, 504) },
      },
    },
    async (request, reply) => {
      const uri = parseUri(request.query.uri);
      if (uri.type !== 'images') {
        throw new ProtocolError('ERR_VALIDATION', `the agent resolves image URIs; ${uri.type} are not resolved yet`);
      }
      const connection = services.connections.byAuthority(uri.authority);
      if (!connection) {
        throw new ProtocolError('ERR_CONNECTION_NOT_FOUND', `no connection for ${uri.authority} (add it with imagine connect ${uri.authority})`);
      }
      const { asset, local } = await getAsset(services, connection.id, uri.id);
      if (uri.version !== undefined && !asset.versions.some((v) => v.id === uri.version)) {
        throw new ProtocolError('ERR_VERSION_NOT_FOUND', `asset "${asset.id}" has no version "${uri.version}"`);
      }
      reply.header('cache-control', 'no-store');
      if (local) reply.header('imagine-local', 'true');
      return { ...toAgentAsset(services, connection.id, asset), ...(local ? { local: true } : {}) };
    },
  );
}
