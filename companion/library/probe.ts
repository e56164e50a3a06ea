/**
 * What a file is: format, pixel size (after EXIF orientation) and a thumbnail. sharp decodes
 * what libvips can; formats it cannot (PSD, some camera raws) are accepted when exiftool
 * recognises an image, without a thumbnail for now. SVG is refused: a library serves files
 * to browsers, and SVG carries script.
 */
import sharp, { type Sharp } from 'sharp';
import { ProtocolError } from '../../shared/errors.ts';
import { getExiftool } from '../metadata/exiftool.ts';
import { decodePsdComposite, PSD_MEDIA_TYPES, psdPreview, readPsd } from '../iiif/psd.ts';
import { ISOLATE_PIXELS, runImageJob, type ImageOp } from './image-child.ts';

/** Decompression-bomb guard: 300 megapixels. */
export const MAX_INPUT_PIXELS = 300_000_000;
export const THUMBNAIL_SIZE = 512;

export interface ImageProbe {
  mediaType: string;
  width?: number;
  height?: number;
  /** true when sharp can decode it (thumbnails and IIIF possible). */
  decodable: boolean;
}

const SHARP_MEDIA_TYPES: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  tiff: 'image/tiff',
  gif: 'image/gif',
  heif: 'image/heif',
  avif: 'image/avif',
  jp2: 'image/jp2',
  jxl: 'image/jxl',
};

/** Image formats whose MIME type is not under image/ (exiftool's names). */
const EXTRA_IMAGE_TYPES = PSD_MEDIA_TYPES;

export async function probeImage(path: string): Promise<ImageProbe> {
  try {
    const meta = await sharp(path, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    if (meta.format === 'svg') throw new ProtocolError('ERR_NOT_AN_IMAGE', 'SVG files are not accepted');
    const mediaType = (meta.format && SHARP_MEDIA_TYPES[meta.format]) || undefined;
    if (mediaType && meta.width && meta.height) {
      const swap = (meta.orientation ?? 1) >= 5;
      return {
        mediaType,
        width: swap ? meta.height : meta.width,
        height: swap ? meta.width : meta.height,
        decodable: true,
      };
    }
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    if (/pixel limit/i.test((error as Error).message)) {
      throw new ProtocolError('ERR_NOT_AN_IMAGE', `image is larger than ${MAX_INPUT_PIXELS} pixels`);
    }
  }
  // Not decodable by libvips: accept what exiftool knows as an image (PSD, camera raw...).
  const tags = await getExiftool()
    .read(path)
    .catch(() => undefined);
  const mime = tags?.MIMEType;
  if (!mime || !(mime.startsWith('image/') || EXTRA_IMAGE_TYPES.has(mime)) || mime === 'image/svg+xml') {
    throw new ProtocolError('ERR_NOT_AN_IMAGE', 'the file is not an image this library can read');
  }
  const width = typeof tags.ImageWidth === 'number' ? tags.ImageWidth : undefined;
  const height = typeof tags.ImageHeight === 'number' ? tags.ImageHeight : undefined;
  return { mediaType: mime, width, height, decodable: false };
}

/**
 * The pixels of a file as sharp input: the file itself, or for Photoshop files (which libvips
 * cannot read) the flattened composite, else the embedded JPEG preview.
 */
async function pixelSource(source: string, mediaType: string): Promise<Sharp> {
  if (!PSD_MEDIA_TYPES.has(mediaType)) return sharp(source, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'truncated' });
  const bytes = await readPsd(source);
  try {
    const { pixels, width, height, channels } = decodePsdComposite(bytes);
    return sharp(pixels, { raw: { width, height, channels } });
  } catch {
    const preview = psdPreview(bytes);
    if (!preview) throw new ProtocolError('ERR_NOT_AN_IMAGE', 'the Photoshop file has neither a composite nor a preview');
    return sharp(preview);
  }
}

/** Whether a thumbnail can be made of this kind of file. */
export function canRender(probe: ImageProbe): boolean {
  return probe.decodable || PSD_MEDIA_TYPES.has(probe.mediaType);
}

/** The thumbnail pipeline: longest side THUMBNAIL_SIZE, EXIF orientation applied, sRGB JPEG. */
const THUMBNAIL_OPS: ImageOp[] = [
  ['rotate'],
  ['resize', THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true }],
  ['toColourspace', 'srgb'],
  ['jpeg', { quality: 80, mozjpeg: false }],
];

/** Applies pipeline steps (as image-child.ts describes them) to an in-process image. */
export function applyOps(image: Sharp, ops: readonly ImageOp[]): Sharp {
  let out = image;
  for (const [method, ...args] of ops) out = (out[method as keyof Sharp] as (...a: unknown[]) => Sharp).apply(out, args);
  return out;
}

/**
 * Whether a thumbnail is made in a child process (image-child.ts): images libvips decodes
 * whole, above ISOLATE_PIXELS. JPEGs shrink on load (a 96-megapixel one costs ~8 MiB here),
 * Photoshop composites are decoded by our own code: both stay in-process.
 */
export function thumbnailInChild(probe: Pick<ImageProbe, 'mediaType' | 'width' | 'height' | 'decodable'>): boolean {
  if (!probe.decodable || probe.mediaType === 'image/jpeg' || !probe.width || !probe.height) return false;
  return probe.width * probe.height > ISOLATE_PIXELS;
}

/**
 * Writes a JPEG thumbnail (longest side THUMBNAIL_SIZE, EXIF orientation applied, sRGB); in a
 * child process when `inChild` (see thumbnailInChild). Rejects with sharp's message when the
 * pixels cannot be decoded or the target cannot be written, with an ImageChildError when the
 * child could not finish.
 */
export async function writeThumbnail(source: string, target: string, mediaType = '', options: { inChild?: boolean } = {}): Promise<void> {
  if (options.inChild && !PSD_MEDIA_TYPES.has(mediaType)) {
    await runImageJob({ input: source, inputOptions: { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'truncated' }, ops: THUMBNAIL_OPS, output: target });
    return;
  }
  await applyOps(await pixelSource(source, mediaType), THUMBNAIL_OPS).toFile(target);
}
