/**
 * Idempotent uploads: a client that sends `Idempotency-Key` with `POST {api}/assets`,
 * `POST {api}/assets/{id}/versions` (or `idempotencyKey` in a tus upload's metadata) gets, when
 * it repeats the key, the result of the first request instead of a second asset or version.
 *
 * Keys are scoped to the user who sent them and to what the request makes (`asset` or
 * `version:<asset id>`); the same key for another scope is refused (ERR_CONFLICT). They are
 * recorded in the catalog in the same mutation as the asset or version they made, so a key is
 * known exactly when its result is, and forgotten after IDEMPOTENCY_TTL_MS.
 */
import { ProtocolError } from '../../shared/errors.ts';
import type { CatalogData, IdempotencyRecord } from './records.ts';

/** How long a key is remembered (24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const KEY_PATTERN = /^[A-Za-z0-9._:~-]{1,200}$/;

/** What a key is for: `asset` (a new asset) or `version:<asset id>`. */
export type IdempotencyScope = 'asset' | `version:${string}`;

/** The key of a header or upload metadata value; undefined when absent. Throws ERR_BAD_REQUEST. */
export function parseIdempotencyKey(value: string | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  const key = value.trim().replace(/^"(.*)"$/, '$1');
  if (key === '') return undefined;
  if (!KEY_PATTERN.test(key)) {
    throw new ProtocolError('ERR_BAD_REQUEST', 'Idempotency-Key must be 1-200 characters of A-Z, a-z, 0-9, ".", "_", ":", "~", "-"');
  }
  return key;
}

/** The first result of `key`, if it is remembered and not expired; ERR_CONFLICT for another scope. */
export function findIdempotent(
  data: Readonly<CatalogData>,
  user: string | undefined,
  key: string,
  scope: IdempotencyScope,
  now = Date.now(),
): IdempotencyRecord | undefined {
  const record = (data.idempotency ?? []).find((r) => r.key === key && r.user === (user ?? ''));
  if (!record || Date.parse(record.expires) <= now) return undefined;
  if (record.scope !== scope) {
    throw new ProtocolError('ERR_CONFLICT', 'this Idempotency-Key was already used for another request');
  }
  return record;
}

/** Records a key's result (inside a catalog mutation) and forgets expired keys. */
export function rememberIdempotent(
  data: CatalogData,
  entry: { user: string | undefined; key: string; scope: IdempotencyScope; assetId: string; version: string },
  now = Date.now(),
): void {
  const kept = (data.idempotency ?? []).filter((r) => Date.parse(r.expires) > now);
  kept.push({
    key: entry.key,
    user: entry.user ?? '',
    scope: entry.scope,
    assetId: entry.assetId,
    version: entry.version,
    created: new Date(now).toISOString(),
    expires: new Date(now + IDEMPOTENCY_TTL_MS).toISOString(),
  });
  data.idempotency = kept;
}
