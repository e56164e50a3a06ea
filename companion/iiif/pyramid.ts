/**
 * Tiled pyramidal TIFF derivatives, so deep-zoom tiles of a big image never decode the whole
 * original: level n (page n) is the image shrunk by 2^n, stored as JPEG-compressed 512x512
 * tiles (deflate when the image has an alpha channel), orientation applied and converted to
 * sRGB (or 8-bit grey) once. A tile at scale factor 2^n is then one TIFF tile decoded.
 *
 * @example
 *   await buildPyramid('/data/blobs/ab/cd/abcd…', '/data/cache/pyramids/tmp/x.tif', { tileSize: 512 });
 *   const levels = await readPyramidLevels('/data/cache/pyramids/ab/abcd….tif');
 *   // → [{ width: 6000, height: 4000 }, { width: 3000, height: 2000 }, …]
 */
import sharp from 'sharp';
import { MAX_INPUT_PIXELS } from '../library/probe.ts';

export interface PyramidOptions {
  /** Edge of the stored tiles, pixels. */
  tileSize: number;
  /** JPEG quality of the stored tiles. */
  quality?: number;
  /** `source` is raw interleaved 8-bit pixels of this shape (a decoded Photoshop composite). */
  raw?: { width: number; height: number; channels: 1 | 3 };
}

export interface Level {
  width: number;
  height: number;
}

/** Writes the pyramid of `source` to `target` (a new file). Rejects for undecodable sources. */
export async function buildPyramid(source: string | Buffer, target: string, options: PyramidOptions): Promise<void> {
  const image = sharp(source, {
    limitInputPixels: MAX_INPUT_PIXELS,
    failOn: 'truncated',
    autoOrient: true,
    ...(options.raw ? { raw: options.raw } : {}),
  });
  const meta = await image.metadata();
  const grey = meta.channels === 1 || (meta.channels === 2 && meta.hasAlpha) || meta.space === 'b-w' || meta.space === 'grey16';
  const alpha = meta.hasAlpha === true;
  await image
    .toColourspace(grey ? 'b-w' : 'srgb')
    .tiff({
      tile: true,
      pyramid: true,
      tileWidth: options.tileSize,
      tileHeight: options.tileSize,
      compression: alpha ? 'deflate' : 'jpeg',
      quality: options.quality ?? 90,
    })
    .toFile(target);
}

/** The size of every level of a pyramid, largest first (page n = level n). */
export async function readPyramidLevels(path: string): Promise<Level[]> {
  const first = await sharp(path).metadata();
  const pages = first.pages ?? 1;
  const levels: Level[] = [];
  for (let page = 0; page < pages; page++) {
    const meta = page === 0 ? first : await sharp(path, { page }).metadata();
    levels.push({ width: meta.width, height: meta.height });
  }
  return levels;
}

/**
 * The smallest level that still has at least as many pixels as the output needs, given how
 * much the region shrinks (`scale` = output size / region size, ≤ 1 for a reduction).
 */
export function chooseLevel(levels: readonly Level[], fullWidth: number, scale: number): number {
  let chosen = 0;
  for (let i = 1; i < levels.length; i++) {
    // A small tolerance so an exact 2^n tile does not fall back to the larger level by rounding.
    if (levels[i]!.width / fullWidth >= scale * 0.999) chosen = i;
    else break;
  }
  return chosen;
}
