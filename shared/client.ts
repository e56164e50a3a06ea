/**
 * The typed client of the Imagine protocol (DESIGN.md §3), for any compliant server.
 *
 * Runtime-neutral: `fetch` is injected, nothing from `node:`, so the panel (UXP) and the
 * companion use the same code. Every call resolves the server's discovery document first (the
 * resolver caches it) and talks to `endpoints.api`. Every failure is a `ProtocolError`:
 *
 * - the server answered a problem document → its code (`fromProblem`), e.g.
 *   `ERR_PRECONDITION_FAILED` for a stale `If-Match`, `ERR_ASSET_NOT_FOUND`;
 * - another non-2xx answer → `ERR_UPSTREAM_ERROR` (`extensions.remoteStatus`);
 * - a redirect (never followed), non-JSON or a body that does not match its schema →
 *   `ERR_UPSTREAM_INVALID`;
 * - no connection → `ERR_UPSTREAM_UNREACHABLE`; too slow → `ERR_UPSTREAM_TIMEOUT`;
 * - discovery failures keep their `ERR_DISCOVERY_*` codes.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { createDiscoveryResolver, type DiscoveryResolver } from './discovery.ts';
import { PROBLEM_CONTENT_TYPE, ProtocolError, fromProblem } from './errors.ts';
import {
  Asset,
  CapabilitiesDocument,
  ChangesPage,
  Collection,
  DiscoveryDocument,
  DownloadTicket,
  MetadataProfileDocument,
  ProblemDocument,
  SearchPage,
  Version,
} from './schemas/index.ts';
import { checkSchema, describeIssues } from './validate.ts';

export const CLIENT_DEFAULTS = Object.freeze({
  timeoutMs: 30_000, // whole request: headers and body
});

export interface ProtocolClientOptions {
  /** The server's origin, e.g. `https://images.example`. */
  origin: string;
  fetch: typeof fetch;
  /** Bearer token sent with every request. */
  token?: string;
  /** Default: `createDiscoveryResolver({ fetch })`. Share one to share its cache. */
  resolver?: DiscoveryResolver;
  /** Time allowed for each request, body included. Default 30 000 ms. */
  timeoutMs?: number;
}

import type { SearchQuery } from './schemas/asset.ts';

export type { SearchQuery };

/** A file to upload: sent as the raw request body, streamed when it is a stream. */
export type UploadBody = Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface UploadOptions {
  filename: string;
  contentType: string;
  comment?: string;
  /** Lowercase or uppercase hex SHA-256 of the body, sent as `Content-Digest` (RFC 9530). */
  sha256?: string;
  /** Overrides the client's timeout for this upload (large files need longer); 0 disables it. */
  timeoutMs?: number;
  /**
   * Sent as `Idempotency-Key`: repeating an upload with the same key (after a lost answer)
   * returns the first result instead of adding a second asset or version.
   */
  idempotencyKey?: string;
}

export interface CreateAssetOptions extends UploadOptions {
  /** Collection id to add the new asset to. */
  collection?: string;
}

export interface PushVersionOptions extends Omit<UploadOptions, 'filename'> {
  /** The version the new one was made from; sent as `If-Match`. */
  baseVersion: string;
  filename?: string;
}

export interface DownloadOptions {
  rendition?: 'original' | 'thumbnail';
  /** A version id; default the current version. */
  version?: string;
}

const VersionList = Type.Object({ items: Type.Array(Version) }, { additionalProperties: true });
const CollectionList = Type.Object({ items: Type.Array(Collection) }, { additionalProperties: true });
const AddedItems = Type.Object({ added: Type.Array(Type.String()) }, { additionalProperties: true });

interface RequestOptions<S extends TSchema | undefined> {
  method?: string;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string | undefined>;
  json?: unknown;
  body?: UploadBody;
  /** Schema of a 2xx JSON answer; without one, the body is ignored. */
  schema: S;
  timeoutMs?: number;
}

interface Answer<T> {
  value: T;
  response: Response;
}

/**
 * A client of one Imagine server.
 *
 * @example
 *   const client = new ProtocolClient({ origin: 'https://images.example', fetch, token });
 *   const page = await client.search({ q: 'harbour', limit: 20 });
 *   const { asset, etag } = await client.getAsset(page.items[0].id);
 *   try {
 *     await client.editMetadata(asset.id, { title: 'Harbour at dawn' }, { baseVersion: etag });
 *   } catch (error) {
 *     if (isProtocolError(error, 'ERR_PRECONDITION_FAILED')) {
 *       // someone pushed a newer version: fetch it again and retry
 *     }
 *   }
 */
export class ProtocolClient {
  readonly origin: string;
  readonly #fetch: typeof fetch;
  readonly #token: string | undefined;
  readonly #resolver: DiscoveryResolver;
  readonly #timeoutMs: number;

  constructor(options: ProtocolClientOptions) {
    this.origin = options.origin;
    this.#fetch = options.fetch;
    this.#token = options.token;
    this.#resolver = options.resolver ?? createDiscoveryResolver({ fetch: options.fetch });
    this.#timeoutMs = options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
  }

  /** The server's discovery document (cached by the resolver). */
  discover(): Promise<DiscoveryDocument> {
    return this.#resolver.resolve(this.origin);
  }

  async capabilities(): Promise<CapabilitiesDocument> {
    const doc = await this.discover();
    return (await this.#request(this.#absolute(doc.links.capabilities), { schema: CapabilitiesDocument })).value;
  }

  async metadataProfile(): Promise<MetadataProfileDocument> {
    const doc = await this.discover();
    const url = this.#absolute(doc.links.metadataProfile);
    return (await this.#request(url, { schema: MetadataProfileDocument })).value;
  }

  /** One page of search results; pass `next` back as `cursor` for the following page. */
  async search(query: SearchQuery = {}): Promise<SearchPage> {
    return (await this.#api('/assets', { query: { ...query }, schema: SearchPage })).value;
  }

  /** Every asset matching `query`, fetching pages as the loop asks for them. */
  async *searchAll(query: SearchQuery = {}): AsyncGenerator<Asset, void, undefined> {
    let cursor = query.cursor;
    for (;;) {
      const page = await this.search({ ...query, cursor });
      yield* page.items;
      if (page.next === null) return;
      if (page.next === cursor) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `search answered the same cursor twice: ${cursor}`);
      }
      cursor = page.next;
    }
  }

  /** An asset and its ETag (the current version id, unquoted). */
  async getAsset(id: string): Promise<{ asset: Asset; etag: string }> {
    const { value, response } = await this.#api(`/assets/${segment(id)}`, { schema: Asset });
    const etag = unquoteEtag(response.headers.get('etag')) ?? value.currentVersion;
    return { asset: value, etag };
  }

  /** An asset's versions, oldest first. */
  async listVersions(id: string): Promise<Version[]> {
    return (await this.#api(`/assets/${segment(id)}/versions`, { schema: VersionList })).value.items;
  }

  /** A short-lived signed URL for a rendition of an asset, with its size and sha256. */
  async downloadTicket(id: string, options: DownloadOptions = {}): Promise<DownloadTicket> {
    const query = { rendition: options.rendition, version: options.version };
    return (await this.#api(`/assets/${segment(id)}/download`, { query, schema: DownloadTicket })).value;
  }

  /** Uploads a new asset (its first version). */
  async createAsset(body: UploadBody, options: CreateAssetOptions): Promise<Asset> {
    const headers = {
      ...uploadHeaders(options),
      'Imagine-Collection': options.collection === undefined ? undefined : encodeURIComponent(options.collection),
    };
    const init = { method: 'POST', body, headers, schema: Asset, timeoutMs: options.timeoutMs };
    return (await this.#api('/assets', init)).value;
  }

  /** Uploads a new version made from `baseVersion`; `ERR_PRECONDITION_FAILED` when it is not current. */
  async pushVersion(id: string, body: UploadBody, options: PushVersionOptions): Promise<Asset> {
    const headers = { ...uploadHeaders(options), 'If-Match': quoteEtag(options.baseVersion) };
    const init = { method: 'POST', body, headers, schema: Asset, timeoutMs: options.timeoutMs };
    return (await this.#api(`/assets/${segment(id)}/versions`, init)).value;
  }

  /** Changes metadata fields (a new version whose file carries them); `null` removes a field. */
  async editMetadata(
    id: string,
    metadata: Record<string, unknown>,
    options: { baseVersion: string },
  ): Promise<Asset> {
    const init = {
      method: 'PATCH',
      json: { metadata },
      headers: { 'If-Match': quoteEtag(options.baseVersion) },
      schema: Asset,
    };
    return (await this.#api(`/assets/${segment(id)}/metadata`, init)).value;
  }

  async deleteAsset(id: string): Promise<void> {
    await this.#api(`/assets/${segment(id)}`, { method: 'DELETE', schema: undefined });
  }

  /** The change feed after `since` (the `next` of the previous page; from the start without it). */
  async changes(since?: string, limit?: number): Promise<ChangesPage> {
    return (await this.#api('/changes', { query: { since, limit }, schema: ChangesPage })).value;
  }

  async listCollections(): Promise<Collection[]> {
    return (await this.#api('/collections', { schema: CollectionList })).value.items;
  }

  async createCollection(collection: { name: string; public: boolean }): Promise<Collection> {
    return (await this.#api('/collections', { method: 'POST', json: collection, schema: Collection })).value;
  }

  /** Adds assets to a collection; answers the ids that were added (not already in it). */
  async addToCollection(collectionId: string, assetIds: string[]): Promise<string[]> {
    const path = `/collections/${segment(collectionId)}/items`;
    return (await this.#api(path, { method: 'POST', json: { assets: assetIds }, schema: AddedItems })).value.added;
  }

  // -------------------------------------------------------------------------------------------

  #absolute(url: string): string {
    return new URL(url, this.origin).href;
  }

  async #api<S extends TSchema | undefined>(path: string, options: RequestOptions<S>) {
    const doc = await this.discover();
    const api = this.#absolute(doc.endpoints.api).replace(/\/+$/, '');
    return this.#request(api + path, options);
  }

  async #request<S extends TSchema | undefined>(
    base: string,
    options: RequestOptions<S>,
  ): Promise<Answer<S extends TSchema ? Static<S> : undefined>> {
    const url = withQuery(base, options.query);
    const method = options.method ?? 'GET';
    const what = `${method} ${url}`;
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.#token !== undefined) headers.Authorization = `Bearer ${this.#token}`;
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value !== undefined) headers[name] = value;
    }
    const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: 'manual' };
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      init.body = options.body as BodyInit;
      if (isStream(options.body)) init.duplex = 'half'; // required by fetch for a streamed body
    }

    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const controller = new AbortController();
    init.signal = controller.signal;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Raced against every await, so a fetch that ignores its signal still times out.
    const timeout = new Promise<never>((_, reject) => {
      if (!(timeoutMs > 0)) return;
      timer = setTimeout(() => {
        const error = new ProtocolError('ERR_UPSTREAM_TIMEOUT', `${what} took more than ${timeoutMs} ms`);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    let response: Response | undefined;
    try {
      try {
        response = await Promise.race([this.#fetch(url, init), timeout]);
      } catch (error) {
        throw unreachable(error, what);
      }
      // `redirect: 'manual'` gives the 3xx itself in Node, an opaque redirect (status 0) in browsers.
      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
        const location = response.headers.get('location');
        throw new ProtocolError(
          'ERR_UPSTREAM_INVALID',
          `${what} answered ${response.status}${location ? ` (redirect to ${location}, not followed)` : ''}`,
          { extensions: { remoteStatus: response.status } },
        );
      }
      const ok = response.status >= 200 && response.status < 300;
      if (ok && options.schema === undefined) {
        return { value: undefined as never, response };
      }
      let text: string;
      try {
        text = await Promise.race([response.text(), timeout]);
      } catch (error) {
        throw unreachable(error, what);
      }
      if (!ok) throw errorFromAnswer(response, text, what);

      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `${what} did not answer JSON`, { cause: error });
      }
      const checked = checkSchema(options.schema as TSchema, body);
      if (!checked.ok) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `${what}: ${describeIssues(checked.issues)}`, {
          extensions: { issues: checked.issues },
        });
      }
      return { value: checked.value as never, response };
    } finally {
      clearTimeout(timer);
      // Release the connection when the body was not read.
      if (response?.body && !response.bodyUsed) response.body.cancel().catch(() => {});
    }
  }
}

function unreachable(error: unknown, what: string): ProtocolError {
  if (error instanceof ProtocolError) return error; // our timeout
  return new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${what} failed`, { cause: error });
}

/** A problem document becomes its code; any other non-2xx answer ERR_UPSTREAM_ERROR. */
function errorFromAnswer(response: Response, text: string, what: string): ProtocolError {
  const type = response.headers.get('content-type') ?? '';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const isProblem =
    typeof body === 'object' && body !== null &&
    (type.startsWith(PROBLEM_CONTENT_TYPE) || checkSchema(ProblemDocument, body).ok);
  if (isProblem) return fromProblem(body, response.status);
  return new ProtocolError('ERR_UPSTREAM_ERROR', `${what} answered ${response.status}`, {
    status: response.status,
    extensions: { remoteStatus: response.status },
  });
}

function withQuery(base: string, query: RequestOptions<undefined>['query']): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== '') params.set(name, String(value));
  }
  const search = params.toString();
  return search ? `${base}?${search}` : base;
}

function segment(id: string): string {
  return encodeURIComponent(id);
}

function uploadHeaders(options: UploadOptions | PushVersionOptions): Record<string, string | undefined> {
  return {
    'Content-Type': options.contentType,
    'Imagine-Filename': options.filename === undefined ? undefined : encodeURIComponent(options.filename),
    'Imagine-Comment': options.comment === undefined ? undefined : encodeURIComponent(options.comment),
    'Content-Digest': options.sha256 === undefined ? undefined : contentDigest(options.sha256),
    'Idempotency-Key': options.idempotencyKey,
  };
}

function isStream(body: UploadBody): body is ReadableStream<Uint8Array> {
  return typeof (body as ReadableStream).getReader === 'function';
}

function quoteEtag(version: string): string {
  return `"${version}"`;
}

/** `"v1"` or `W/"v1"` → `v1`. */
export function unquoteEtag(header: string | null): string | undefined {
  if (!header) return undefined;
  const match = /^(?:W\/)?"([^"]*)"$/.exec(header.trim());
  return match ? match[1] : header.trim();
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The RFC 9530 `Content-Digest` value of a hex SHA-256.
 *
 * @example
 *   contentDigest('e3b0c442...b855'); // 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:'
 */
export function contentDigest(sha256Hex: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(sha256Hex)) {
    throw new ProtocolError('ERR_VALIDATION', 'sha256 must be 64 hexadecimal digits');
  }
  const bytes = sha256Hex.match(/../g)!.map((pair) => parseInt(pair, 16));
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const [a = 0, b = 0, c = 0] = bytes.slice(i, i + 3);
    const n = (a << 16) | (b << 8) | c;
    const left = bytes.length - i;
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]!;
    out += left > 1 ? BASE64[(n >> 6) & 63]! : '=';
    out += left > 2 ? BASE64[n & 63]! : '=';
  }
  return `sha-256=:${out}:`;
}
