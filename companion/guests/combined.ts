/**
 * The guest's combined view: this server's assets the guest may read, plus a federated search
 * of every peer this server asked to trust it, signed with `sub` = the guest's e-mail identity
 * (a peer answers only because it trusts this server, and only with what it shares with that
 * address, or shows everyone). Each item is marked with its server; thumbnails of every item go
 * through this server (`/guest/api/thumbnail?uri=`), because the guest's browser cannot sign.
 */
import { ProtocolError, fromProblem } from '../../shared/errors.ts';
import { parseUri } from '../../shared/uri.ts';
import type { Asset, Rights } from '../../shared/schemas/asset.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { uriAuthorityFromOrigin } from '../../shared/uri.ts';
import { decodeFederatedCursor, federatedSearch, type FederatedSource } from '../federation/federated-search.ts';
import type { FederationServices } from '../federation/services.ts';
import type { Library } from '../library/library.ts';
import type { AssetRecord } from '../library/records.ts';
import { parseSearchQuery } from '../library/search-index.ts';
import { GUEST_PREFIX } from './invite.ts';

export interface GuestItem {
  uri: string;
  /** The server the asset lives on (`host[:port]`, its imagine:// authority). */
  server: string;
  /** Whether it lives on this server. */
  local: boolean;
  filename: string;
  mediaType: string;
  width?: number;
  height?: number;
  metadata: AssetMetadata;
  rights: Rights;
  /** Same-origin URL of its thumbnail, relayed by this server; null when it has none. */
  thumbnail: string | null;
}

export interface GuestPage {
  items: GuestItem[];
  next: string | null;
  sources: FederatedSource[];
}

export type Located =
  | { local: true; authority: string; id: string; version?: string }
  | { local: false; authority: string; origin: string; api: string; id: string; version?: string };

/**
 * Where an `imagine://` image URI lives: this server, or a peer this server asked to trust it.
 * @throws ERR_URI_INVALID, ERR_PEER_UNKNOWN (another server that is not such a peer)
 */
export async function locate(uri: string, origin: string, federation: FederationServices | undefined): Promise<Located> {
  const parsed = parseUri(uri);
  if (parsed.type !== 'images') throw new ProtocolError('ERR_URI_INVALID', `${uri} is not an image`);
  const own = uriAuthorityFromOrigin(origin);
  const base = { authority: parsed.authority, id: parsed.id, ...(parsed.version ? { version: parsed.version } : {}) };
  if (parsed.authority === own) return { local: true, ...base };
  if (!federation) throw new ProtocolError('ERR_PEER_UNKNOWN', `${parsed.authority} is not a peer of this server`);
  const peerOrigin = federation.resolver.originOf(parsed.authority);
  const peer = await federation.peers.find('outgoing', peerOrigin);
  if (!peer || (peer.state !== 'requested' && peer.state !== 'accepted')) {
    throw new ProtocolError('ERR_PEER_UNKNOWN', `${parsed.authority} is not a peer of this server`);
  }
  const discovery = await federation.resolver.resolve(peerOrigin);
  const api = new URL(discovery.endpoints.api, peerOrigin).href.replace(/\/+$/, '');
  if (new URL(api).origin !== peerOrigin) throw new ProtocolError('ERR_UPSTREAM_INVALID', `${peerOrigin} names an API on another origin`);
  return { local: false, ...base, origin: peerOrigin, api };
}

/** Items per source and page. */
export const DEFAULT_LIMIT = 50;

export interface GuestSearchOptions {
  library: Library;
  federation: FederationServices | undefined;
  /** This server's origin (issuer of the signed requests). */
  origin: string;
  /** The guest's identity (`sub` of the signed requests). */
  identity: string;
  canRead: (asset: AssetRecord) => boolean;
  /** Presents a local asset for the guest (privacy-filtered). */
  present: (asset: AssetRecord) => Asset;
  query: { q?: string; limit?: string; cursor?: string };
  maxPageSize: number;
  deadlineMs: number;
}

export async function guestSearch(options: GuestSearchOptions): Promise<GuestPage> {
  const { library } = options;
  const position = decodeFederatedCursor(options.query.cursor);
  // Always a limit: a peer URL with an empty query string ends in `?`, which fetch drops, and the
  // signature binds the exact URL.
  const query: Record<string, string> = { limit: options.query.limit ?? String(DEFAULT_LIMIT) };
  if (options.query.q) query.q = options.query.q;
  let local: { items: Asset[]; next: string | null } | null = null;
  if (position.local !== null) {
    const result = library.search(
      parseSearchQuery({ ...query, ...(position.local ? { cursor: position.local } : {}) }),
      options.canRead,
      options.maxPageSize,
    );
    local = { items: result.ids.map((id) => options.present(library.getAsset(id))), next: result.next };
  }
  const page = options.federation
    ? await federatedSearch({
        federation: options.federation,
        issuer: options.origin,
        query,
        cursor: position,
        local,
        subject: options.identity,
        deadlineMs: options.deadlineMs,
      })
    : { items: local?.items ?? [], next: null, sources: [{ origin: 'local', state: 'ok' as const, count: local?.items.length ?? 0, ms: 0 }] };
  const own = uriAuthorityFromOrigin(options.origin);
  return {
    items: page.items.map((asset) => guestItem(asset, own)),
    next: page.next,
    sources: page.sources,
  };
}

function guestItem(asset: Asset, own: string): GuestItem {
  const server = parseUri(asset.uri).authority;
  return {
    uri: asset.uri,
    server,
    local: server === own,
    filename: asset.filename,
    mediaType: asset.mediaType,
    ...(asset.width ? { width: asset.width } : {}),
    ...(asset.height ? { height: asset.height } : {}),
    metadata: asset.metadata,
    rights: asset.rights,
    thumbnail: asset.thumbnail ? `${GUEST_PREFIX}/api/thumbnail?uri=${encodeURIComponent(asset.uri)}` : null,
  };
}

/** Largest thumbnail relayed from a peer, bytes. */
export const MAX_RELAYED_THUMBNAIL = 8 * 1024 * 1024;

/** A peer's thumbnail of an asset, fetched signed for the guest. */
export async function fetchRemoteThumbnail(
  federation: FederationServices,
  located: Extract<Located, { local: false }>,
  issuer: string,
  identity: string,
): Promise<Buffer> {
  const url = `${located.api}/assets/${encodeURIComponent(located.id)}/thumbnail${located.version ? `?v=${encodeURIComponent(located.version)}` : ''}`;
  const response = await federation.signedFetch(issuer, url, { subject: identity, timeoutMs: 10_000 }).catch((error: unknown) => {
    throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${located.authority} could not be reached`, { cause: error });
  });
  if (!response.ok) throw fromProblem(await response.json().catch(() => undefined), response.status);
  if (!/^image\//.test(response.headers.get('content-type') ?? '')) {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `${located.authority} answered a thumbnail with something else`);
  }
  return readCapped(response, MAX_RELAYED_THUMBNAIL);
}

async function readCapped(response: Response, max: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the thumbnail is too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of (response.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the thumbnail is too large');
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
