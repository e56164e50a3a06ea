/**
 * The sharp pipeline of one image request: cut the region, scale, mirror, rotate, apply the
 * quality, encode. It knows nothing of HTTP: it takes a resolved `RenderPlan` and a decoded
 * source description and returns a union, content or error.
 *
 * Order (Image API 3.0 §4): EXIF orientation is applied at load (`autoOrient`), so regions are
 * cut from the image as people see it; then region → size → mirror → rotation → quality →
 * format. Output is sRGB (or 8-bit grey for gray and bitonal) with the sRGB profile embedded
 * in colour output; CMYK and 16-bit sources are converted on the way. Rotations that are not a
 * multiple of 90 leave transparent corners where the format has alpha (png, webp, tif, gif)
 * and white ones in JPEG.
 *
 * @example
 *   const result = await renderImage(
 *     { input: '/data/blobs/…', width: 6000, height: 4000, fullWidth: 6000, fullHeight: 4000, autoOrient: true },
 *     plan,
 *   );
 *   if (result.ok) reply.type(result.contentType).send(result.bytes);
 */
import sharp, { type Sharp } from 'sharp';
import { MAX_INPUT_PIXELS } from '../library/probe.ts';
import type { Format } from './parse.ts';
import type { RenderPlan } from './resolve.ts';

export interface RenderSource {
  /** A file path or bytes libvips can read. */
  input: string | Buffer;
  /** Page to read (a pyramid level). */
  page?: number;
  /** Size of what `input` (that page) decodes to, after orientation. */
  width: number;
  height: number;
  /** Size of the full image the plan's coordinates refer to. */
  fullWidth: number;
  fullHeight: number;
  /** Apply EXIF orientation at load (originals; pyramids are stored upright). */
  autoOrient: boolean;
}

export interface RenderOptions {
  /** Seconds before libvips gives up on one image. */
  timeoutSeconds?: number;
  jpegQuality?: number;
}

export type RenderResult =
  | { ok: true; bytes: Buffer; contentType: string }
  | { ok: false; error: { status: 415 | 500; message: string } };

export const CONTENT_TYPES: Record<Format, string> = {
  jpg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  tif: 'image/tiff',
  gif: 'image/gif',
};

const HAS_ALPHA: Record<Format, boolean> = { jpg: false, png: true, webp: true, tif: true, gif: true };
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };
const CLEAR = { r: 0, g: 0, b: 0, alpha: 0 };

/** The region of the plan in the coordinates of the source that is decoded (a pyramid level). */
export function scaledRegion(plan: RenderPlan, source: RenderSource) {
  const sx = source.width / source.fullWidth;
  const sy = source.height / source.fullHeight;
  const r = plan.region;
  const left = Math.min(source.width - 1, Math.floor(r.x * sx));
  const top = Math.min(source.height - 1, Math.floor(r.y * sy));
  const right = Math.min(source.width, Math.max(left + 1, Math.ceil((r.x + r.w) * sx - 1e-9)));
  const bottom = Math.min(source.height, Math.max(top + 1, Math.ceil((r.y + r.h) * sy - 1e-9)));
  return { left, top, width: right - left, height: bottom - top };
}

/** Builds the sharp pipeline of a plan (exported for the benchmark's "sharp alone" baseline). */
export function buildPipeline(source: RenderSource, plan: RenderPlan, options: RenderOptions = {}): Sharp {
  const image = sharp(source.input, {
    limitInputPixels: MAX_INPUT_PIXELS,
    failOn: 'truncated',
    autoOrient: source.autoOrient,
    ...(source.page ? { page: source.page } : {}),
  });
  image.timeout({ seconds: options.timeoutSeconds ?? 30 });
  const area = scaledRegion(plan, source);
  if (area.left !== 0 || area.top !== 0 || area.width !== source.width || area.height !== source.height) {
    image.extract(area);
  }
  if (area.width !== plan.width || area.height !== plan.height) {
    image.resize(plan.width, plan.height, { fit: 'fill', kernel: plan.width > area.width ? 'cubic' : 'lanczos3' });
  }
  if (plan.mirror) image.flop();
  // Bitonal output is one bit per pixel: no alpha, corners white like JPEG.
  const alpha = HAS_ALPHA[plan.format] && plan.quality !== 'bitonal';
  if (plan.rotation % 90 !== 0) {
    if (alpha) image.ensureAlpha();
    image.rotate(plan.rotation, { background: alpha ? CLEAR : WHITE });
  } else if (plan.rotation !== 0) {
    image.rotate(plan.rotation);
  }
  if (!alpha) image.flatten({ background: WHITE });
  if (plan.quality === 'gray' || plan.quality === 'bitonal') {
    image.toColourspace('b-w');
    if (plan.quality === 'bitonal') image.threshold(128, { greyscale: true });
  } else {
    image.withIccProfile('srgb');
  }
  switch (plan.format) {
    case 'jpg':
      image.jpeg({ quality: options.jpegQuality ?? 85, mozjpeg: false, chromaSubsampling: '4:2:0' });
      break;
    case 'png':
      image.png(plan.quality === 'bitonal' ? { palette: true, colours: 2 } : { compressionLevel: 6 });
      break;
    case 'webp':
      image.webp({ quality: 85, effort: 2 });
      break;
    case 'tif':
      image.tiff({ compression: plan.quality === 'bitonal' ? 'ccittfax4' : 'lzw', ...(plan.quality === 'bitonal' ? { bitdepth: 1 } : {}) });
      break;
    case 'gif':
      image.gif();
      break;
  }
  return image;
}

/** Renders a plan. Undecodable sources (corrupt, truncated, over the pixel limit) are 415. */
export async function renderImage(source: RenderSource, plan: RenderPlan, options: RenderOptions = {}): Promise<RenderResult> {
  try {
    const bytes = await buildPipeline(source, plan, options).toBuffer();
    return { ok: true, bytes, contentType: CONTENT_TYPES[plan.format] };
  } catch (error) {
    const message = ((error as Error).message ?? '').split('\n')[0] ?? '';
    if (/timeout/i.test(message)) return { ok: false, error: { status: 500, message: 'rendering took too long' } };
    return { ok: false, error: { status: 415, message: `the source image cannot be decoded: ${message.slice(0, 120)}` } };
  }
}
