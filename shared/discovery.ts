/**
 * Discovery: fetching, checking and caching the document a server publishes under
 * `/.well-known/imagine`, and resolving `imagine://` URIs through it.
 *
 * The fetch never follows redirects, has a timeout (headers and body alike) and a size cap, and
 * rejects a document whose `server.origin` is not the origin it was fetched from (the RFC 9728
 * §3.3 pattern). The cache follows atproto's identity resolver: stale after 1 h (served at once
 * and refreshed in the background), expired after 24 h (fetched again), requests in flight
 * shared. `fetch` and the clock are injected, so this runs in the companion and in the panel.
 */
import { ProtocolError } from './errors.ts';
import { isLoopbackHost, parseOrigin } from './origin.ts';
import { DiscoveryDocument } from './schemas/discovery.ts';
import { parseUri, type ImagineUri } from './uri.ts';
import { checkSchema, describeIssues } from './validate.ts';

export const WELL_KNOWN_PATH = '/.well-known/imagine';

export const DISCOVERY_DEFAULTS = Object.freeze({
  timeoutMs: 5_000, // whole request: headers and body
  maxBytes: 256 * 1024, // body size cap
  staleAfterMs: 60 * 60 * 1000, // 1 h: served, refreshed in the background
  expireAfterMs: 24 * 60 * 60 * 1000, // 24 h: fetched again before use
});

export interface FetchDiscoveryOptions {
  fetch: typeof fetch;
  /** Time allowed for the whole request, body included. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest accepted body. Default 256 KiB. */
  maxBytes?: number;
  /** Accept plain `http://` for any host (loopback is always accepted). */
  allowInsecure?: boolean;
}

/**
 * Fetches and checks the discovery document of `origin`. Every failure is a `ProtocolError`
 * (`ERR_DISCOVERY_*`, or `ERR_ORIGIN_INVALID` for a bad origin) with the underlying error as
 * `cause`.
 *
 * @example
 *   const doc = await fetchDiscovery('https://images.example', { fetch });
 *   doc.endpoints.api; // 'https://images.example/api/v0'
 */
export async function fetchDiscovery(
  origin: string,
  options: FetchDiscoveryOptions,
): Promise<DiscoveryDocument> {
  const base = parseOrigin(origin, { allowInsecure: options.allowInsecure });
  const url = base + WELL_KNOWN_PATH;
  const timeoutMs = options.timeoutMs ?? DISCOVERY_DEFAULTS.timeoutMs;
  const maxBytes = options.maxBytes ?? DISCOVERY_DEFAULTS.maxBytes;

  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Raced against every await, so a fetch that ignores its signal still times out.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ProtocolError('ERR_DISCOVERY_TIMEOUT', `${url} took more than ${timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  let response: Response | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let failed = true;
  try {
    try {
      response = await Promise.race([
        options.fetch(url, {
          method: 'GET',
          redirect: 'manual',
          headers: { Accept: 'application/json' },
          signal: controller.signal,
        }),
        timeout,
      ]);
    } catch (error) {
      throw networkError(error, url);
    }

    // `redirect: 'manual'` gives the 3xx itself in Node, an opaque redirect (status 0) in browsers.
    if (response.status !== 200 || response.type === 'opaqueredirect') {
      const location = response.headers.get('location');
      throw new ProtocolError(
        'ERR_DISCOVERY_STATUS',
        `${url} answered ${response.status}${location ? ` (redirect to ${location}, not followed)` : ''}`,
        { extensions: { remoteStatus: response.status } },
      );
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > maxBytes) throw tooLarge(url, maxBytes);

    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body) {
      reader = response.body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await Promise.race([reader.read(), timeout]);
        } catch (error) {
          throw networkError(error, url);
        }
        if (chunk.done) break;
        size += chunk.value.byteLength;
        if (size > maxBytes) throw tooLarge(url, maxBytes);
        chunks.push(chunk.value);
      }
    }

    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(concat(chunks, size)));
    } catch (error) {
      throw new ProtocolError('ERR_DISCOVERY_NOT_JSON', `${url} is not JSON`, { cause: error });
    }
    const checked = checkSchema(DiscoveryDocument, body);
    if (!checked.ok) {
      throw new ProtocolError('ERR_DISCOVERY_INVALID', `${url}: ${describeIssues(checked.issues)}`, {
        extensions: { issues: checked.issues },
      });
    }

    let claimed: string;
    try {
      claimed = parseOrigin(checked.value.server.origin, { allowInsecure: true });
    } catch (error) {
      throw new ProtocolError('ERR_DISCOVERY_INVALID', `${url}: /server/origin is not an origin`, {
        cause: error,
      });
    }
    if (claimed !== base) {
      throw new ProtocolError(
        'ERR_DISCOVERY_ORIGIN_MISMATCH',
        `${url} claims to be ${claimed}, not ${base}`,
      );
    }
    failed = false;
    return checked.value;
  } finally {
    clearTimeout(timer);
    if (failed) controller.abort();
    // Release the connection on every path; cancelling a finished stream is a no-op.
    if (reader) reader.cancel().catch(() => {});
    else if (response?.body && !response.bodyUsed) response.body.cancel().catch(() => {});
  }
}

function networkError(error: unknown, url: string): ProtocolError {
  if (error instanceof ProtocolError) return error; // our timeout
  return new ProtocolError('ERR_DISCOVERY_UNREACHABLE', `${url} could not be fetched`, {
    cause: error,
  });
}

function tooLarge(url: string, maxBytes: number): ProtocolError {
  return new ProtocolError('ERR_DISCOVERY_TOO_LARGE', `${url} is larger than ${maxBytes} bytes`);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cache

export interface DiscoveryCacheEntry {
  document: DiscoveryDocument;
  /** `now()` when it was fetched. */
  fetchedAt: number;
}

/**
 * Where cached documents live, keyed by normalised origin. Synchronous on purpose, so `peek`
 * needs no network or disk: a persistent store keeps its entries in memory and writes behind.
 */
export interface DiscoveryStore {
  get(origin: string): DiscoveryCacheEntry | undefined;
  set(origin: string, entry: DiscoveryCacheEntry): void;
  delete(origin: string): void;
}

export interface DiscoveryResolverOptions {
  fetch: typeof fetch;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Default 1 h. */
  staleAfterMs?: number;
  /** Default 24 h. */
  expireAfterMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  /** Accept plain `http://` for any host. For development only. */
  allowInsecure?: boolean;
  /**
   * Authorities (`host[:port]`) of development peers contacted over plain `http://`.
   * Loopback (localhost, 127.x, [::1]) always is.
   */
  insecureAuthorities?: string[];
  /** Default: an in-memory `Map`. */
  store?: DiscoveryStore;
}

export interface DiscoveryPeek extends DiscoveryCacheEntry {
  state: 'fresh' | 'stale' | 'expired';
  /** The error of the last failed background refresh, until a fetch succeeds. */
  refreshError?: unknown;
}

export interface DiscoveryResolver {
  /** The discovery document of `origin`, from the cache when fresh enough. */
  resolve(origin: string): Promise<DiscoveryDocument>;
  /** Forgets `origin`: the next `resolve` fetches. */
  invalidate(origin: string): void;
  /** What the cache holds for `origin`, without fetching. */
  peek(origin: string): DiscoveryPeek | undefined;
  /** The origin an `imagine://` authority is reached at: `https://`, `http://` for loopback or a listed peer. */
  originOf(authority: string): string;
}

/**
 * A caching discovery resolver.
 *
 * @example
 *   const discovery = new DiscoveryCache({ fetch });
 *   const doc = await discovery.resolve('https://images.example');
 */
export class DiscoveryCache implements DiscoveryResolver {
  readonly #options: DiscoveryResolverOptions;
  readonly #now: () => number;
  readonly #staleAfterMs: number;
  readonly #expireAfterMs: number;
  readonly #store: DiscoveryStore;
  readonly #insecure: Set<string>;
  readonly #inFlight = new Map<string, { promise: Promise<DiscoveryDocument> }>();
  readonly #refreshErrors = new Map<string, unknown>();

  constructor(options: DiscoveryResolverOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#staleAfterMs = options.staleAfterMs ?? DISCOVERY_DEFAULTS.staleAfterMs;
    this.#expireAfterMs = options.expireAfterMs ?? DISCOVERY_DEFAULTS.expireAfterMs;
    this.#store = options.store ?? new Map<string, DiscoveryCacheEntry>();
    const listed = options.insecureAuthorities ?? [];
    this.#insecure = new Set(listed.map((a) => authorityOf(parseOrigin(`http://${a}`, { allowInsecure: true }))));
  }

  async resolve(input: string): Promise<DiscoveryDocument> {
    const origin = this.#normalise(input);
    const entry = this.#store.get(origin);
    const state = entry && this.#stateOf(entry);
    if (entry && state === 'fresh') return entry.document;
    if (entry && state === 'stale') {
      this.#fetch(origin).catch((error: unknown) => this.#refreshErrors.set(origin, error));
      return entry.document;
    }
    return this.#fetch(origin);
  }

  invalidate(input: string): void {
    const origin = this.#normalise(input);
    this.#store.delete(origin);
    this.#inFlight.delete(origin); // a fetch already running no longer writes the cache
    this.#refreshErrors.delete(origin);
  }

  peek(input: string): DiscoveryPeek | undefined {
    const origin = this.#normalise(input);
    const entry = this.#store.get(origin);
    if (!entry) return undefined;
    const peek: DiscoveryPeek = { ...entry, state: this.#stateOf(entry) };
    if (this.#refreshErrors.has(origin)) peek.refreshError = this.#refreshErrors.get(origin);
    return peek;
  }

  originOf(authority: string): string {
    const insecure = parseOrigin(`http://${authority}`, { allowInsecure: true });
    if (isLoopbackHost(new URL(insecure).hostname) || this.#insecure.has(authorityOf(insecure))) {
      return insecure;
    }
    return parseOrigin(`https://${authority}`);
  }

  #stateOf(entry: DiscoveryCacheEntry): DiscoveryPeek['state'] {
    const age = this.#now() - entry.fetchedAt;
    if (age < this.#staleAfterMs) return 'fresh';
    return age < this.#expireAfterMs ? 'stale' : 'expired';
  }

  /** Plain http is accepted for loopback, with `allowInsecure`, or for a listed authority. */
  #normalise(input: string): string {
    const origin = parseOrigin(input, { allowInsecure: true });
    if (this.#options.allowInsecure || !origin.startsWith('http:')) return origin;
    if (this.#insecure.has(authorityOf(origin))) return origin;
    return parseOrigin(input); // throws ERR_ORIGIN_INVALID unless loopback
  }

  /** One request per origin at a time; only a success is written to the cache. */
  #fetch(origin: string): Promise<DiscoveryDocument> {
    const running = this.#inFlight.get(origin);
    if (running) return running.promise;
    const slot = {} as { promise: Promise<DiscoveryDocument> };
    slot.promise = (async () => {
      try {
        const document = await fetchDiscovery(origin, {
          fetch: this.#options.fetch,
          timeoutMs: this.#options.timeoutMs,
          maxBytes: this.#options.maxBytes,
          allowInsecure: true, // #normalise already applied the policy
        });
        if (this.#inFlight.get(origin) === slot) {
          this.#store.set(origin, { document, fetchedAt: this.#now() });
          this.#refreshErrors.delete(origin);
        }
        return document;
      } finally {
        if (this.#inFlight.get(origin) === slot) this.#inFlight.delete(origin);
      }
    })();
    this.#inFlight.set(origin, slot);
    return slot.promise;
  }
}

/** Same as `new DiscoveryCache(options)`. */
export function createDiscoveryResolver(options: DiscoveryResolverOptions): DiscoveryResolver {
  return new DiscoveryCache(options);
}

let defaultResolver: DiscoveryResolver | undefined;

/**
 * Resolves the discovery document of `origin` through `resolver`, or through a shared default
 * resolver that uses the runtime's global `fetch`.
 *
 * @example
 *   const doc = await resolveDiscovery('https://images.example');
 */
export function resolveDiscovery(origin: string, resolver?: DiscoveryResolver): Promise<DiscoveryDocument> {
  if (resolver) return resolver.resolve(origin);
  defaultResolver ??= createDiscoveryResolver({ fetch: (...args) => globalThis.fetch(...args) });
  return defaultResolver.resolve(origin);
}

export interface ResolvedUri {
  uri: ImagineUri;
  /** The API URL of the resource: `{api}/assets/{id}` or `{api}/collections/{id}`. */
  apiUrl: string;
  discovery: DiscoveryDocument;
}

/**
 * Resolves an `imagine://` URI to the API URL of its resource, through the discovery document
 * of its authority. A version in the URI is returned in `uri.version`, not added to `apiUrl`.
 *
 * @example
 *   const { apiUrl } = await resolveUri('imagine://images.example/images/a1b2', resolver);
 *   apiUrl; // 'https://images.example/api/v0/assets/a1b2'
 */
export async function resolveUri(input: string, resolver: DiscoveryResolver): Promise<ResolvedUri> {
  const uri = parseUri(input);
  const origin = resolver.originOf(uri.authority);
  const discovery = await resolver.resolve(origin);
  const api = new URL(discovery.endpoints.api, origin).href.replace(/\/+$/, '');
  const segment = uri.type === 'collections' ? 'collections' : 'assets';
  return { uri, apiUrl: `${api}/${segment}/${encodeURIComponent(uri.id)}`, discovery };
}

function authorityOf(origin: string): string {
  return origin.slice(origin.indexOf('://') + 3);
}
