/**
 * From an IIIF identifier to pixels: `id` (the current version) or `id@version` names an
 * asset version of the library, `source:name` an original fetched from a web source
 * (web-origins.ts). Both become an `ImageOrigin` (a file and its content address); its pixels
 * come from that file (EXIF orientation applied at load, shrink-on-load for JPEG and WebP), or,
 * when the image has more than `pyramidThreshold` pixels, from a tiled pyramidal TIFF made once
 * and kept in a bounded cache (pyramid.ts). Files libvips cannot read have no IIIF image (415).
 *
 * Authorisation is the caller's: `resolveIdentifier` only finds the records.
 */
import { rm } from 'node:fs/promises';
import { ProtocolError } from '../../shared/errors.ts';
import type { Library } from '../library/library.ts';
import type { AssetRecord, VersionRecord } from '../library/records.ts';
import type { DiskCache } from './cache.ts';
import { cacheKey } from './cache.ts';
import type { Limiter } from './limit.ts';
import { SingleFlight } from './limit.ts';
import type { AssetIdentifier } from './parse.ts';
import { decodePsdComposite, PSD_MEDIA_TYPES, psdPreview, PsdError, readPsd } from './psd.ts';
import { buildPyramid, chooseLevel, readPyramidLevels, type Level } from './pyramid.ts';
import type { RenderSource } from './render.ts';

/** Bumped when the pyramid format changes, so old pyramids are not reused. */
const PYRAMID_REVISION = 'pyramid-1';

export interface ResolvedIdentifier {
  asset: AssetRecord;
  version: VersionRecord;
  /** true when the identifier names the version (`id@v2`): its pixels never change. */
  pinned: boolean;
}

/** Finds the asset and version an identifier names. Throws 404 (or 410 for a deleted asset). */
export function resolveIdentifier(library: Library, identifier: AssetIdentifier): ResolvedIdentifier {
  const asset = library.getAsset(identifier.asset);
  if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
  const version = library.getVersion(asset, identifier.version);
  return { asset, version, pinned: identifier.version !== undefined };
}

/** The size IIIF shows for a version libvips decodes (after orientation), or undefined. */
export function imageSize(version: VersionRecord): { width: number; height: number } | undefined {
  if (!version.thumbnailSha256 || !version.width || !version.height) return undefined;
  return { width: version.width, height: version.height };
}

export function isPhotoshop(file: { mediaType: string }): boolean {
  return PSD_MEDIA_TYPES.has(file.mediaType);
}

/**
 * What the image service renders from: one file and its content address. Library versions and
 * fetched web originals are both origins; render and pyramid cache keys start from `key`.
 */
export interface ImageOrigin {
  /** Content address of the file (sha256 hex): a version's sha256, a web original's. */
  key: string;
  /** The file to read. */
  path: string;
  mediaType: string;
  /** The size as shown (orientation applied) when libvips decodes the file. */
  size?: { width: number; height: number };
  /** Photoshop files: the document size (tells the composite from the embedded preview). */
  documentSize?: { width: number; height: number };
}

/** The origin of a library version (its blob). */
export function versionOrigin(library: Library, version: VersionRecord): ImageOrigin {
  const origin: ImageOrigin = { key: version.sha256, path: library.blobs.pathOf(version.sha256), mediaType: version.mediaType };
  const size = imageSize(version);
  if (size) origin.size = size;
  if (version.width && version.height) origin.documentSize = { width: version.width, height: version.height };
  return origin;
}

/** Whether the IIIF service can show a version at all (decodable, or a Photoshop file). */
export function hasImage(version: VersionRecord): boolean {
  return imageSize(version) !== undefined || isPhotoshop(version);
}

/** What info.json describes: the size, and where the pixels come from when not the file itself. */
export interface ImageDescription {
  width: number;
  height: number;
  /** `photoshop-composite` or `photoshop-preview` (the embedded thumbnail) for PSD/PSB. */
  source?: 'photoshop-composite' | 'photoshop-preview';
}

/** A decodable view of one origin: the levels to read from, largest first. */
export interface OpenedSource {
  width: number;
  height: number;
  kind: 'original' | 'pyramid';
  /** The source to decode for an output `scale` (output size / region size). */
  pick(scale: number): RenderSource;
  /** Ends the use (lets the cache evict a pyramid again). */
  release(): void;
}

export interface ImageSourcesOptions {
  pyramids: DiskCache;
  /** Images with more pixels than this are served from a pyramid. */
  pyramidThreshold: number;
  tileSize: number;
  /** Limits the work of building pyramids together with rendering. */
  limiter: Limiter;
}

export class ImageSources {
  readonly #options: ImageSourcesOptions;
  readonly #building = new SingleFlight<void>();
  readonly #levels = new Map<string, Level[]>();

  constructor(options: ImageSourcesOptions) {
    this.#options = options;
  }

  needsPyramid(size: { width: number; height: number }): boolean {
    return size.width * size.height > this.#options.pyramidThreshold;
  }

  pyramidKey(origin: ImageOrigin): string {
    return cacheKey(origin.key, PYRAMID_REVISION, String(this.#options.tileSize), isPhotoshop(origin) ? 'psd' : '');
  }

  /**
   * The size of what the service shows for an origin: its own for images libvips decodes; for
   * Photoshop files the size of the composite (or preview) once it has been read.
   */
  async describe(origin: ImageOrigin): Promise<ImageDescription | undefined> {
    if (origin.size) return origin.size;
    if (!isPhotoshop(origin)) return undefined;
    try {
      const levels = await this.#pyramidLevels(origin);
      const top = levels[0]!;
      const composite = top.width === origin.documentSize?.width && top.height === origin.documentSize?.height;
      return { ...top, source: composite ? 'photoshop-composite' : 'photoshop-preview' };
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      return undefined;
    }
  }

  async #pyramidLevels(origin: ImageOrigin): Promise<Level[]> {
    const key = this.pyramidKey(origin);
    const release = this.#options.pyramids.pin(key);
    try {
      await this.ensurePyramid(origin);
      return await this.#readLevels(key);
    } finally {
      release();
    }
  }

  async #readLevels(key: string): Promise<Level[]> {
    let levels = this.#levels.get(key);
    if (!levels) {
      levels = await readPyramidLevels(this.#options.pyramids.pathOf(key));
      if (this.#levels.size > 1000) this.#levels.clear();
      this.#levels.set(key, levels);
    }
    return levels;
  }

  hasPyramid(origin: ImageOrigin): boolean {
    return this.#options.pyramids.has(this.pyramidKey(origin));
  }

  /**
   * Makes the origin's pyramid if it needs one and has none (once, however many callers).
   * Photoshop files always get one: their composite (or preview) decoded once.
   */
  async ensurePyramid(origin: ImageOrigin): Promise<void> {
    const size = origin.size;
    const psd = !size && isPhotoshop(origin);
    if (!psd && (!size || !this.needsPyramid(size))) return;
    const { pyramids, limiter, tileSize } = this.#options;
    const key = this.pyramidKey(origin);
    if (pyramids.touch(key)) return;
    await this.#building.run(key, async () => {
      if (pyramids.has(key)) return;
      const tmp = pyramids.tempPath('.tif');
      const path = origin.path;
      // A build that fails (or a child process that dies) leaves no partial file behind.
      await limiter.run(async () => {
        if (!psd) return buildPyramid(path, tmp, { tileSize });
        const bytes = await readPsd(path);
        let composite;
        try {
          composite = decodePsdComposite(bytes);
        } catch (error) {
          if (!(error instanceof PsdError)) throw error;
          const preview = psdPreview(bytes);
          if (!preview) throw new ProtocolError('ERR_NOT_AN_IMAGE', `the Photoshop file cannot be shown: ${error.message}`);
          return buildPyramid(preview, tmp, { tileSize });
        }
        const { pixels, ...raw } = composite;
        return buildPyramid(pixels, tmp, { tileSize, raw });
      }).catch(async (error: unknown) => {
        await rm(tmp, { force: true });
        throw error;
      });
      await pyramids.adopt(key, tmp);
    });
  }

  /** Opens an origin for rendering, building its pyramid first when it needs one. */
  async open(origin: ImageOrigin): Promise<OpenedSource> {
    const size = origin.size ?? (isPhotoshop(origin) ? await this.describe(origin) : undefined);
    if (!size) throw new ProtocolError('ERR_NOT_AN_IMAGE', 'this version has no image the IIIF service can render');
    const { width, height } = size;
    if (!isPhotoshop(origin) && !this.needsPyramid(size)) {
      const source: RenderSource = {
        input: origin.path,
        width,
        height,
        fullWidth: width,
        fullHeight: height,
        autoOrient: true,
      };
      return { width, height, kind: 'original', pick: () => source, release: () => undefined };
    }
    const { pyramids } = this.#options;
    const key = this.pyramidKey(origin);
    let release = pyramids.pin(key);
    try {
      if (!pyramids.has(key)) await this.ensurePyramid(origin);
      const path = pyramids.pathOf(key);
      const found = await this.#readLevels(key);
      return {
        width,
        height,
        kind: 'pyramid',
        pick: (scale) => {
          const page = chooseLevel(found, width, scale);
          return { input: path, page, ...found[page]!, fullWidth: width, fullHeight: height, autoOrient: false };
        },
        release: () => release(),
      };
    } catch (error) {
      release();
      release = () => undefined;
      throw error;
    }
  }
}
