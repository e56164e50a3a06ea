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
 * A file still being written can be sent ahead of that (`tusHeadStart`, with a deferred
 * length); `tusUpload` given its URL finishes it.
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
import type { Readable } from 'node:stream';
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

/** One request through `fetch`, aborted by the caller's signal or after `idleMs`; a network error is ERR_UPSTREAM_UNREACHABLE. */
async function callTus(options: { fetch: typeof fetch; signal?: AbortSignal }, idleMs: number, url: string, init: RequestInit, what: string): Promise<Response> {
  const idle = new AbortController();
  const timer = setTimeout(() => idle.abort(new Error(`no answer for ${idleMs} ms`)), idleMs);
  const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
  try {
    return await options.fetch(url, { ...init, signal, redirect: 'manual' });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason ?? error;
    throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${what} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** Uploads (or resumes) the file; answers the asset and version it became. */
export async function tusUpload(options: TusUploadOptions): Promise<TusResult> {
  const base: Record<string, string> = { 'Tus-Resumable': TUS_VERSION };
  if (options.token) base.Authorization = `Bearer ${options.token}`;
  const idleMs = options.idleTimeoutMs ?? 60_000;

  const call = (url: string, init: RequestInit, what: string) => callTus(options, idleMs, url, init, what);

  let url = options.uploadUrl;
  let offset = 0;
  /** The upload was made before its length was known (a head start, `tusHeadStart`): its PATCHes declare it. */
  let lengthDeferred = false;
  if (url) {
    const head = await call(url, { method: 'HEAD', headers: base }, 'HEAD upload');
    if (head.ok) {
      offset = Number(head.headers.get('upload-offset'));
      lengthDeferred = head.headers.get('upload-defer-length') === '1';
      const length = head.headers.get('upload-length');
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the upload answered a wrong Upload-Offset');
      }
      if (offset > options.size || (length !== null && Number(length) !== options.size)) {
        // Not this file's bytes (a head start of a file that changed after): start again.
        await call(url, { method: 'DELETE', headers: base }, 'DELETE upload').then((r) => r.body?.cancel(), () => undefined);
        url = undefined;
        offset = 0;
        lengthDeferred = false;
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
  const withLength = lengthDeferred ? { ...base, 'Upload-Length': String(options.size) } : base;
  const patchOf = (start: number) => ({
    url: url!,
    start,
    idleMs,
    signal: options.signal,
    onProgress: options.onProgress,
    file: { path: options.path, size: options.size },
  });
  if (deferred && offset < options.size) {
    // The bytes, hashed as they are read when they are the whole file and the digest is unknown.
    const hash = digest === undefined && offset === 0 ? createHash('sha256') : undefined;
    const patched = await patchFile({ ...patchOf(offset), headers: withLength, hash });
    const answer = await patchAnswer(patched, options);
    if (answer.result) return answer.result;
    if (answer.reached !== options.size) throw incomplete(answer.reached, options.size);
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
  const headers = deferred && digest !== undefined ? { ...withLength, 'Imagine-Sha256': digest } : withLength;
  const answer = await patchAnswer(await patchFile({ ...patchOf(deferred ? options.size : offset), headers }), options);
  if (answer.result) return answer.result;
  throw incomplete(answer.reached, options.size);
}

/** A PATCH's answer: the result when it finished the upload (progress then complete), else the offset reached; a refusal is thrown. */
async function patchAnswer(patched: Response, options: Pick<TusUploadOptions, 'size' | 'onProgress'>): Promise<{ result?: TusResult; reached: number }> {
  if (patched.status !== 204 && patched.status !== 200) throw await failure(patched, 'PATCH upload');
  const result = resultOf(patched);
  if (result) options.onProgress?.(options.size, options.size);
  return { result, reached: Number(patched.headers.get('upload-offset')) };
}

const incomplete = (reached: number, size: number) =>
  new ProtocolError('ERR_UPLOAD_INCOMPLETE', `the upload stopped at ${Number.isFinite(reached) ? reached : '?'} of ${size} bytes`);

export interface TusHeadStartOptions {
  fetch: typeof fetch;
  endpoint: string;
  token?: string;
  metadata: Record<string, string | undefined>;
  /** The file's bytes as they are written (`followFile`). */
  stream: Readable;
  /** Called with the upload's URL once it is made, before any byte is sent. */
  onCreated?: (url: string) => void;
  /** Called with the bytes sent so far, as they go. */
  onSent?: (sent: number) => void;
  signal?: AbortSignal;
  idleTimeoutMs?: number;
}

/**
 * A head start: sends a file while it is still being written (a push's spool file while
 * exiftool makes it), so that its upload and its making overlap. Creates an upload with
 * `Upload-Defer-Length: 1` (tus creation-defer-length) and sends the stream as one chunked
 * PATCH, declaring neither the length nor the digest: `tusUpload` with the URL then finishes
 * it (HEAD tells how far it got; it sends the rest, the length and the digest of the finished
 * file, which the server checks against what it received). Throws when the server does not
 * take a deferred length or anything fails; whatever arrived stays for `tusUpload`.
 */
export async function tusHeadStart(options: TusHeadStartOptions): Promise<{ url: string; sent: number }> {
  const base: Record<string, string> = { 'Tus-Resumable': TUS_VERSION };
  if (options.token) base.Authorization = `Bearer ${options.token}`;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const created = await callTus(
    options,
    idleMs,
    options.endpoint,
    { method: 'POST', headers: { ...base, 'Upload-Defer-Length': '1', 'Upload-Metadata': encodeMetadata(options.metadata) } },
    'POST upload',
  );
  if (created.status !== 201) throw await failure(created, 'POST upload');
  await created.body?.cancel().catch(() => {});
  const location = created.headers.get('location');
  if (!location) throw new ProtocolError('ERR_UPSTREAM_INVALID', 'the created upload has no Location');
  const url = new URL(location, options.endpoint).href;
  options.onCreated?.(url);
  const patched = await patchFile({ url, start: 0, headers: base, idleMs, signal: options.signal, stream: options.stream, onSent: options.onSent });
  if (patched.status !== 204) throw await failure(patched, 'PATCH upload');
  return { url, sent: Number(patched.headers.get('upload-offset')) };
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

interface PatchOptions {
  url: string;
  /** The upload's offset: where these bytes go. */
  start: number;
  headers: Record<string, string>;
  idleMs: number;
  signal?: AbortSignal;
  /** Every byte sent is hashed on the way. */
  hash?: Hash;
  onProgress?: (done: number, total: number) => void;
  /** Every chunk: the bytes sent so far (also without a known size). */
  onSent?: (sent: number) => void;
  /** The bytes: the file from `start` to `size`, with Content-Length ... */
  file?: { path: string; size: number };
  /** ... or a stream of unknown length (sent chunked). */
  stream?: Readable;
}

/**
 * Sends the file from `start` to its end (or the stream) as one PATCH, through node streams;
 * answers the server's response (its body read). Aborted by the caller's signal, or when
 * nothing moves for `idleMs`; a connection error is ERR_UPSTREAM_UNREACHABLE. With `hash`,
 * every byte read is hashed on the way; `hashed` says how many (all of them only when
 * everything was read).
 */
async function patchFile(options: PatchOptions): Promise<Response & { hashed?: number }> {
  const { start } = options;
  const size = options.file?.size;
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
      ...(size === undefined ? {} : { 'Content-Length': String(size - start) }),
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
    const source = options.stream ?? (size !== undefined && start < size ? createReadStream(options.file!.path, { start, end: size - 1, highWaterMark: 1024 * 1024 }) : undefined);
    if (source) {
      let sent = start;
      let reported = start;
      const file = source;
      file.on('data', (chunk: Buffer) => {
        touch();
        if (options.hash) {
          options.hash.update(chunk as Buffer);
          hashed += chunk.length;
        }
        sent += chunk.length;
        options.onSent?.(sent);
        if (size !== undefined && sent - reported >= PROGRESS_EVERY_BYTES) {
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
