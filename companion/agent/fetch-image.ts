/**
 * Fetches one image over HTTP for the agent's caches (server thumbnails, relayed IIIF
 * thumbnails): http(s) only, no redirects followed unless asked, a size cap enforced while
 * reading, a deadline for the whole transfer, an `image/*` answer required, and the sha256
 * checked when the server announced one. Every failure is a ProtocolError.
 */
import { createHash } from 'node:crypto';
import { ProtocolError } from '../../shared/errors.ts';

export interface FetchImageOptions {
  fetch: typeof fetch;
  timeoutMs: number;
  maxBytes: number;
  headers?: Record<string, string>;
  /** Lowercase hex sha256 the bytes must have. */
  sha256?: string;
  /** Follow at most this many redirects (http(s) only); default 0. */
  maxRedirects?: number;
}

export interface FetchedImage {
  body: Buffer;
  contentType: string;
  sha256: string;
}

export async function fetchImage(url: string, options: FetchImageOptions): Promise<FetchedImage> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const shown = url.split('?')[0]!.slice(0, 300);
  try {
    let target = url;
    let response: Response | undefined;
    for (let hop = 0; ; hop++) {
      checkHttpUrl(target);
      try {
        response = await options.fetch(target, { headers: options.headers, redirect: 'manual', signal: controller.signal });
      } catch (error) {
        throw controller.signal.aborted
          ? new ProtocolError('ERR_UPSTREAM_TIMEOUT', `${shown} took more than ${options.timeoutMs} ms`, { cause: error })
          : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${shown} could not be reached`, { cause: error });
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location && hop < (options.maxRedirects ?? 0)) {
        response.body?.cancel().catch(() => {});
        target = new URL(location, target).href;
        continue;
      }
      break;
    }
    if (!response.ok) {
      response.body?.cancel().catch(() => {});
      throw new ProtocolError('ERR_UPSTREAM_ERROR', `${shown} answered ${response.status}`, {
        extensions: { remoteStatus: response.status },
      });
    }
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (!contentType.startsWith('image/')) {
      response.body?.cancel().catch(() => {});
      throw new ProtocolError('ERR_UPSTREAM_INVALID', `${shown} is not an image (${contentType || 'no content type'})`);
    }
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      response.body?.cancel().catch(() => {});
      throw new ProtocolError('ERR_UPSTREAM_INVALID', `${shown} is larger than ${options.maxBytes} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of (response.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.length;
        if (size > options.maxBytes) {
          controller.abort();
          throw new ProtocolError('ERR_UPSTREAM_INVALID', `${shown} is larger than ${options.maxBytes} bytes`);
        }
        chunks.push(Buffer.from(chunk));
      }
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      throw controller.signal.aborted
        ? new ProtocolError('ERR_UPSTREAM_TIMEOUT', `${shown} took more than ${options.timeoutMs} ms`, { cause: error })
        : new ProtocolError('ERR_DOWNLOAD_INCOMPLETE', `${shown} ended early`, { cause: error });
    }
    const body = Buffer.concat(chunks);
    const sha256 = createHash('sha256').update(body).digest('hex');
    if (options.sha256 !== undefined && options.sha256 !== sha256) {
      throw new ProtocolError('ERR_DIGEST_MISMATCH', `${shown} does not match its announced sha256`);
    }
    return { body, contentType, sha256 };
  } finally {
    clearTimeout(timer);
  }
}

/** Throws ERR_VALIDATION unless `url` is an absolute http(s) URL without credentials. */
export function checkHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ProtocolError('ERR_VALIDATION', `not a URL: ${JSON.stringify(url.slice(0, 200))}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ProtocolError('ERR_VALIDATION', `only http and https URLs are allowed, not ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) throw new ProtocolError('ERR_VALIDATION', 'URLs with credentials are not allowed');
  return parsed;
}
