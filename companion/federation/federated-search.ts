/**
 * Federated search (`GET {api}/assets?scope=federated&...`): the local page plus the same query
 * sent, signed, to every peer this server asked to trust it, in parallel, each within a
 * deadline. Results are merged rank by rank (the first of every source, then the second...), so
 * no source's order is broken; each keeps its own `uri` (`imagine://its-authority/...`).
 * A peer that fails or misses the deadline is reported in `sources`, never fails the search.
 *
 * Paging: `next` is one opaque cursor holding every source's own cursor (`f1.` + base64url
 * JSON); a source whose cursor is null is exhausted and not asked again. A page holds up to
 * `limit` results from each source.
 */
import { ProtocolError, fromProblem, isProtocolError } from '../../shared/errors.ts';
import { SearchPage, type Asset } from '../../shared/schemas/asset.ts';
import { checkSchema } from '../../shared/validate.ts';
import type { FederationServices } from './services.ts';

export const FEDERATED_CURSOR_PREFIX = 'f1.';

export type SourceState = 'ok' | 'slow' | 'failed';

export interface FederatedSource {
  /** `local` for this server, else the peer's origin. */
  origin: string;
  state: SourceState;
  count: number;
  ms: number;
  error?: { code: string; message: string };
}

export interface FederatedCursor {
  /** This server's cursor; null when exhausted; undefined at the start. */
  local?: string | null;
  peers?: Record<string, string | null>;
}

export function encodeFederatedCursor(cursor: Required<FederatedCursor>): string | null {
  const open = cursor.local !== null || Object.values(cursor.peers).some((c) => c !== null);
  return open ? FEDERATED_CURSOR_PREFIX + Buffer.from(JSON.stringify(cursor)).toString('base64url') : null;
}

export function decodeFederatedCursor(cursor: string | undefined): FederatedCursor {
  if (cursor === undefined) return {};
  if (!cursor.startsWith(FEDERATED_CURSOR_PREFIX)) {
    throw new ProtocolError('ERR_VALIDATION', 'cursor is not a federated search cursor');
  }
  try {
    const parsed = JSON.parse(Buffer.from(cursor.slice(FEDERATED_CURSOR_PREFIX.length), 'base64url').toString('utf8'));
    const valid =
      parsed &&
      typeof parsed === 'object' &&
      (parsed.local === null || typeof parsed.local === 'string') &&
      parsed.peers &&
      typeof parsed.peers === 'object' &&
      Object.values(parsed.peers).every((c) => c === null || typeof c === 'string');
    if (!valid) throw new Error('bad shape');
    return parsed as FederatedCursor;
  } catch (error) {
    throw new ProtocolError('ERR_VALIDATION', 'cursor is not a valid federated search cursor', { cause: error });
  }
}

export interface FederatedSearchOptions {
  federation: FederationServices;
  /** This server's origin: the issuer of the signed requests. */
  issuer: string;
  /** The search query as received, without `scope` and `cursor`. */
  query: Record<string, string>;
  cursor: FederatedCursor;
  /** The local page for `cursor.local` (null when the local source is exhausted). */
  local: { items: Asset[]; next: string | null } | null;
  /** The acting user, `name@domain`, when one is signed in. */
  subject?: string;
  /** Deadline for each peer, milliseconds. */
  deadlineMs: number;
}

export interface FederatedPage {
  items: Asset[];
  next: string | null;
  sources: FederatedSource[];
}

export async function federatedSearch(options: FederatedSearchOptions): Promise<FederatedPage> {
  const { federation, cursor } = options;
  const peers = (await federation.peers.list()).filter(
    (p) => p.direction === 'outgoing' && (p.state === 'requested' || p.state === 'accepted'),
  );
  const asked = peers.filter((p) => cursor.peers === undefined || (p.origin in cursor.peers ? cursor.peers[p.origin] !== null : true));
  const results = await Promise.all(asked.map((peer) => searchPeer(options, peer.origin, cursor.peers?.[peer.origin] ?? undefined)));

  const lists: Asset[][] = [];
  const sources: FederatedSource[] = [];
  const nextPeers: Record<string, string | null> = {};
  if (options.local) {
    lists.push(options.local.items);
    sources.push({ origin: 'local', state: 'ok', count: options.local.items.length, ms: 0 });
  }
  for (const peer of peers) {
    // Exhausted or not asked this time: keep its cursor as it was (null stays null).
    if (cursor.peers && peer.origin in cursor.peers && cursor.peers[peer.origin] === null) nextPeers[peer.origin] = null;
  }
  for (const result of results) {
    sources.push(result.source);
    const origin = result.source.origin;
    if (result.page) {
      lists.push(result.page.items);
      nextPeers[origin] = result.page.next;
    } else if (cursor.peers?.[origin]) {
      // Failed or slow: asked again from the same place on the next page.
      nextPeers[origin] = cursor.peers[origin];
    }
    // (Failed on its first page: left out, so the next page asks it from the start.)
  }
  return {
    items: interleave(lists),
    next: encodeFederatedCursor({ local: options.local ? options.local.next : null, peers: nextPeers }),
    sources,
  };
}

function interleave(lists: Asset[][]): Asset[] {
  const out: Asset[] = [];
  const seen = new Set<string>();
  for (let rank = 0; lists.some((l) => rank < l.length); rank++) {
    for (const list of lists) {
      const item = list[rank];
      if (item && !seen.has(item.uri)) {
        seen.add(item.uri);
        out.push(item);
      }
    }
  }
  return out;
}

async function searchPeer(
  options: FederatedSearchOptions,
  origin: string,
  peerCursor: string | undefined,
): Promise<{ source: FederatedSource; page?: { items: Asset[]; next: string | null } }> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'slow'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve('slow');
    }, options.deadlineMs);
  });
  const work = (async () => {
    const discovery = await options.federation.resolver.resolve(origin);
    const params = new URLSearchParams(options.query);
    if (peerCursor) params.set('cursor', peerCursor);
    // No bare "?": fetch drops it, and the signature is bound to the exact URL.
    const search = params.toString();
    const url = `${discovery.endpoints.api.replace(/\/+$/, '')}/assets${search ? `?${search}` : ''}`;
    const response = await options.federation.signedFetch(options.issuer, url, {
      subject: options.subject,
      timeoutMs: options.deadlineMs,
    });
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) throw fromProblem(body, response.status);
    const checked = checkSchema(SearchPage, body, 3);
    if (!checked.ok) throw new ProtocolError('ERR_UPSTREAM_INVALID', `${origin} answered a search with something else`);
    // A peer only speaks for itself: results claiming another authority are dropped.
    const authority = origin.slice(origin.indexOf('://') + 3);
    const items = checked.value.items.filter((a) => a.uri.startsWith(`imagine://${authority}/`));
    return { items, next: checked.value.next };
  })();
  try {
    const outcome = await Promise.race([work, deadline]);
    if (outcome === 'slow') {
      work.catch(() => {});
      return { source: { origin, state: 'slow', count: 0, ms: ms(), error: { code: 'ERR_UPSTREAM_TIMEOUT', message: `no answer within ${options.deadlineMs} ms` } } };
    }
    return { source: { origin, state: 'ok', count: outcome.items.length, ms: ms() }, page: outcome };
  } catch (error) {
    const code = isProtocolError(error) ? error.code : 'ERR_UPSTREAM_UNREACHABLE';
    const message = error instanceof Error ? error.message : String(error);
    return { source: { origin, state: 'failed', count: 0, ms: ms(), error: { code, message: message.slice(0, 300) } } };
  } finally {
    clearTimeout(timer);
  }
}
