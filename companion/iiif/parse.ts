/**
 * The IIIF Image API request grammar, versions 3.0 and 2.1, as this server implements it.
 * Pure functions: no I/O, no `node:` imports (it can move to `shared/` unchanged).
 *
 *   request   = identifier "/" region "/" size "/" rotation "/" quality "." format
 *             | identifier "/info.json"
 *             | identifier                                  ; redirects to info.json
 *   identifier = asset-id [ "@" version-id ]                 ; each 1*100 of A-Z a-z 0-9 . _ ~ -
 *             | source ":" name                             ; a configured web source (web-source.ts)
 *                                                           ; the segment is percent-decoded first
 *   source    = 1*32 ( a-z | 0-9 | "-" )
 *   name      = 1*3000 of any character but controls        ; not "." or ".."; "/" only as %2F
 *   region    = "full" | "square" | int "," int "," int "," int
 *             | "pct:" dec "," dec "," dec "," dec           ; each dec <= 100
 *   size 3.0  = [ "^" ] ( "max" | int "," | "," int | "pct:" dec | int "," int | "!" int "," int )
 *   size 2.1  = "full" | "max" | int "," | "," int | "pct:" dec | int "," int | "!" int "," int
 *   rotation  = [ "!" ] dec                                  ; 0 <= dec <= 360
 *   quality   = "default" | "color" | "gray" | "bitonal"
 *   format    = "jpg" | "png" | "webp" | "tif" | "gif"       ; "jp2" "pdf": valid, 501
 *   int       = 1*9DIGIT                                     ; no sign
 *   dec       = 1*9DIGIT [ "." 1*6DIGIT ]
 *
 * Errors follow the spec's statuses: 400 for anything that does not match the grammar (and, in
 * 3.0, a percentage size above 100 without "^", or size `full`), 404 for an identifier that
 * cannot name anything here (so `../etc/passwd` is simply unknown), 501 for a valid request
 * this server does not implement. Limits that depend on the image (regions outside it,
 * upscaling, maxArea) are checked by `resolveImageRequest()` in resolve.ts.
 *
 * @example
 *   validateIiifPath(3, 'a1b2@v2/full/max/0/default.jpg');
 *   // → { ok: true, value: { kind: 'image', identifier: { asset: 'a1b2', version: 'v2' }, ... } }
 */

export type IiifVersion = 2 | 3;
export type IiifStatus = 400 | 404 | 501;

export interface IiifError {
  status: IiifStatus;
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: IiifError };

/** A library asset, its current version or a named one. */
export interface AssetIdentifier {
  asset: string;
  version?: string;
}

/** An image of a configured web source: `{source}:{name}` (what the name means is the source's). */
export interface WebIdentifier {
  source: string;
  name: string;
}

export type Identifier = AssetIdentifier | WebIdentifier;

export function isWebIdentifier(identifier: Identifier): identifier is WebIdentifier {
  return 'source' in identifier;
}

export type Region =
  | { kind: 'full' }
  | { kind: 'square' }
  | { kind: 'pixels'; x: number; y: number; w: number; h: number }
  | { kind: 'percent'; x: number; y: number; w: number; h: number };

export type Size =
  | { kind: 'max'; upscale: boolean }
  /** 2.1 only: the full size (deprecated there, an error in 3.0). */
  | { kind: 'full' }
  | { kind: 'width'; w: number; upscale: boolean }
  | { kind: 'height'; h: number; upscale: boolean }
  | { kind: 'percent'; n: number; upscale: boolean }
  | { kind: 'exact'; w: number; h: number; upscale: boolean }
  | { kind: 'confined'; w: number; h: number; upscale: boolean };

export interface Rotation {
  degrees: number;
  mirror: boolean;
}

export const QUALITIES = ['default', 'color', 'gray', 'bitonal'] as const;
export type Quality = (typeof QUALITIES)[number];
export const FORMATS = ['jpg', 'png', 'webp', 'tif', 'gif'] as const;
export type Format = (typeof FORMATS)[number];
/** Formats the spec names that this server does not produce: 501, not 400. */
const KNOWN_UNSUPPORTED_FORMATS = new Set(['jp2', 'pdf']);

export interface ImageRequest {
  kind: 'image';
  version: IiifVersion;
  identifier: Identifier;
  region: Region;
  size: Size;
  rotation: Rotation;
  quality: Quality;
  format: Format;
}

export type IiifRequest =
  | ImageRequest
  | { kind: 'info'; version: IiifVersion; identifier: Identifier }
  | { kind: 'base'; version: IiifVersion; identifier: Identifier };

const ID_PART = /^[A-Za-z0-9._~-]{1,100}$/;
const WEB_ID = /^([a-z0-9-]{1,32}):([^\x00-\x1f\x7f]{1,3000})$/;
const INT = /^\d{1,9}$/;
const DEC = /^\d{1,9}(?:\.\d{1,6})?$/;

const fail = (status: IiifStatus, message: string): { ok: false; error: IiifError } => ({
  ok: false,
  error: { status, message },
});
const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

/** A thrown IIIF error (from `parseIiifPath`). */
export class IiifRequestError extends Error {
  override readonly name = 'IiifRequestError';
  constructor(readonly status: IiifStatus, message: string) {
    super(message);
  }
}

/**
 * Parses the path after `{iiif}/{version}/` (still percent-encoded, without the query) into a
 * request, or a typed error. Never throws.
 */
export function validateIiifPath(version: IiifVersion, rawPath: string): Result<IiifRequest> {
  // Room for a trusted_web name (a base64url URL) plus the parameters.
  if (rawPath.length > 4500) return fail(400, 'request path too long');
  const raw = rawPath.split('/');
  const segments: string[] = [];
  for (const part of raw) {
    try {
      segments.push(decodeURIComponent(part));
    } catch {
      return fail(400, 'malformed percent-encoding');
    }
  }
  if (segments.length === 0 || segments[0] === '') return fail(404, 'no identifier');
  const identifier = validateIdentifier(segments[0]!);
  if (segments.length === 1) {
    return identifier.ok ? ok({ kind: 'base', version, identifier: identifier.value }) : identifier;
  }
  if (segments.length === 2 && segments[1] === 'info.json') {
    return identifier.ok ? ok({ kind: 'info', version, identifier: identifier.value }) : identifier;
  }
  if (segments.length !== 5) return fail(400, 'expected {identifier}/{region}/{size}/{rotation}/{quality}.{format}');
  // Syntax first, so a bad parameter is 400 whatever the identifier.
  const [, regionText, sizeText, rotationText, qualityFormat] = segments as [string, string, string, string, string];
  const region = validateRegion(regionText);
  if (!region.ok) return region;
  const size = validateSize(version, sizeText);
  if (!size.ok) return size;
  const rotation = validateRotation(rotationText);
  if (!rotation.ok) return rotation;
  const qf = validateQualityFormat(qualityFormat);
  if (!qf.ok) return qf;
  if (!identifier.ok) return identifier;
  return ok({
    kind: 'image',
    version,
    identifier: identifier.value,
    region: region.value,
    size: size.value,
    rotation: rotation.value,
    quality: qf.value.quality,
    format: qf.value.format,
  });
}

/** As `validateIiifPath`, throwing an `IiifRequestError`. */
export function parseIiifPath(version: IiifVersion, rawPath: string): IiifRequest {
  const result = validateIiifPath(version, rawPath);
  if (!result.ok) throw new IiifRequestError(result.error.status, result.error.message);
  return result.value;
}

export function isValidIiifPath(version: IiifVersion, rawPath: string): boolean {
  return validateIiifPath(version, rawPath).ok;
}

/**
 * A decoded identifier: `asset`, `asset@version` or `source:name`. Anything else is unknown
 * here: 404. Whether a source exists and accepts the name is the web sources' check (also 404).
 */
export function validateIdentifier(text: string): Result<Identifier> {
  const web = WEB_ID.exec(text);
  if (web) {
    const name = web[2]!;
    if (name === '.' || name === '..') return fail(404, 'unknown identifier');
    return ok({ source: web[1]!, name });
  }
  const at = text.indexOf('@');
  const asset = at === -1 ? text : text.slice(0, at);
  const version = at === -1 ? undefined : text.slice(at + 1);
  if (!ID_PART.test(asset) || (version !== undefined && !ID_PART.test(version)) || asset === '.' || asset === '..') {
    return fail(404, 'unknown identifier');
  }
  return ok(version === undefined ? { asset } : { asset, version });
}

export function validateRegion(text: string): Result<Region> {
  if (text === 'full') return ok({ kind: 'full' });
  if (text === 'square') return ok({ kind: 'square' });
  const percent = text.startsWith('pct:');
  const parts = (percent ? text.slice(4) : text).split(',');
  if (parts.length !== 4 || !parts.every((p) => (percent ? DEC : INT).test(p))) {
    return fail(400, `invalid region "${clip(text)}"`);
  }
  const [x, y, w, h] = parts.map(Number) as [number, number, number, number];
  if (w <= 0 || h <= 0) return fail(400, 'region width and height must be greater than zero');
  if (percent) {
    if (x > 100 || y > 100 || w > 100 || h > 100) return fail(400, 'region percentages must not exceed 100');
    return ok({ kind: 'percent', x, y, w, h });
  }
  return ok({ kind: 'pixels', x, y, w, h });
}

export function validateSize(version: IiifVersion, text: string): Result<Size> {
  let body = text;
  let upscale = false;
  if (body.startsWith('^')) {
    if (version === 2) return fail(400, 'size "^" is IIIF 3.0 syntax');
    upscale = true;
    body = body.slice(1);
  }
  if (body === 'max') return ok({ kind: 'max', upscale });
  if (body === 'full') {
    if (version === 3) return fail(400, 'size "full" is not valid in IIIF 3.0; use "max"');
    return ok({ kind: 'full' });
  }
  if (body.startsWith('pct:')) {
    const n = body.slice(4);
    if (!DEC.test(n) || Number(n) <= 0) return fail(400, `invalid size "${clip(text)}"`);
    if (version === 3 && !upscale && Number(n) > 100) return fail(400, 'size above 100% needs "^"');
    return ok({ kind: 'percent', n: Number(n), upscale: upscale || version === 2 });
  }
  const confined = body.startsWith('!');
  if (confined) body = body.slice(1);
  const parts = body.split(',');
  if (parts.length !== 2) return fail(400, `invalid size "${clip(text)}"`);
  const [wText, hText] = parts as [string, string];
  const w = wText === '' ? undefined : INT.test(wText) ? Number(wText) : NaN;
  const h = hText === '' ? undefined : INT.test(hText) ? Number(hText) : NaN;
  if (Number.isNaN(w) || Number.isNaN(h) || (w === undefined && h === undefined) || w === 0 || h === 0) {
    return fail(400, `invalid size "${clip(text)}"`);
  }
  // 2.1 has no "^": every form may upscale (the server advertises sizeAboveFull).
  const up = upscale || version === 2;
  if (confined) {
    if (w === undefined || h === undefined) return fail(400, `invalid size "${clip(text)}"`);
    return ok({ kind: 'confined', w, h, upscale: up });
  }
  if (w !== undefined && h !== undefined) return ok({ kind: 'exact', w, h, upscale: up });
  if (w !== undefined) return ok({ kind: 'width', w, upscale: up });
  return ok({ kind: 'height', h: h!, upscale: up });
}

export function validateRotation(text: string): Result<Rotation> {
  const mirror = text.startsWith('!');
  const number = mirror ? text.slice(1) : text;
  if (!DEC.test(number)) return fail(400, `invalid rotation "${clip(text)}"`);
  const degrees = Number(number);
  if (degrees > 360) return fail(400, 'rotation must be between 0 and 360');
  return ok({ degrees: degrees === 360 ? 0 : degrees, mirror });
}

export function validateQualityFormat(text: string): Result<{ quality: Quality; format: Format }> {
  const dot = text.lastIndexOf('.');
  if (dot <= 0) return fail(400, 'expected {quality}.{format}');
  const quality = text.slice(0, dot);
  const format = text.slice(dot + 1);
  if (!(QUALITIES as readonly string[]).includes(quality)) return fail(400, `unknown quality "${clip(quality)}"`);
  if (KNOWN_UNSUPPORTED_FORMATS.has(format)) return fail(501, `format "${format}" is not implemented`);
  if (!(FORMATS as readonly string[]).includes(format)) return fail(400, `unknown format "${clip(format)}"`);
  return ok({ quality: quality as Quality, format: format as Format });
}

/** Bounded, printable echo of client input for messages. */
function clip(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 40 ? `${printable.slice(0, 40)}...` : printable;
}
