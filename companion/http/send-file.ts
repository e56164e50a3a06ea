/**
 * Serves a stored, immutable file: conditional requests (If-None-Match, If-Range), one byte
 * range (RFC 9110 §14), Content-Disposition (RFC 6266 / RFC 8187), HEAD.
 *
 * Range grammar handled (RFC 9110 §14.1.2), the unit case-insensitive:
 *
 *   Range: bytes=first-last | bytes=first- | bytes=-suffix
 *
 * Several ranges are answered with the whole file (200), as §14.2 allows; a malformed header
 * is ignored (200); a range starting past the end, or `bytes=-0`, is 416 with
 * `Content-Range: bytes *\/size`. Range applies to GET only (HEAD ignores it, §14.2).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ProtocolError } from '../../shared/errors.ts';

export interface SendFileOptions {
  path: string;
  size: number;
  /** Strong entity tag with its quotes, e.g. `"<sha256>"`. */
  etag: string;
  contentType: string;
  filename?: string;
  /** Defaults to inline when a filename is given. */
  disposition?: 'inline' | 'attachment';
  cacheControl?: string;
  lastModified?: Date;
}

/** Read size for the file stream: large reads keep throughput up on big originals. */
const HIGH_WATER_MARK = 1024 * 1024;
const STRONG_ETAG = /^"[\x21\x23-\x7e]*"$/;
const ENTITY_TAG = /(W\/)?"([^"]*)"/g;

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'unsatisfiable' }
  | { kind: 'range'; start: number; end: number };

/**
 * Reads a Range header for a representation of `size` bytes. `none` means "send the whole
 * file" (no header, another unit, malformed, or several ranges); `end` is inclusive.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' };
  const match = /^\s*bytes=(.*)$/i.exec(header);
  if (!match) return { kind: 'none' };
  const specs = match[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return { kind: 'none' };
  const spec = specs[0]!;

  const suffix = /^-([0-9]+)$/.exec(spec);
  if (suffix) {
    const length = Number(suffix[1]);
    if (length === 0) return { kind: 'unsatisfiable' };
    if (size === 0) return { kind: 'none' };
    return { kind: 'range', start: Math.max(0, size - length), end: size - 1 };
  }
  const int = /^([0-9]+)-([0-9]*)$/.exec(spec);
  if (!int) return { kind: 'none' };
  const first = Number(int[1]);
  const last = int[2] === '' ? Infinity : Number(int[2]);
  if (last < first) return { kind: 'none' };
  if (first >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start: first, end: Math.min(last, size - 1) };
}

/** If-None-Match (weak comparison, §13.1.2): true when the client's copy is current. */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = etag.slice(1, -1);
  for (const m of header.matchAll(ENTITY_TAG)) if (m[2] === opaque) return true;
  return false;
}

/** If-Range (§13.1.5): a strong ETag equal to ours, or exactly our Last-Modified date. */
function ifRangeHolds(header: string | undefined, etag: string, lastModified: Date | undefined): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"')) return value === etag;
  if (value.startsWith('W/')) return false;
  return lastModified !== undefined && value === lastModified.toUTCString();
}

/** RFC 8187 attr-char: everything else is percent-encoded from UTF-8. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

function encodeRfc8187(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A Content-Disposition value (RFC 6266): `filename="..."` holds a plain-ASCII fallback (accents
 * dropped, anything else that is unsafe becomes `_`), `filename*` the exact UTF-8 name when the
 * two differ. Path parts and control characters are removed from the name first.
 *
 * @example contentDisposition('attachment', 'café.jpg')
 *   // → `attachment; filename="cafe.jpg"; filename*=UTF-8''caf%C3%A9.jpg`
 */
export function contentDisposition(type: 'inline' | 'attachment', filename?: string): string {
  if (filename === undefined) return type;
  const name = (filename.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  if (name === '' || name === '.' || name === '..') return type;
  const fallback = name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^\x20-\x7e]|["\\%]/gu, '_');
  let value = `${type}; filename="${fallback}"`;
  if (fallback !== name) value += `; filename*=UTF-8''${encodeRfc8187(name)}`;
  return value;
}

/** Node types unknown headers as possibly repeated; a repeated one reads as its joined list. */
function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** An empty body: fastify's HEAD handling keeps our Content-Length for a stream, not for `undefined`. */
function noBody(): Readable {
  return Readable.from([]);
}

/**
 * Answers a GET or HEAD with the file. Throws ERR_RANGE_NOT_SATISFIABLE (416) after setting
 * `Content-Range: bytes *\/size`, for the error handler to turn into problem+json. The file
 * descriptor is closed when the stream ends or the client goes away (fastify destroys a stream
 * payload when the response closes early).
 *
 * @example
 *   app.get('/files/:sha', (request, reply) =>
 *     sendFile(request, reply, { path, size, etag: `"${sha}"`, contentType: 'image/jpeg' }));
 */
export async function sendFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: SendFileOptions,
): Promise<FastifyReply> {
  const { size, etag } = file;
  if (!Number.isSafeInteger(size) || size < 0) throw new TypeError(`size must be a byte count, got ${String(size)}`);
  if (!STRONG_ETAG.test(etag)) throw new TypeError(`etag must be a strong entity tag, got ${JSON.stringify(etag)}`);

  const validators = (): void => {
    reply.header('etag', etag);
    if (file.lastModified) reply.header('last-modified', file.lastModified.toUTCString());
    if (file.cacheControl) reply.header('cache-control', file.cacheControl);
  };
  reply.header('accept-ranges', 'bytes');

  if (noneMatch(request.headers['if-none-match'], etag)) {
    validators();
    return reply.code(304).send(noBody());
  }

  const isGet = request.method === 'GET';
  const rangeHeader = request.headers.range;
  const range =
    isGet && ifRangeHolds(headerText(request.headers['if-range']), etag, file.lastModified)
      ? parseRange(rangeHeader, size)
      : ({ kind: 'none' } as const);
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${size}`);
    throw new ProtocolError('ERR_RANGE_NOT_SATISFIABLE', `range "${String(rangeHeader)}" is outside ${size} bytes`, {
      extensions: { size },
    });
  }

  const start = range.kind === 'range' ? range.start : 0;
  const end = range.kind === 'range' ? range.end : size - 1;
  const length = end - start + 1;
  validators();
  reply.header('content-type', file.contentType);
  reply.header('content-length', String(length));
  reply.header('x-content-type-options', 'nosniff');
  if (file.disposition !== undefined || file.filename !== undefined) {
    reply.header('content-disposition', contentDisposition(file.disposition ?? 'inline', file.filename));
  }
  if (range.kind === 'range') {
    reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  } else {
    reply.code(200);
  }

  if (!isGet || length === 0) return reply.send(noBody());
  // Opened here so a missing file fails before any header is sent.
  const handle = await open(file.path, 'r');
  const stream = createReadStream(file.path, { fd: handle, start, end, highWaterMark: HIGH_WATER_MARK });
  return reply.send(stream);
}
