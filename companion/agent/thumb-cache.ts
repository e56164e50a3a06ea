/**
 * The agent's image cache: server thumbnails (`connection/asset/version`, immutable) and
 * relayed IIIF thumbnails (by URL), on disk in `<data>/agent/cache/images/`, bounded by
 * `config.agentCacheBytes` with least-recently-used eviction. The index (what is stored, how
 * big, when last used) is `<data>/agent/cache/index.json`, written behind and on close, so
 * the cache survives restarts; files the index does not know are removed at start.
 *
 * A miss fetches once however many callers wait (in-flight requests are shared): for a server
 * thumbnail, a download ticket (`rendition: 'thumbnail'`) then its signed URL, with the sha256
 * checked; when the server offers no ticket, the asset's `thumbnail` URL. Files are written to
 * a temp name and renamed, so a crash never leaves half an image under a real name.
 *
 * @example
 *   const image = await services.thumbs.ensure('images.example', 'a1', 'v3');
 *   reply.type(image.contentType).header('etag', `"${image.sha256}"`).send(image.body);
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import type { ProtocolClient } from '../../shared/client.ts';
import type { Asset } from '../../shared/schemas/asset.ts';
import { readJsonFile, writeJsonFile } from './json-file.ts';
import { fetchImage, type FetchedImage } from './fetch-image.ts';

export const THUMB_CACHE_DEFAULTS = Object.freeze({
  timeoutMs: 20_000, // one image, body included
  maxImageBytes: 16 * 1024 ** 2, // a thumbnail or relayed image larger than this is refused
  indexWriteDelayMs: 1_000, // the index is written at most once a second
});

export interface CachedImage {
  body: Buffer;
  contentType: string;
  /** Lowercase hex sha256 of the body: the ETag. */
  sha256: string;
  /** Whether it came from disk (true) or was fetched now. */
  hit: boolean;
}

export interface ThumbCacheOptions {
  /** `<data>/agent/cache`. */
  dir: string;
  maxBytes: number;
  fetch: typeof fetch;
  /** The protocol client of a connection (ERR_CONNECTION_NOT_FOUND when unknown). */
  client: (connectionId: string) => ProtocolClient;
  /** The origin and token of a connection, for a thumbnail URL on the server's own origin. */
  credentials: (connectionId: string) => { origin: string; token?: string };
  /** An asset already known (metadata cache, mirror), to find its thumbnail URL without asking. */
  knownAsset?: (connectionId: string, assetId: string) => Asset | undefined;
  timeoutMs?: number;
  maxImageBytes?: number;
}

interface Entry {
  key: string;
  /** For thumbnails: connection, asset, version; for relayed images: url. */
  connection?: string;
  asset?: string;
  version?: string;
  url?: string;
  file: string;
  bytes: number;
  sha256: string;
  contentType: string;
  used: string;
}

interface IndexFile {
  version: 1;
  /** Least recently used first. */
  entries: Entry[];
}

export const INDEX_FILE = 'index.json';
const IMAGES = 'images';

function thumbKey(connectionId: string, assetId: string, version: string): string {
  return `thumb\n${connectionId}\n${assetId}\n${version}`;
}

function relayKey(url: string): string {
  return `relay\n${url}`;
}

function fileOf(key: string): string {
  const hash = createHash('sha256').update(key, 'utf8').digest('hex');
  return `${hash.slice(0, 2)}/${hash}`;
}

export class ThumbCache {
  readonly dir: string;
  readonly #options: ThumbCacheOptions;
  /** Map order is use order: least recently used first. */
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<CachedImage>>();
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: ThumbCacheOptions) {
    this.dir = options.dir;
    this.#options = options;
  }

  /** Opens the cache: reads the index, removes files it does not list, evicts down to the bound. */
  static async open(options: ThumbCacheOptions): Promise<ThumbCache> {
    const cache = new ThumbCache(options);
    await mkdir(join(options.dir, IMAGES), { recursive: true, mode: 0o700 });
    const index = await readJsonFile<IndexFile>(join(options.dir, INDEX_FILE), { version: 1, entries: [] }).catch(
      () => ({ version: 1 as const, entries: [] }),
    );
    for (const entry of Array.isArray(index.entries) ? index.entries : []) {
      if (typeof entry?.key !== 'string' || entry.file !== fileOf(entry.key) || !(entry.bytes >= 0)) continue;
      cache.#entries.set(entry.key, entry);
      cache.#bytes += entry.bytes;
    }
    await cache.#removeStrayFiles();
    await cache.#evict();
    return cache;
  }

  /** The thumbnail of one version of an asset: from disk, or fetched from its server and kept. */
  ensure(connectionId: string, assetId: string, version: string): Promise<CachedImage> {
    const key = thumbKey(connectionId, assetId, version);
    return this.#get(key, { connection: connectionId, asset: assetId, version }, () =>
      this.#fetchThumbnail(connectionId, assetId, version),
    );
  }

  /** A relayed image (an IIIF thumbnail) by URL: from disk, or fetched and kept. */
  relay(url: string, fetcher: () => Promise<FetchedImage>): Promise<CachedImage> {
    return this.#get(relayKey(url), { url }, fetcher);
  }

  has(connectionId: string, assetId: string, version: string): boolean {
    return this.#entries.has(thumbKey(connectionId, assetId, version));
  }

  /** Forgets every cached version of an asset (or, without `assetId`, of a whole connection). */
  async remove(connectionId: string, assetId?: string): Promise<void> {
    const doomed = [...this.#entries.values()].filter(
      (e) => e.connection === connectionId && (assetId === undefined || e.asset === assetId),
    );
    for (const entry of doomed) await this.#drop(entry);
    if (doomed.length > 0) this.#scheduleIndex();
  }

  /** Bytes and images held, for one connection or all (relayed images count only in the total). */
  stats(connectionId?: string): { bytes: number; count: number } {
    if (connectionId === undefined) return { bytes: this.#bytes, count: this.#entries.size };
    let bytes = 0;
    let count = 0;
    for (const entry of this.#entries.values()) {
      if (entry.connection !== connectionId) continue;
      bytes += entry.bytes;
      count += 1;
    }
    return { bytes, count };
  }

  /** Writes the index now and stops writing behind. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#inflight.values()]);
    await this.#writeIndex();
  }

  // -------------------------------------------------------------------------------------------

  #get(key: string, what: Pick<Entry, 'connection' | 'asset' | 'version' | 'url'>, fetcher: () => Promise<FetchedImage>) {
    const running = this.#inflight.get(key);
    if (running) return running;
    const work = (async (): Promise<CachedImage> => {
      const stored = await this.#read(key);
      if (stored) return stored;
      const fetched = await fetcher();
      await this.#store(key, what, fetched);
      return { body: fetched.body, contentType: fetched.contentType, sha256: fetched.sha256, hit: false };
    })();
    this.#inflight.set(key, work);
    const done = () => this.#inflight.delete(key);
    work.then(done, done);
    return work;
  }

  async #read(key: string): Promise<CachedImage | undefined> {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    let body: Buffer;
    try {
      body = await readFile(join(this.dir, IMAGES, entry.file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.#drop(entry);
      return undefined;
    }
    if (body.length !== entry.bytes) {
      // Cut short by a crash or changed behind our back: fetch it again.
      await this.#drop(entry);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, { ...entry, used: new Date().toISOString() });
    this.#scheduleIndex();
    return { body, contentType: entry.contentType, sha256: entry.sha256, hit: true };
  }

  async #store(key: string, what: Pick<Entry, 'connection' | 'asset' | 'version' | 'url'>, image: FetchedImage) {
    // An image larger than the whole bound (or a bound of 0) is served, not kept.
    if (this.#closed || image.body.length > this.#options.maxBytes) return;
    const file = fileOf(key);
    const path = join(this.dir, IMAGES, file);
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await mkdir(join(this.dir, IMAGES, file.slice(0, 2)), { recursive: true, mode: 0o700 });
    try {
      await writeFile(temp, image.body, { mode: 0o600 });
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return; // a cache: serve, keep nothing
      throw error;
    }
    const previous = this.#entries.get(key);
    if (previous) {
      this.#entries.delete(key);
      this.#bytes -= previous.bytes;
    }
    const entry: Entry = {
      key,
      ...what,
      file,
      bytes: image.body.length,
      sha256: image.sha256,
      contentType: image.contentType,
      used: new Date().toISOString(),
    };
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes;
    await this.#evict();
    this.#scheduleIndex();
  }

  async #evict(): Promise<void> {
    let evicted = false;
    for (const entry of this.#entries.values()) {
      if (this.#bytes <= this.#options.maxBytes) break;
      await this.#drop(entry);
      evicted = true;
    }
    if (evicted) this.#scheduleIndex();
  }

  async #drop(entry: Entry): Promise<void> {
    const current = this.#entries.get(entry.key);
    if (!current) return;
    this.#entries.delete(entry.key);
    this.#bytes -= current.bytes;
    await rm(join(this.dir, IMAGES, current.file), { force: true });
  }

  async #fetchThumbnail(connectionId: string, assetId: string, version: string): Promise<FetchedImage> {
    const client = this.#options.client(connectionId);
    const limits = {
      fetch: this.#options.fetch,
      timeoutMs: this.#options.timeoutMs ?? THUMB_CACHE_DEFAULTS.timeoutMs,
      maxBytes: this.#options.maxImageBytes ?? THUMB_CACHE_DEFAULTS.maxImageBytes,
    };
    let ticketError: unknown;
    try {
      const ticket = await client.downloadTicket(assetId, { rendition: 'thumbnail', version });
      if (ticket.version !== version) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', `asked for the thumbnail of ${version}, got ${ticket.version}`);
      }
      return await fetchImage(ticket.url, { ...limits, sha256: ticket.sha256 });
    } catch (error) {
      // A server without download tickets may still have a thumbnail URL; anything else is final.
      const noTicket =
        isProtocolError(error, 'ERR_ROUTE_NOT_FOUND') ||
        isProtocolError(error, 'ERR_NOT_IMPLEMENTED') ||
        isProtocolError(error, 'ERR_METHOD_NOT_ALLOWED') ||
        (isProtocolError(error, 'ERR_UPSTREAM_ERROR') && error.status === 404);
      if (!noTicket) throw error;
      ticketError = error;
    }
    const asset = this.#options.knownAsset?.(connectionId, assetId) ?? (await client.getAsset(assetId)).asset;
    if (!asset.thumbnail || asset.currentVersion !== version) throw ticketError;
    const { origin, token } = this.#options.credentials(connectionId);
    const url = new URL(asset.thumbnail, origin);
    // The token goes only to the server it belongs to.
    const headers: Record<string, string> = url.origin === origin && token ? { Authorization: `Bearer ${token}` } : {};
    return fetchImage(url.href, { ...limits, headers });
  }

  async #removeStrayFiles(): Promise<void> {
    const known = new Set([...this.#entries.values()].map((e) => e.file));
    const root = join(this.dir, IMAGES);
    for (const sub of await readdir(root).catch(() => [] as string[])) {
      for (const name of await readdir(join(root, sub)).catch(() => [] as string[])) {
        if (!known.has(`${sub}/${name}`)) await rm(join(root, sub, name), { force: true });
      }
    }
  }

  #scheduleIndex(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#writeIndex().catch(() => {});
    }, THUMB_CACHE_DEFAULTS.indexWriteDelayMs);
    this.#timer.unref();
  }

  #writeIndex(): Promise<void> {
    const snapshot: IndexFile = { version: 1, entries: [...this.#entries.values()] };
    this.#writing = this.#writing.catch(() => {}).then(() => writeJsonFile(join(this.dir, INDEX_FILE), snapshot));
    return this.#writing;
  }
}
