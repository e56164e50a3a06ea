/**
 * The IIIF image service of a library, framework-free: cache → single flight → concurrency
 * limit → render, plus the background preparation of big images (pyramid, then the tiles and
 * sizes info.json advertises, so a viewer's first requests are cache hits).
 *
 * `render()` returns a union, like the renderer: content (with its cache key, which is also a
 * strong ETag) or an error status with a message. Nothing here knows about HTTP.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Library } from '../library/library.ts';
import type { VersionRecord } from '../library/records.ts';
import { cacheKey, DiskCache } from './cache.ts';
import { advertisedSizes, scaleFactors } from './info.ts';
import { BusyError, Limiter, SingleFlight } from './limit.ts';
import { parseIiifPath } from './parse.ts';
import { CONTENT_TYPES, renderImage } from './render.ts';
import { planKey, resolveImageRequest, type ImageLimits, type RenderPlan } from './resolve.ts';
import { ImageSources, isPhotoshop, versionOrigin, type ImageOrigin } from './source.ts';

/** Bumped when the render pipeline changes what it produces, so old cache entries are unused. */
const RENDER_REVISION = 'render-1';

export interface IiifServiceOptions {
  library: Library;
  /** Folder of the caches (`<data>/cache/iiif`). */
  dir: string;
  /** Bound of rendered images on disk, bytes. */
  cacheBytes: number;
  /** Bound of pyramids on disk, bytes. */
  pyramidBytes: number;
  /** Hot rendered images also kept in memory, bytes. */
  memoryBytes: number;
  /** Images above this many pixels are served from a pyramid. */
  pyramidThreshold: number;
  /** Renders (and pyramid builds) at once; 0 = the number of CPUs. */
  concurrency: number;
  /** Requests waiting for a render slot at most; more are answered 503. */
  queue: number;
  tileSize: number;
  limits: ImageLimits;
  /** Render the advertised tiles and sizes of big images in the background after ingest. */
  prerender: boolean;
  timeoutSeconds: number;
}

export type ServiceResult =
  | { ok: true; bytes: Buffer; contentType: string; key: string; cached: boolean }
  | { ok: false; status: 415 | 500 | 503; message: string };

export class IiifService {
  readonly options: IiifServiceOptions;
  readonly cache: DiskCache;
  readonly pyramids: DiskCache;
  readonly sources: ImageSources;
  readonly limiter: Limiter;
  readonly #flights = new SingleFlight<ServiceResult>();
  readonly #preparing = new SingleFlight<void>();
  #closed = false;
  #unsubscribe: (() => void) | undefined;

  constructor(options: IiifServiceOptions) {
    this.options = options;
    this.cache = new DiskCache({
      dir: join(options.dir, 'images'),
      maxBytes: options.cacheBytes,
      memoryBytes: options.memoryBytes,
      memoryEntryBytes: 512 * 1024,
    });
    this.pyramids = new DiskCache({ dir: join(options.dir, 'pyramids'), maxBytes: options.pyramidBytes, suffix: '.tif' });
    this.limiter = new Limiter({ active: options.concurrency || availableParallelism(), queue: options.queue });
    this.sources = new ImageSources({
      pyramids: this.pyramids,
      pyramidThreshold: options.pyramidThreshold,
      tileSize: options.tileSize,
      limiter: this.limiter,
    });
  }

  async init(): Promise<void> {
    await this.cache.init();
    await this.pyramids.init();
    // New versions of big images are prepared as soon as they are committed; the pyramids of
    // a deleted asset go with it (rendered images age out of the LRU cache).
    this.#unsubscribe = this.options.library.catalog.onCommit((changes, touched) => {
      for (const change of changes) {
        const asset = touched.find((a) => a.id === change.assetId);
        if (change.type === 'asset.deleted' && asset) {
          for (const version of asset.versions) {
            void this.pyramids.delete(this.sources.pyramidKey(this.origin(version))).catch(() => undefined);
          }
          continue;
        }
        if ((change.type !== 'asset.created' && change.type !== 'asset.updated') || !change.version) continue;
        const version = asset?.versions.find((v) => v.id === change.version);
        if (version) void this.prepare(this.origin(version)).catch(() => undefined);
      }
    });
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
  }

  /** The origin of a library version. */
  origin(version: VersionRecord): ImageOrigin {
    return versionOrigin(this.options.library, version);
  }

  /** The cache key of a plan of an origin: sha256(source sha, revision, the pixels asked for). */
  key(origin: ImageOrigin, plan: RenderPlan): string {
    return cacheKey(origin.key, RENDER_REVISION, planKey(plan));
  }

  /** Cached bytes of a plan, without rendering (undefined when not cached). */
  async cached(origin: ImageOrigin, plan: RenderPlan): Promise<{ bytes: Buffer; key: string } | undefined> {
    const key = this.key(origin, plan);
    const bytes = await this.cache.get(key);
    return bytes ? { bytes, key } : undefined;
  }

  /** The image of a plan: from the cache, or rendered once (concurrent equal requests share it). */
  async render(origin: ImageOrigin, plan: RenderPlan): Promise<ServiceResult> {
    const key = this.key(origin, plan);
    const hit = await this.cache.get(key);
    if (hit) return { ok: true, bytes: hit, contentType: CONTENT_TYPES[plan.format], key, cached: true };
    return this.#flights.run(key, () => this.#renderUncached(origin, plan, key));
  }

  async #renderUncached(origin: ImageOrigin, plan: RenderPlan, key: string): Promise<ServiceResult> {
    let opened;
    try {
      opened = await this.sources.open(origin);
    } catch (error) {
      if (error instanceof BusyError) return { ok: false, status: 503, message: error.message };
      return { ok: false, status: 415, message: `the source image cannot be read: ${(error as Error).message.split('\n')[0]}` };
    }
    try {
      const scale = Math.min(plan.width / plan.region.w, plan.height / plan.region.h);
      const source = opened.pick(scale);
      const result = await this.limiter.run(() =>
        renderImage(source, plan, { timeoutSeconds: this.options.timeoutSeconds }),
      );
      if (!result.ok) return { ok: false, status: result.error.status, message: result.error.message };
      await this.cache.put(key, result.bytes);
      return { ok: true, bytes: result.bytes, contentType: result.contentType, key, cached: false };
    } catch (error) {
      if (error instanceof BusyError) return { ok: false, status: 503, message: error.message };
      throw error;
    } finally {
      opened.release();
    }
  }

  /**
   * Prepares a big image: its pyramid, then (when `prerender`) every tile and size its
   * info.json advertises, one at a time so foreground requests keep their share.
   */
  prepare(origin: ImageOrigin): Promise<void> {
    if (isPhotoshop(origin) && !this.#closed) return this.#preparing.run(origin.key, () => this.sources.ensurePyramid(origin));
    const size = origin.size;
    if (!size || !this.sources.needsPyramid(size) || this.#closed) return Promise.resolve();
    return this.#preparing.run(origin.key, async () => {
      await this.sources.ensurePyramid(origin);
      if (!this.options.prerender) return;
      for (const plan of this.advertisedPlans(size)) {
        if (this.#closed) return;
        if (this.cache.has(this.key(origin, plan))) continue;
        const result = await this.render(origin, plan);
        if (!result.ok && result.status === 503) await new Promise((r) => setTimeout(r, 50));
      }
    });
  }

  /** The plans of the tiles and sizes info.json advertises (as 3.0 requests, JPEG). */
  advertisedPlans(size: { width: number; height: number }): RenderPlan[] {
    const { tileSize, limits } = this.options;
    const paths: string[] = [];
    for (const s of advertisedSizes(size.width, size.height, tileSize, limits)) paths.push(`full/${s.width},${s.height}`);
    // Overview levels first: viewers ask for them first.
    for (const sf of scaleFactors(size.width, size.height, tileSize).reverse()) {
      const step = tileSize * sf;
      for (let y = 0; y < size.height; y += step) {
        for (let x = 0; x < size.width; x += step) {
          const w = Math.min(step, size.width - x);
          const h = Math.min(step, size.height - y);
          paths.push(`${x},${y},${w},${h}/${Math.ceil(w / sf)},${Math.ceil(h / sf)}`);
        }
      }
    }
    const plans: RenderPlan[] = [];
    for (const path of paths) {
      const request = parseIiifPath(3, `x/${path}/0/default.jpg`);
      if (request.kind !== 'image') continue;
      const resolved = resolveImageRequest(request, size, limits);
      if (resolved.ok) plans.push(resolved.value);
    }
    return plans;
  }
}
