/**
 * The originals of web sources (`{source}:{name}`, web-source.ts): fetched once, kept on disk,
 * handed to the image service as `ImageOrigin`s like library versions.
 *
 * Fetching goes through `safeFetch` (companion/events/safe-fetch.ts): the host is resolved
 * once and every address checked (no loopback, private or reserved address unless
 * `allowPrivate`), the socket connects to the checked address, one deadline (`timeoutMs`)
 * covers every hop, and the body is capped (`maxBytes`). Redirects are followed here, at most
 * five, and only on the same host (or its https upgrade): a redirect to another host is
 * refused, each hop checked again by safeFetch. At most four fetches run at once.
 *
 * What was fetched is probed with sharp before it is kept: raster formats libvips decodes only
 * (JPEG, PNG, WebP, TIFF, GIF, HEIF/AVIF, JPEG 2000, JPEG XL; not SVG or PDF), at most
 * `MAX_INPUT_PIXELS` (the library's decompression-bomb guard), size taken after EXIF
 * orientation. Anything else is 415.
 *
 * Storage: originals are content-addressed (`originals`, key = sha256 of the bytes, so two URLs
 * with the same image share a file and a changed image never overwrites one being read); a
 * small record per URL (`records`, key = sha256 of the URL) says which original a URL had, when
 * it was checked and its validators. Both caches are bounded LRU (DiskCache).
 *
 * Revalidation: a URL checked less than `ttlSeconds` ago is served from disk without asking.
 * After that it is asked again with If-None-Match / If-Modified-Since when it sent validators:
 * 304 keeps the original (and restarts the TTL), 200 replaces it (new sha256, so new render
 * and pyramid keys), 404/410 forgets it. When the upstream cannot be reached or times out, the
 * stale original is served (stale-if-error). Concurrent requests for one URL fetch once.
 *
 * @example
 *   const web = new WebOrigins({ sources, dir, cacheBytes: 1 << 30, maxBytes: 100 << 20,
 *                                timeoutMs: 20_000, allowPrivate: false, ttlSeconds: 86_400 });
 *   await web.init();
 *   const lease = await web.acquire({ source: 'nhm', name: 'abc.jpg' });
 *   try { await service.render(lease.origin, plan); } finally { lease.release(); }
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import sharp, { type Metadata } from 'sharp';
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import { addressPolicy, safeFetch, type SafeResponse } from '../events/safe-fetch.ts';
import { MAX_INPUT_PIXELS } from '../library/probe.ts';
import { cacheKey, DiskCache } from './cache.ts';
import { BusyError, Limiter, SingleFlight } from './limit.ts';
import type { WebIdentifier } from './parse.ts';
import type { ImageOrigin } from './source.ts';
import { compileWebSources, resolveWebUrl, type CompiledWebSource, type WebSourceConfig } from './web-source.ts';

const debug = debuglog('imagine:iiif-web');

/** Raster formats kept (sharp's `format` → media type). */
const RASTER_TYPES: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  tiff: 'image/tiff',
  gif: 'image/gif',
  heif: 'image/heif',
  avif: 'image/avif',
  jp2k: 'image/jp2',
  jxl: 'image/jxl',
};
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const RECORD_REVISION = 1;

export interface WebOriginsOptions {
  sources: readonly WebSourceConfig[];
  /** Folder of the caches (`<data>/cache/iiif/web`). */
  dir: string;
  /** Bound of the fetched originals on disk, bytes. */
  cacheBytes: number;
  /** Largest original fetched, bytes. */
  maxBytes: number;
  /** Deadline of one fetch, redirects included, milliseconds. */
  timeoutMs: number;
  /** Allow loopback, private and reserved addresses (development and tests only). */
  allowPrivate: boolean;
  /** How long a fetched original is used without asking the upstream again, seconds. */
  ttlSeconds: number;
  /** Fetches at once (default 4); up to 64 more wait, further ones are answered 503. */
  concurrency?: number;
  now?: () => number;
}

/** What is known of one URL (stored as JSON in `records`). */
interface WebRecord {
  revision: number;
  url: string;
  sha256: string;
  mediaType: string;
  width: number;
  height: number;
  bytes: number;
  /** When the upstream last confirmed this content, ms since the epoch. */
  checkedAt: number;
  etag?: string;
  lastModified?: string;
}

/** An origin in use: its original stays on disk until `release()`. */
export interface WebOriginLease {
  origin: ImageOrigin;
  url: string;
  release(): void;
}

export class WebOrigins {
  readonly options: WebOriginsOptions;
  readonly sources: readonly CompiledWebSource[];
  readonly originals: DiskCache;
  readonly records: DiskCache;
  readonly #flights = new SingleFlight<WebRecord>();
  readonly #limiter: Limiter;
  /** Parsed records of recently used URLs (a bounded copy of `records`). */
  readonly #hot = new Map<string, WebRecord>();
  readonly #now: () => number;

  constructor(options: WebOriginsOptions) {
    this.options = options;
    this.sources = compileWebSources(options.sources);
    this.originals = new DiskCache({ dir: join(options.dir, 'originals'), maxBytes: options.cacheBytes });
    // Records are ~300 bytes: a generous bound that still cannot grow without limit.
    this.records = new DiskCache({ dir: join(options.dir, 'records'), maxBytes: 64 * 1024 ** 2, suffix: '.json' });
    this.#limiter = new Limiter({ active: options.concurrency ?? 4, queue: 64 });
    this.#now = options.now ?? Date.now;
  }

  async init(): Promise<void> {
    if (this.sources.length === 0) return;
    await this.originals.init();
    await this.records.init();
  }

  /** Cache-Control of web images: public, for as long as they are not revalidated (at most a day). */
  get cacheControl(): string {
    return `public, max-age=${Math.min(this.options.ttlSeconds, 86_400)}`;
  }

  /** The URL an identifier names; 404 (ERR_ASSET_NOT_FOUND) when it names nothing. */
  url(identifier: WebIdentifier): URL {
    const resolved = resolveWebUrl(this.sources, identifier);
    if (!resolved.ok) throw new ProtocolError('ERR_ASSET_NOT_FOUND', resolved.error.message, { status: 404 });
    return resolved.value;
  }

  /**
   * The origin of an identifier: from disk while fresh, else fetched (or revalidated). The
   * caller must `release()` the lease when done reading the file.
   */
  async acquire(identifier: WebIdentifier): Promise<WebOriginLease> {
    const url = this.url(identifier).href;
    const urlKey = cacheKey('web-original', url);
    let record = await this.#record(urlKey);
    if (!record || !this.originals.touch(record.sha256) || this.#stale(record)) {
      const cached = record && this.originals.has(record.sha256) ? record : undefined;
      try {
        record = await this.#flights.run(urlKey, () => this.#limiter.run(() => this.#fetch(url, urlKey, cached)));
      } catch (error) {
        if (error instanceof BusyError) throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'too many web images are being fetched at once');
        throw error;
      }
    }
    const release = this.originals.pin(record.sha256);
    if (!this.originals.has(record.sha256)) {
      release();
      throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'the fetched image was evicted at once; the web cache is too small');
    }
    return { origin: this.#origin(record), url, release };
  }

  /** Keeps an origin's original on disk (e.g. while its pyramid is built) until called back. */
  hold(origin: ImageOrigin): () => void {
    return this.originals.pin(origin.key);
  }

  #origin(record: WebRecord): ImageOrigin {
    return {
      key: record.sha256,
      path: this.originals.pathOf(record.sha256),
      mediaType: record.mediaType,
      size: { width: record.width, height: record.height },
    };
  }

  #stale(record: WebRecord): boolean {
    return this.#now() - record.checkedAt >= this.options.ttlSeconds * 1000;
  }

  async #record(urlKey: string): Promise<WebRecord | undefined> {
    const hot = this.#hot.get(urlKey);
    if (hot) return hot;
    const bytes = await this.records.get(urlKey);
    if (!bytes) return undefined;
    try {
      const record = JSON.parse(bytes.toString('utf8')) as WebRecord;
      if (record.revision !== RECORD_REVISION || !/^[0-9a-f]{64}$/.test(record.sha256)) return undefined;
      this.#remember(urlKey, record);
      return record;
    } catch {
      return undefined;
    }
  }

  async #save(urlKey: string, record: WebRecord): Promise<void> {
    await this.records.put(urlKey, Buffer.from(JSON.stringify(record)));
    this.#remember(urlKey, record);
  }

  #remember(urlKey: string, record: WebRecord): void {
    if (this.#hot.size >= 10_000) this.#hot.clear();
    this.#hot.set(urlKey, record);
  }

  async #forget(urlKey: string): Promise<void> {
    this.#hot.delete(urlKey);
    await this.records.delete(urlKey);
  }

  /** Fetches (or revalidates `cached`) and stores the original. */
  async #fetch(url: string, urlKey: string, cached: WebRecord | undefined): Promise<WebRecord> {
    const headers: Record<string, string> = { accept: 'image/*' };
    if (cached?.etag) headers['if-none-match'] = cached.etag;
    if (cached?.lastModified) headers['if-modified-since'] = cached.lastModified;
    let response: SafeResponse;
    try {
      response = await this.#get(new URL(url), headers);
    } catch (error) {
      const explained = explainFetchError(error, this.options.timeoutMs);
      if (cached && (explained.code === 'ERR_UPSTREAM_UNREACHABLE' || explained.code === 'ERR_UPSTREAM_TIMEOUT')) {
        debug('serving a stale copy of %s: %s', url, explained.message);
        return cached;
      }
      throw explained;
    }
    if (response.status === 304 && cached) {
      const record = { ...cached, checkedAt: this.#now() };
      await this.#save(urlKey, record);
      return record;
    }
    if (response.status === 404 || response.status === 410) {
      if (cached) await this.#forget(urlKey);
      throw new ProtocolError('ERR_ASSET_NOT_FOUND', `the web source has no such image (it answered ${response.status})`, { status: 404 });
    }
    if (response.status !== 200) {
      if (cached && response.status >= 500) {
        debug('serving a stale copy of %s: upstream answered %d', url, response.status);
        return cached;
      }
      throw new ProtocolError('ERR_UPSTREAM_ERROR', `the web source answered ${response.status}`, {
        status: 502,
        extensions: { remoteStatus: response.status },
      });
    }
    const image = await probeOriginal(response.body);
    const sha256 = createHash('sha256').update(response.body).digest('hex');
    const record: WebRecord = {
      revision: RECORD_REVISION,
      url,
      sha256,
      ...image,
      bytes: response.body.length,
      checkedAt: this.#now(),
    };
    const etag = header(response, 'etag');
    const lastModified = header(response, 'last-modified');
    if (etag) record.etag = etag;
    if (lastModified) record.lastModified = lastModified;
    // Held until the callers sharing this fetch have pinned it (their continuations run before
    // the next macrotask), so a cache smaller than the image cannot evict it in between.
    const hold = this.originals.pin(sha256);
    try {
      if (!this.originals.touch(sha256)) await this.originals.put(sha256, response.body);
      await this.#save(urlKey, record);
    } finally {
      setImmediate(hold);
    }
    return record;
  }

  /** GET with redirects followed on the same host only, within one deadline. */
  async #get(url: URL, headers: Record<string, string>): Promise<SafeResponse> {
    const { maxBytes, timeoutMs, allowPrivate } = this.options;
    const deadline = this.#now() + timeoutMs;
    const policy = addressPolicy(allowPrivate);
    let current = url;
    for (let hop = 0; ; hop++) {
      const left = deadline - this.#now();
      if (left <= 0) throw new ProtocolError('ERR_UPSTREAM_TIMEOUT', `no answer within ${timeoutMs} ms`);
      const response = await safeFetch(current, { timeoutMs: left, maxBytes, policy, headers, maxRedirects: 0 });
      const location = header(response, 'location');
      if (!REDIRECTS.has(response.status) || !location) return response;
      if (hop >= MAX_REDIRECTS) throw new ProtocolError('ERR_UPSTREAM_INVALID', `the web source redirected more than ${MAX_REDIRECTS} times`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the web source redirected to an invalid URL');
      }
      if (!sameHost(current, next)) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `the web source redirected to another host (${next.host.slice(0, 100)})`);
      }
      current = next;
    }
  }
}

/** Same scheme, host and port, or the https upgrade of the same host. */
function sameHost(from: URL, to: URL): boolean {
  if (to.hostname !== from.hostname || to.username || to.password) return false;
  if (to.protocol === from.protocol) return to.port === from.port;
  return from.protocol === 'http:' && to.protocol === 'https:' && to.port === '';
}

function header(response: SafeResponse, name: string): string | undefined {
  const value = response.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text && text.length <= 1000 ? text : undefined;
}

/**
 * safeFetch's errors as a client of the IIIF service should see them: the codes stay, the
 * statuses fit a gateway (403 for a forbidden address), and messages name no resolved address
 * or socket error (no network map for strangers).
 */
function explainFetchError(error: unknown, timeoutMs: number): ProtocolError {
  if (!isProtocolError(error)) {
    return new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'the web source could not be reached', { cause: error });
  }
  switch (error.code) {
    case 'ERR_ADDRESS_FORBIDDEN':
      return new ProtocolError('ERR_ADDRESS_FORBIDDEN', "the web source's URL leads to a private or reserved address", { status: 403, cause: error });
    case 'ERR_UPSTREAM_TIMEOUT':
      return new ProtocolError('ERR_UPSTREAM_TIMEOUT', `the web source did not answer within ${timeoutMs} ms`, { cause: error });
    case 'ERR_UPSTREAM_UNREACHABLE':
      return new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'the web source could not be reached', { cause: error });
    case 'ERR_VALIDATION':
      return new ProtocolError('ERR_ASSET_NOT_FOUND', 'the web source URL is not valid', { status: 404, cause: error });
    default:
      return error;
  }
}

/** Format and size (after orientation) of a fetched original, or 415. */
export async function probeOriginal(bytes: Buffer): Promise<{ mediaType: string; width: number; height: number }> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
  } catch (error) {
    if (/pixel limit/i.test((error as Error).message)) {
      throw new ProtocolError('ERR_NOT_AN_IMAGE', `the web image is larger than ${MAX_INPUT_PIXELS} pixels`);
    }
    throw new ProtocolError('ERR_NOT_AN_IMAGE', 'the web source did not answer with an image this server can read');
  }
  const mediaType = meta.format ? RASTER_TYPES[meta.format] : undefined;
  if (!mediaType || !meta.width || !meta.height) {
    throw new ProtocolError('ERR_NOT_AN_IMAGE', 'the web source did not answer with an image this server can read');
  }
  if (meta.width * meta.height > MAX_INPUT_PIXELS) {
    throw new ProtocolError('ERR_NOT_AN_IMAGE', `the web image is larger than ${MAX_INPUT_PIXELS} pixels`);
  }
  const swap = (meta.orientation ?? 1) >= 5;
  return { mediaType, width: swap ? meta.height : meta.width, height: swap ? meta.width : meta.height };
}
