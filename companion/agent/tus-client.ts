/**
 * A small tus 1.0 client for the server's resumable uploads (companion/routes/uploads.ts):
 * create with `Upload-Length` and `Upload-Metadata`, then `PATCH` the file from the offset the
 * server has. A known upload URL is asked for its offset first (`HEAD`), so an upload cut by a
 * lost connection, a server restart or an agent restart continues where it broke instead of
 * starting over; one whose every byte is there but that was never finished (the server stopped
 * in between) is finished by an empty PATCH at its end.
 *
 * The file's sha256 is either in `metadata` (declared at creation: the server finishes the
 * upload with its last byte), or, without it, declared after the bytes: the file is hashed
 * while it is sent (the bytes read for the PATCH, no second read; a resumed upload reads the
 * whole file before its end, unless the caller knows the digest), `onDigest` is told (and
 * awaited) and a final empty PATCH at the upload's end carries `Imagine-Sha256`, which the
 * server checks and answers with the result (docs/protocol.md, uploads). A server from before
 * that extension refuses the creation without `sha256` (ERR_VALIDATION): the file is then
 * hashed first and the creation repeated with it.
 *
 * HEAD and POST go through `fetch`; the PATCH body goes from the file to the socket through
 * node streams (`node:http`/`node:https`, 1 MiB reads): fetch's web streams cost more than the
 * rest of a 200 MB upload on loopback (docs/decisions.md, "save-back speed").
 *
 * The server's answers: the last PATCH carries `Imagine-Asset` and `Imagine-Version`; creating
 * an upload whose `idempotencyKey` already made a version answers 200 with the same headers
 * (nothing is uploaded again). Refusals are problem documents, thrown as their ProtocolError.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
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
  /**
   * Without `metadata.sha256`: the file's digest when already known (a retry), else it is
   * computed while the file is sent.
   */
  sha256?: string;
  /** Without `metadata.sha256`: called (and awaited) with the digest before the final PATCH declares it. */
  onDigest?: (sha256: string) => Promise<void> | void;
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
    } else if (head.status === 404 || head.status === 410) {
      url = undefined; // finished (its key tells the result) or expired: create again
    } else {
      throw await failure(head, 'HEAD upload');
    }
  }

  let deferred = options.metadata.sha256 === undefined || options.metadata.sha256 === '';
  let digest = deferred ? options.sha256 : undefined;
  if (!url) {
    const create = (metadata: Record<string, string | undefined>) =>
      call(
        options.endpoint,
        { method: 'POST', headers: { ...base, 'Upload-Length': String(options.size), 'Upload-Metadata': encodeMetadata(metadata) } },
        'POST upload',
      );
    let created = await create(options.metadata);
    if (deferred && created.status === 400) {
      // A server from before the digest could follow the bytes wants it now: hash, then declare it.
      const refusal = await failure(created, 'POST upload');
      if (refusal.code !== 'ERR_VALIDATION' || !/sha256/i.test(refusal.message)) throw refusal;
      digest ??= await hashFile(options.path, options.size);
      await options.onDigest?.(digest);
      deferred = false;
      created = await create({ ...options.metadata, sha256: digest });
    }
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
  if (deferred && offset < options.size) {
    // The bytes, hashed as they are read when they are the whole file and the digest is unknown.
    const hash = digest === undefined && offset === 0 ? createHash('sha256') : undefined;
    const patched = await patchFile({ ...options, url, start: offset, headers: base, idleMs, hash });
    if (patched.status !== 204 && patched.status !== 200) throw await failure(patched, 'PATCH upload');
    const result = resultOf(patched);
    if (result) {
      options.onProgress?.(options.size, options.size);
      return result;
    }
    const reached = Number(patched.headers.get('upload-offset'));
    if (reached !== options.size) {
      throw new ProtocolError('ERR_UPLOAD_INCOMPLETE', `the upload stopped at ${Number.isFinite(reached) ? reached : '?'} of ${options.size} bytes`);
    }
    if (hash && patched.hashed === options.size) digest = hash.digest('hex');
  }
  if (deferred) {
    digest ??= await hashFile(options.path, options.size);
    await options.onDigest?.(digest);
  }
  // The final PATCH: the digest declared after the bytes (an empty PATCH at the end), or, with
  // the digest declared at creation, the rest of the file. Every byte is there already when the
  // server stopped before finishing: the empty PATCH at the end finishes it (409 while the
  // server is still at it).
  const headers = deferred && digest !== undefined ? { ...base, 'Imagine-Sha256': digest } : base;
  const patched = await patchFile({ ...options, url, start: deferred ? options.size : offset, headers, idleMs });
  if (patched.status !== 204 && patched.status !== 200) throw await failure(patched, 'PATCH upload');
  const result = resultOf(patched);
  if (result) {
    options.onProgress?.(options.size, options.size);
    return result;
  }
  const reached = Number(patched.headers.get('upload-offset'));
  throw new ProtocolError('ERR_UPLOAD_INCOMPLETE', `the upload stopped at ${Number.isFinite(reached) ? reached : '?'} of ${options.size} bytes`);
}

/** The sha256 of the first `size` bytes of a file (a resumed upload's digest), ERR_UPLOAD_INCOMPLETE when it is shorter. */
async function hashFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  let read = 0;
  if (size > 0) {
    for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 })) {
      hash.update(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
  }
  if (read !== size) throw new ProtocolError('ERR_UPLOAD_INCOMPLETE', `${path} has ${read} bytes, not ${size}`);
  return hash.digest('hex');
}

/**
 * Sends the file from `start` to its end as one PATCH, through node streams; answers the
 * server's response (its body read). Aborted by the caller's signal, or when nothing moves for
 * `idleMs`; a connection error is ERR_UPSTREAM_UNREACHABLE. With `hash`, every byte read is
 * hashed on the way; `hashed` says how many (the whole rest of the file only when it was all read).
 */
async function patchFile(
  options: TusUploadOptions & { url: string; start: number; headers: Record<string, string>; idleMs: number; hash?: Hash },
): Promise<Response & { hashed?: number }> {
  const { start, size } = options;
  const target = new URL(options.url);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `the upload URL is not http(s): ${target.protocol}`);
  }
  const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, {
    method: 'PATCH',
    headers: {
      ...options.headers,
      'Upload-Offset': String(start),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(size - start),
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const stop = (reason: unknown) => request.destroy(reason instanceof Error ? reason : new Error(String(reason)));
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stop(new Error(`no progress for ${options.idleMs} ms`)), options.idleMs);
  };
  const onAbort = () => stop(options.signal?.reason ?? new Error('aborted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  touch();
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  answered.catch(() => {}); // awaited below, after the body is sent or has failed
  let hashed = 0;
  try {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    if (start < size) {
      let sent = start;
      let reported = start;
      const file = createReadStream(options.path, { start, end: size - 1, highWaterMark: 1024 * 1024 });
      file.on('data', (chunk) => {
        touch();
        if (options.hash) {
          options.hash.update(chunk as Buffer);
          hashed += chunk.length;
        }
        sent += chunk.length;
        if (sent - reported >= PROGRESS_EVERY_BYTES) {
          reported = sent;
          options.onProgress?.(sent, size);
        }
      });
      // A server that answers before reading everything (a refusal) stops the sending: its
      // answer counts.
      await new Promise<void>((resolve, reject) => {
        file.once('error', reject);
        request.once('error', reject);
        file.once('end', resolve);
        answered.then(() => {
          file.unpipe(request);
          file.destroy();
          resolve();
        }, reject);
        file.pipe(request);
      });
    } else {
      request.end();
    }
    const response = await answered;
    touch();
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const status = response.statusCode ?? 0;
    const headers = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
    }
    const body = status === 204 || status === 304 || chunks.length === 0 ? null : Buffer.concat(chunks);
    return Object.assign(new Response(body, { status: status >= 200 && status <= 599 ? status : 502, headers }), { hashed });
  } catch (error) {
    request.destroy();
    if (options.signal?.aborted) throw options.signal.reason ?? error;
    throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `PATCH upload failed: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
