/**
 * The agent's combined search cursor: one opaque string carrying each source's own cursor, so
 * the panel pages through every connection at once.
 *
 *   cursor = base64url(JSON { "v": 1, "s": { <connection id>: { "c"?: <source cursor>, "l"?: "mirror" | "seen" } } })
 *
 * A source absent from `s` is exhausted (not asked again); `c` absent means its first page;
 * `l` says the source is being paged from a local copy (the mirror or the seen-asset cache),
 * whose cursors mean nothing to the server.
 */
import { ProtocolError } from '../../shared/errors.ts';

export interface SourceCursor {
  c?: string;
  l?: 'mirror' | 'seen';
}

export type CombinedCursor = Record<string, SourceCursor>;

export const MAX_CURSOR_LENGTH = 8000;

export function encodeCursor(sources: CombinedCursor): string | null {
  if (Object.keys(sources).length === 0) return null;
  const text = Buffer.from(JSON.stringify({ v: 1, s: sources }), 'utf8').toString('base64url');
  if (text.length > MAX_CURSOR_LENGTH) {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the servers answered cursors too long to combine');
  }
  return text;
}

/** Reads a combined cursor; ERR_VALIDATION for anything this agent did not make. */
export function decodeCursor(text: string): CombinedCursor {
  const invalid = () => new ProtocolError('ERR_VALIDATION', 'cursor is not valid (pass back the `next` of the previous page)');
  if (text.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const root = doc as { v?: unknown; s?: unknown } | null;
  if (!root || root.v !== 1 || typeof root.s !== 'object' || root.s === null || Array.isArray(root.s)) throw invalid();
  const out: CombinedCursor = Object.create(null) as CombinedCursor;
  for (const [id, value] of Object.entries(root.s as Record<string, unknown>)) {
    const source = value as SourceCursor | null;
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(id) || typeof source !== 'object' || source === null || Array.isArray(source)) throw invalid();
    if (source.c !== undefined && (typeof source.c !== 'string' || source.c.length > 1000)) throw invalid();
    if (source.l !== undefined && source.l !== 'mirror' && source.l !== 'seen') throw invalid();
    const keys = Object.keys(source);
    if (keys.some((k) => k !== 'c' && k !== 'l')) throw invalid();
    out[id] = { ...(source.c !== undefined ? { c: source.c } : {}), ...(source.l !== undefined ? { l: source.l } : {}) };
  }
  return out;
}

/**
 * The sources a search asks, each with where it resumes: those of `cursor` (only `connection`'s
 * when both are given), else `connection` from the start, else every connection.
 * ERR_CONNECTION_NOT_FOUND for an unknown `connection` without a cursor.
 */
export function searchTargets(
  services: { connections: { require(id: string): unknown; list(): Array<{ id: string }> } },
  connection: string | undefined,
  cursor: string | undefined,
): CombinedCursor {
  if (cursor !== undefined) {
    const targets = decodeCursor(cursor);
    if (connection === undefined) return targets;
    return connection in targets ? { [connection]: targets[connection]! } : {};
  }
  if (connection !== undefined) {
    services.connections.require(connection);
    return { [connection]: {} };
  }
  return Object.fromEntries(services.connections.list().map((c) => [c.id, {}]));
}
