/**
 * `info.json` for Image API 3.0 and 2.1: the image's size, the tiles and sizes a viewer should
 * ask for (they are cheap: one pyramid tile each, and pre-rendered for big images), the limits,
 * the compliance level (level 2) and what this server supports beyond it.
 *
 * @example
 *   buildInfo({ version: 3, id: 'https://host/iiif/3/a1b2', width: 6000, height: 4000,
 *               limits, tileSize: 512 });
 *   // → { '@context': 'http://iiif.io/api/image/3/context.json', type: 'ImageService3', … }
 */
import type { IiifVersion } from './parse.ts';
import { FORMATS, QUALITIES } from './parse.ts';
import type { ImageLimits } from './resolve.ts';

export const CONTEXT = {
  3: 'http://iiif.io/api/image/3/context.json',
  2: 'http://iiif.io/api/image/2/context.json',
} as const;
export const PROFILE = {
  3: 'http://iiif.io/api/image/3/level2.json',
  2: 'http://iiif.io/api/image/2/level2.json',
} as const;

/** Features beyond level 2 (3.0 names; 2.1 lists every supported feature). */
const EXTRA_FEATURES_3 = [
  'baseUriRedirect',
  'canonicalLinkHeader',
  'cors',
  'jsonldMediaType',
  'mirroring',
  'profileLinkHeader',
  'regionByPct',
  'regionByPx',
  'regionSquare',
  'rotationArbitrary',
  'rotationBy90s',
  'sizeByConfinedWh',
  'sizeByH',
  'sizeByPct',
  'sizeByW',
  'sizeByWh',
  'sizeUpscaling',
];
const SUPPORTS_2 = [
  'baseUriRedirect',
  'canonicalLinkHeader',
  'cors',
  'jsonldMediaType',
  'mirroring',
  'profileLinkHeader',
  'regionByPct',
  'regionByPx',
  'regionSquare',
  'rotationArbitrary',
  'rotationBy90s',
  'sizeAboveFull',
  'sizeByConfinedWh',
  'sizeByDistortedWh',
  'sizeByH',
  'sizeByPct',
  'sizeByW',
  'sizeByWh',
];

export interface InfoInput {
  version: IiifVersion;
  /** The image service's base URI: the request URL without `/info.json`. */
  id: string;
  width: number;
  height: number;
  limits: ImageLimits;
  tileSize: number;
  /** A licence or rights statement URL (the asset's webStatement), when it is one. */
  rights?: string;
  /** Where the pixels come from when it is not the file itself (e.g. a PSD's composite). */
  sourceNote?: string;
}

/** Scale factors 1, 2, 4, … up to the first at which the whole image fits in one tile. */
export function scaleFactors(width: number, height: number, tileSize: number): number[] {
  const out = [1];
  while (Math.ceil(width / out[out.length - 1]!) > tileSize || Math.ceil(height / out[out.length - 1]!) > tileSize) {
    out.push(out[out.length - 1]! * 2);
  }
  return out;
}

/**
 * Whole-image sizes at each scale factor (smallest first) up to four tiles across, within the
 * limits: the sizes worth caching for thumbnails and overviews.
 */
export function advertisedSizes(width: number, height: number, tileSize: number, limits: ImageLimits) {
  return scaleFactors(width, height, tileSize)
    .map((sf) => ({ width: Math.ceil(width / sf), height: Math.ceil(height / sf) }))
    .filter((s) => Math.max(s.width, s.height) <= tileSize * 4 || (s.width === width && s.height === height && width * height <= 1_000_000))
    .filter((s) => s.width <= limits.maxWidth && s.height <= limits.maxHeight && s.width * s.height <= limits.maxArea)
    .reverse();
}

export function buildInfo(input: InfoInput): Record<string, unknown> {
  const { width, height, limits, tileSize } = input;
  const tiles = [{ width: tileSize, height: tileSize, scaleFactors: scaleFactors(width, height, tileSize) }];
  const sizes = advertisedSizes(width, height, tileSize, limits);
  if (input.version === 3) {
    const info: Record<string, unknown> = {
      '@context': CONTEXT[3],
      id: input.id,
      type: 'ImageService3',
      protocol: 'http://iiif.io/api/image',
      profile: 'level2',
      width,
      height,
      maxWidth: limits.maxWidth,
      maxHeight: limits.maxHeight,
      maxArea: limits.maxArea,
      sizes,
      tiles,
      extraQualities: QUALITIES.filter((q) => q !== 'default'),
      extraFormats: FORMATS.filter((f) => f !== 'jpg' && f !== 'png'),
      extraFeatures: EXTRA_FEATURES_3,
    };
    if (input.rights) info.rights = input.rights;
    if (input.sourceNote) info.imagineSource = input.sourceNote;
    return info;
  }
  const info: Record<string, unknown> = {
    '@context': CONTEXT[2],
    '@id': input.id,
    protocol: 'http://iiif.io/api/image',
    width,
    height,
    sizes,
    tiles,
    profile: [
      PROFILE[2],
      {
        formats: [...FORMATS],
        qualities: [...QUALITIES],
        supports: SUPPORTS_2,
        maxWidth: limits.maxWidth,
        maxHeight: limits.maxHeight,
        maxArea: limits.maxArea,
      },
    ],
  };
  if (input.rights) info.license = input.rights;
  if (input.sourceNote) info.imagineSource = input.sourceNote;
  return info;
}

/** A rights value only when it is an http(s) URL (the spec wants a URI there). */
export function rightsUrl(value: unknown): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string' || !/^https?:\/\/[^\s]+$/.test(text.trim())) return undefined;
  return text.trim();
}
