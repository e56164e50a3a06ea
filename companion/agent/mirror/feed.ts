/**
 * Reading a server's change feed (`GET {api}/changes?since=`) for the mirror: what a page means
 * (which assets to fetch again, which are gone) and whether it can be trusted. Pure functions;
 * the sync engine does the I/O.
 *
 * The feed is thin (URIs), so order inside a page does not matter: every asset a page names is
 * fetched again, once. What the checks below catch is a feed that cannot be right:
 * - `seq` must increase strictly within a page and start after the last one applied (a server
 *   restored from a backup hands out numbers it had already used: `FeedRewound`);
 * - subjects must be `imagine://` URIs of images or collections;
 * - a page that says there is more must move the cursor.
 */
import { ProtocolError } from '../../../shared/errors.ts';
import type { ChangeEvent, ChangesPage } from '../../../shared/schemas/changes.ts';
import { parseUri } from '../../../shared/uri.ts';

/** The feed went backwards: the server forgot events the mirror had applied. */
export class FeedRewound extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeedRewound';
  }
}

export interface PageEffects {
  /** Assets to fetch again (created, updated, rights changed, moved in or out of a collection). */
  refetch: string[];
  /** Assets deleted on the server. */
  deleted: string[];
  /** The last event of the page, if any. */
  last: ChangeEvent | undefined;
  /** Whether `next` is the `seq` of the page's last event (the reference server's cursors). */
  seqCursor: boolean;
}

/** The asset id an `imagine://` image URI names; ERR_UPSTREAM_INVALID otherwise. */
export function assetIdOf(uri: string, what: string): string {
  let parsed;
  try {
    parsed = parseUri(uri);
  } catch (cause) {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `change feed: ${what} is not an imagine:// URI: ${JSON.stringify(uri.slice(0, 200))}`, { cause });
  }
  if (parsed.type !== 'images') {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `change feed: ${what} is not an image URI: ${JSON.stringify(uri.slice(0, 200))}`);
  }
  return parsed.id;
}

/**
 * Checks a page against what was applied before it (`lastSeq`, `since`) and says what it asks
 * of the mirror. Throws ERR_UPSTREAM_INVALID for nonsense, `FeedRewound` for a rewound feed.
 */
export function readChangesPage(page: ChangesPage, lastSeq: number, since: string | undefined): PageEffects {
  if (page.next === '') throw new ProtocolError('ERR_UPSTREAM_INVALID', 'change feed: empty `next` cursor');
  if (page.hasMore && page.events.length === 0 && page.next === since) {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', 'change feed: says there is more but does not move its cursor');
  }
  const refetch = new Set<string>();
  const deleted = new Set<string>();
  let previous = lastSeq;
  for (const event of page.events) {
    if (event.seq <= previous) {
      if (previous === lastSeq && event === page.events[0]) {
        throw new FeedRewound(`change feed: event ${event.seq} after ${lastSeq} had been applied`);
      }
      throw new ProtocolError('ERR_UPSTREAM_INVALID', `change feed: seq ${event.seq} after ${previous} (must increase)`);
    }
    previous = event.seq;
    switch (event.type) {
      case 'asset.deleted': {
        const id = assetIdOf(event.subject, `subject of ${event.id}`);
        deleted.add(id);
        refetch.delete(id);
        break;
      }
      case 'asset.created':
      case 'asset.updated':
      case 'rights.changed': {
        const id = assetIdOf(event.subject, `subject of ${event.id}`);
        if (!deleted.has(id)) refetch.add(id);
        break;
      }
      case 'collection.items_added':
      case 'collection.items_removed': {
        parseCollection(event.subject, event.id);
        for (const item of event.items ?? []) {
          const id = assetIdOf(item, `item of ${event.id}`);
          if (!deleted.has(id)) refetch.add(id);
        }
        break;
      }
      default:
        // Additive: an event type this agent does not know changes nothing it mirrors.
        break;
    }
  }
  const last = page.events[page.events.length - 1];
  return { refetch: [...refetch], deleted: [...deleted], last, seqCursor: last !== undefined && page.next === String(last.seq) };
}

function parseCollection(uri: string, eventId: string): void {
  let type: string;
  try {
    type = parseUri(uri).type;
  } catch (cause) {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `change feed: subject of ${eventId} is not an imagine:// URI`, { cause });
  }
  if (type !== 'collections') {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `change feed: subject of ${eventId} is not a collection URI`);
  }
}

/**
 * Whether a failed `changes(since)` means the server does not know the cursor (it was pruned,
 * or the server is another one now): the answer is a full sync, not an error state.
 */
export function isUnknownCursor(error: unknown): boolean {
  if (!(error instanceof ProtocolError)) return false;
  switch (error.code) {
    case 'ERR_VALIDATION':
    case 'ERR_BAD_REQUEST':
      return true;
    case 'ERR_UPSTREAM_ERROR': {
      const status = error.extensions.remoteStatus ?? error.status;
      return status === 400 || status === 404 || status === 410;
    }
    default:
      return false;
  }
}
