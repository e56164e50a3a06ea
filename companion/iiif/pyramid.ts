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
import { ISOLATE_PIXELS, runImageJob, type ImageOp } from '../library/image-child.ts';
import { applyOps, MAX_INPUT_PIXELS } from '../library/probe.ts';

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

/**
 * Writes the pyramid of `source` to `target` (a new file). Rejects for undecodable sources.
 * A file of more than ISOLATE_PIXELS is decoded in a child process (library/image-child.ts):
 * a pyramid of a 268-megapixel TIFF takes ~130 MiB of libvips memory, which then stays with
 * the process that made it.
 */
export async function buildPyramid(source: string | Buffer, target: string, options: PyramidOptions): Promise<void> {
  const inputOptions = {
    limitInputPixels: MAX_INPUT_PIXELS,
    failOn: 'truncated' as const,
    autoOrient: true,
    ...(options.raw ? { raw: options.raw } : {}),
  };
  const image = sharp(source, inputOptions);
  const meta = await image.metadata();
  const grey = meta.channels === 1 || (meta.channels === 2 && meta.hasAlpha) || meta.space === 'b-w' || meta.space === 'grey16';
  const alpha = meta.hasAlpha === true;
  const ops: ImageOp[] = [
    ['toColourspace', grey ? 'b-w' : 'srgb'],
    [
      'tiff',
      {
        tile: true,
        pyramid: true,
        tileWidth: options.tileSize,
        tileHeight: options.tileSize,
        compression: alpha ? 'deflate' : 'jpeg',
        quality: options.quality ?? 90,
      },
    ],
  ];
  if (typeof source === 'string' && meta.width * meta.height > ISOLATE_PIXELS) {
    await runImageJob({ input: source, inputOptions, ops, output: target });
    return;
  }
  await applyOps(image, ops).toFile(target);
}

/** The size of every level of a pyramid, largest first (page n = level n). */
export async function readPyramidLevels(path: string): Promise<Level[]> {
  // The same pixel limit as the originals: sharp's default (16383 x 16383) is smaller, and a
  // 16384-pixel-wide image's pyramid could not be read at all (every tile was a 415).
  const first = await sharp(path, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
  const pages = first.pages ?? 1;
  const levels: Level[] = [];
  for (let page = 0; page < pages; page++) {
    const meta = page === 0 ? first : await sharp(path, { page, limitInputPixels: MAX_INPUT_PIXELS }).metadata();
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
