/**
 * A small tus 1.0 client over fetch, for the server's resumable uploads
 * (companion/routes/uploads.ts): create with `Upload-Length` and `Upload-Metadata`, then
 * `PATCH` the file from the offset the server has. A known upload URL is asked for its offset
 * first (`HEAD`), so an upload cut by a lost connection, a server restart or an agent restart
 * continues where it broke instead of starting over.
 *
 * The server's answers: the last PATCH carries `Imagine-Asset` and `Imagine-Version`; creating
 * an upload whose `idempotencyKey` already made a version answers 200 with the same headers
 * (nothing is uploaded again). Refusals are problem documents, thrown as their ProtocolError.
 */
import { createReadStream } from 'node:fs';
import { PROBLEM_CONTENT_TYPE, ProtocolError, fromProblem } from '../../shared/errors.ts';

export const TUS_VERSION = '1.0.0';

export interface TusUploadOptions {
  fetch: typeof fetch;
  /** The server's uploads endpoint (`{api}/uploads`). */
  endpoint: string;
  token?: string;
  path: string;
  size: number;
  metadata: Record<string, string | undefined>;
  /** An upload URL from an earlier attempt, to resume. */
  uploadUrl?: string;
  /** Called (and awaited) with a new upload's URL before any byte is sent, to be remembered. */
  onCreated?: (url: string) => Promise<void> | void;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Abort a request when nothing moves for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface TusResult {
  assetId: string;
  version: string;
  /** The server answered an earlier upload's result (idempotency key seen before). */
  replayed: boolean;
}

const PROGRESS_EVERY_BYTES = 256 * 1024;

function encodeMetadata(metadata: Record<string, string | undefined>): string {
  return Object.entries(metadata)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')
    .map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',');
}

async function failure(response: Response, what: string): Promise<ProtocolError> {
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const type = response.headers.get('content-type') ?? '';
  if (body && typeof body === 'object' && (type.startsWith(PROBLEM_CONTENT_TYPE) || typeof (body as { code?: unknown }).code === 'string')) {
    return fromProblem(body, response.status);
  }
  return new ProtocolError('ERR_UPSTREAM_ERROR', `${what} answered ${response.status}`, {
    status: response.status,
    extensions: { remoteStatus: response.status },
  });
}

function resultOf(response: Response): TusResult | undefined {
  const assetId = response.headers.get('imagine-asset');
  const version = response.headers.get('imagine-version');
  if (!assetId || !version) return undefined;
  return { assetId, version, replayed: response.headers.get('idempotent-replayed') === 'true' };
}

/** Uploads (or resumes) the file; answers the asset and version it became. */
export async function tusUpload(options: TusUploadOptions): Promise<TusResult> {
  const base: Record<string, string> = { 'Tus-Resumable': TUS_VERSION };
  if (options.token) base.Authorization = `Bearer ${options.token}`;
  const idleMs = options.idleTimeoutMs ?? 60_000;

  /** One request, aborted by the caller's signal or when idle; `touch()` marks progress. */
  const call = async (url: string, init: RequestInit & { duplex?: 'half' }, what: string, body?: (touch: () => void) => AsyncIterable<Uint8Array>) => {
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new Error(`no progress for ${idleMs} ms`)), idleMs);
    };
    touch();
    const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
    try {
      if (body) {
        init.body = body(touch) as unknown as BodyInit;
        init.duplex = 'half';
      }
      return await options.fetch(url, { ...init, signal, redirect: 'manual' });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${what} failed: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  };

  let url = options.uploadUrl;
  let offset = 0;
  if (url) {
    const head = await call(url, { method: 'HEAD', headers: base }, 'HEAD upload');
    if (head.ok) {
      offset = Number(head.headers.get('upload-offset'));
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > options.size) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the upload answered a wrong Upload-Offset');
      }
      if (offset === options.size) {
        // Every byte is there and the server is still turning it into a version: ask again later.
        throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'the server is still finishing this upload');
      }
    } else if (head.status === 404 || head.status === 410) {
      url = undefined; // finished (its key tells the result) or expired: create again
    } else {
      throw await failure(head, 'HEAD upload');
    }
  }

  if (!url) {
    const created = await call(
      options.endpoint,
      {
        method: 'POST',
        headers: { ...base, 'Upload-Length': String(options.size), 'Upload-Metadata': encodeMetadata(options.metadata) },
      },
      'POST upload',
    );
    if (created.status === 200) {
      await created.body?.cancel().catch(() => {});
      const replay = resultOf(created);
      if (replay) return replay;
      throw new ProtocolError('ERR_UPSTREAM_INVALID', 'creating the upload answered 200 without a result');
    }
    if (created.status !== 201) throw await failure(created, 'POST upload');
    await created.body?.cancel().catch(() => {});
    const location = created.headers.get('location');
    if (!location) throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the created upload has no Location');
    url = new URL(location, options.endpoint).href;
    await options.onCreated?.(url);
    offset = 0;
  }

  options.onProgress?.(offset, options.size);
  const start = offset;
  const stream = async function* (touch: () => void): AsyncIterable<Uint8Array> {
    let sent = start;
    let reported = start;
    for await (const chunk of createReadStream(options.path, { start, highWaterMark: 1024 * 1024 })) {
      touch();
      yield chunk as Buffer;
      sent += (chunk as Buffer).length;
      if (sent - reported >= PROGRESS_EVERY_BYTES) {
        reported = sent;
        options.onProgress?.(sent, options.size);
      }
    }
  };
  const patched = await call(
    url,
    {
      method: 'PATCH',
      headers: {
        ...base,
        'Upload-Offset': String(start),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(options.size - start),
      },
    },
    'PATCH upload',
    stream,
  );
  if (patched.status !== 204 && patched.status !== 200) throw await failure(patched, 'PATCH upload');
  await patched.body?.cancel().catch(() => {});
  const result = resultOf(patched);
  if (result) {
    options.onProgress?.(options.size, options.size);
    return result;
  }
  const reached = Number(patched.headers.get('upload-offset'));
  throw new ProtocolError('ERR_UPLOAD_INCOMPLETE', `the upload stopped at ${Number.isFinite(reached) ? reached : '?'} of ${options.size} bytes`);
}
