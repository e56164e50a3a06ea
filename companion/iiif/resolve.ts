/**
 * A parsed image request applied to an image of known size: the pixel region to cut, the
 * output size, and the canonical request (Image API 3.0 §4 and 2.1 §4, "canonical URI
 * syntax"). The checks that need the image's size live here:
 *
 * - a region entirely outside the image, or that rounds to nothing → 400; a region partly
 *   outside is cut to the image;
 * - a size larger than the region without "^" (3.0) → 400;
 * - a size beyond maxWidth / maxHeight / maxArea → 404 (`max` is scaled down to fit instead).
 *
 * Pure functions; the render pipeline and the cache key both start from a `RenderPlan`.
 */
import type { Format, IiifError, ImageRequest, IiifVersion, Quality, Result } from './parse.ts';

export interface ImageLimits {
  maxWidth: number;
  maxHeight: number;
  maxArea: number;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What to render, in pixels of the (orientation-corrected) image. */
export interface RenderPlan {
  region: Rect;
  width: number;
  height: number;
  rotation: number;
  mirror: boolean;
  quality: Quality;
  format: Format;
  /** The canonical form of the request (without identifier), for the Link header. */
  canonical: string;
}

const fail = (status: 400 | 404, message: string): { ok: false; error: IiifError } => ({ ok: false, error: { status, message } });

export function resolveImageRequest(
  request: ImageRequest,
  image: { width: number; height: number },
  limits: ImageLimits,
): Result<RenderPlan> {
  const region = resolveRegion(request, image);
  if (!region.ok) return region;
  const size = resolveSize(request, region.value, limits);
  if (!size.ok) return size;
  const { w, h } = size.value;
  if (w > limits.maxWidth || h > limits.maxHeight || w * h > limits.maxArea) {
    return fail(404, `requested size ${w}x${h} is beyond the limits of this image service`);
  }
  const r = region.value;
  const full = r.x === 0 && r.y === 0 && r.w === image.width && r.h === image.height;
  const plan: Omit<RenderPlan, 'canonical'> = {
    region: r,
    width: w,
    height: h,
    rotation: request.rotation.degrees,
    mirror: request.rotation.mirror,
    quality: request.quality,
    format: request.format,
  };
  return { ok: true, value: { ...plan, canonical: canonicalPath(request.version, plan, full, size.value.max) } };
}

function resolveRegion(request: ImageRequest, image: { width: number; height: number }): Result<Rect> {
  const { width: W, height: H } = image;
  const region = request.region;
  let rect: Rect;
  switch (region.kind) {
    case 'full':
      return { ok: true, value: { x: 0, y: 0, w: W, h: H } };
    case 'square': {
      const side = Math.min(W, H);
      return { ok: true, value: { x: Math.floor((W - side) / 2), y: Math.floor((H - side) / 2), w: side, h: side } };
    }
    case 'pixels':
      rect = { ...region };
      break;
    case 'percent':
      rect = {
        x: Math.floor((region.x * W) / 100),
        y: Math.floor((region.y * H) / 100),
        w: Math.round((region.w * W) / 100),
        h: Math.round((region.h * H) / 100),
      };
      break;
  }
  if (rect.x >= W || rect.y >= H) return fail(400, 'region is entirely outside the image');
  rect.w = Math.min(rect.w, W - rect.x);
  rect.h = Math.min(rect.h, H - rect.y);
  if (rect.w < 1 || rect.h < 1) return fail(400, 'region is smaller than one pixel');
  return { ok: true, value: rect };
}

function resolveSize(
  request: ImageRequest,
  region: Rect,
  limits: ImageLimits,
): Result<{ w: number; h: number; max: boolean }> {
  const size = request.size;
  const { w: rw, h: rh } = region;
  let w: number;
  let h: number;
  let upscale = false;
  switch (size.kind) {
    case 'full':
      return { ok: true, value: { w: rw, h: rh, max: true } };
    case 'max': {
      // The largest size within the limits; "^max" may go above the region, "max" may not.
      const scale = Math.min(
        size.upscale ? Infinity : 1,
        limits.maxWidth / rw,
        limits.maxHeight / rh,
        Math.sqrt(limits.maxArea / (rw * rh)),
      );
      if (scale >= 1 && !size.upscale) return { ok: true, value: { w: rw, h: rh, max: true } };
      w = Math.max(1, Math.floor(rw * scale));
      h = Math.max(1, Math.floor(rh * scale));
      return { ok: true, value: { w, h, max: true } };
    }
    case 'width':
      w = size.w;
      h = Math.max(1, Math.round((rh * w) / rw));
      upscale = size.upscale;
      break;
    case 'height':
      h = size.h;
      w = Math.max(1, Math.round((rw * h) / rh));
      upscale = size.upscale;
      break;
    case 'percent':
      w = Math.max(1, Math.round((rw * size.n) / 100));
      h = Math.max(1, Math.round((rh * size.n) / 100));
      upscale = size.upscale;
      break;
    case 'exact':
      w = size.w;
      h = size.h;
      upscale = size.upscale;
      break;
    case 'confined': {
      const scale = Math.min(size.w / rw, size.h / rh);
      w = Math.max(1, Math.min(size.w, Math.round(rw * scale)));
      h = Math.max(1, Math.min(size.h, Math.round(rh * scale)));
      upscale = size.upscale;
      break;
    }
  }
  if (!upscale && (w > rw || h > rh)) {
    return fail(400, `size ${w}x${h} is larger than the region ${rw}x${rh}; use "^" to upscale`);
  }
  return { ok: true, value: { w, h, max: w === rw && h === rh } };
}

/** `{region}/{size}/{rotation}/{quality}.{format}` in the version's canonical form. */
function canonicalPath(version: IiifVersion, plan: Omit<RenderPlan, 'canonical'>, fullRegion: boolean, max: boolean): string {
  const r = plan.region;
  const region = fullRegion ? 'full' : `${r.x},${r.y},${r.w},${r.h}`;
  let size: string;
  if (version === 3) {
    const up = plan.width > r.w || plan.height > r.h ? '^' : '';
    size = max ? `${up}max` : `${up}${plan.width},${plan.height}`;
  } else {
    const keepsRatio = plan.height === Math.max(1, Math.round((r.h * plan.width) / r.w));
    if (plan.width === r.w && plan.height === r.h) size = 'full';
    else size = keepsRatio ? `${plan.width},` : `${plan.width},${plan.height}`;
  }
  const rotation = `${plan.mirror ? '!' : ''}${formatNumber(plan.rotation)}`;
  return `${region}/${size}/${rotation}/${plan.quality}.${plan.format}`;
}

function formatNumber(n: number): string {
  return String(Number(n.toFixed(6)));
}

/** The part of a plan that decides the pixels (cache key input; version-independent). */
export function planKey(plan: RenderPlan): string {
  const r = plan.region;
  return `${r.x},${r.y},${r.w},${r.h}/${plan.width},${plan.height}/${plan.mirror ? '!' : ''}${formatNumber(plan.rotation)}/${plan.quality}.${plan.format}`;
}
