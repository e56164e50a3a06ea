/**
 * Resumable uploads (tus 1.0, via @tus/server and @tus/file-store) that end in the same
 * asset and version semantics as `POST {api}/assets` and `POST {api}/assets/{id}/versions`.
 *
 * - `POST {api}/uploads` creates an upload. `Upload-Length` is required, or
 *   `Upload-Defer-Length: 1` (tus creation-defer-length: a client sending a file while it is
 *   still being written declares the length on a later PATCH, at the latest the final one; the
 *   size limit bounds the bytes until then); `Upload-Metadata`
 *   carries `filename`, `sha256` (optional, see below), `collection` (a new asset), or `asset`
 *   with `ifMatch` (a new version of that asset), and `comment`. Everything that can be refused is
 *   refused here, before a byte is sent: the token, the size limit, the rights, a stale or
 *   missing base version (412/428). `idempotencyKey` makes the upload idempotent: creating an
 *   upload with a key whose upload already finished answers 200 with the first result's
 *   `Imagine-Asset`, `Imagine-Version`, `Location` and `Idempotent-Replayed: true`, and no
 *   upload is made (library/idempotency.ts).
 * - `HEAD`/`PATCH`/`DELETE {api}/uploads/{id}`: offset, append, terminate; only the user who
 *   created the upload sees it (anyone else gets the same 404 as for an unknown upload).
 * - When the last byte lands, the file's sha256 is compared with the declared one (hashed as
 *   the bytes were received when one PATCH brought the whole file, else read back from disk;
 *   an upload whose bytes all arrived but that was never finished is finished by an empty
 *   PATCH at its end),
 *   then handed to the library, which moves it into the blob store and commits one catalog
 *   mutation. The final PATCH answers `Imagine-Asset`, `Imagine-Version` and `Location` (the
 *   asset). Whatever happens, the upload's file and info are gone afterwards.
 * - The sha256 may instead be declared after the bytes (so a client can hash while it sends):
 *   an upload created without `sha256` is not finished by its last byte. It waits, listed by
 *   HEAD with `Upload-Offset` = `Upload-Length`, for a final empty PATCH (`Upload-Offset` =
 *   length, no body) carrying `Imagine-Sha256: <64 lowercase hex>`, which is compared with the
 *   received bytes (their digest kept from the PATCH that brought them all from offset 0, else
 *   read back) and finishes the upload exactly as above (idempotency, the base version checked
 *   again, ERR_DIGEST_MISMATCH removing it). `Imagine-Sha256` anywhere else (a PATCH before the
 *   end), malformed, different from a `sha256` given at creation, or missing from the final PATCH
 *   of such an upload is 400 ERR_VALIDATION, the upload unchanged. One never declared is swept
 *   like any abandoned upload.
 * - Unfinished uploads live in `<data>/uploads/`, visible nowhere else, and are removed after
 *   UPLOAD_IDLE_MS without a write.
 *
 * tus runs on web `Request`/`Response` objects (`handleWeb`), so that errors leave as
 * application/problem+json like everywhere else in the API; PATCH, which carries the bytes, is
 * answered here on node streams with tus's semantics and locks (`receivePatch`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat, truncate } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS, EXPOSED_HEADERS, MemoryLocker, Metadata, Server as TusServer, TUS_RESUMABLE, type Upload } from '@tus/server';
import Type from 'typebox';
import { PROBLEM_CONTENT_TYPE, ProtocolError, toProblem, type ErrorCode } from '../../shared/errors.ts';
import { normaliseError } from '../http/problem.ts';
import { BlobStore } from '../library/blob-store.ts';
import { cleanFilename } from '../library/library.ts';
import { currentVersion, type UserRecord } from '../library/records.ts';
import { parseIdempotencyKey, type IdempotencyScope } from '../library/idempotency.ts';
import {
  API_PREFIX,
  header,
  installActor,
  parseIfMatch,
  presentContext,
  problemResponses,
  type ApiOptions,
} from './api-context.ts';

/** An unfinished upload without a write for this long is removed (24 h). */
export const UPLOAD_IDLE_MS = 24 * 60 * 60 * 1000;
/** How often abandoned uploads are swept (1 h). */
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;
/** Upload-Metadata key the server sets to the uploading user (a client's value is replaced). */
const OWNER_KEY = 'uploadedBy';
const SHA256_HEX = /^[0-9a-f]{64}$/;
const COMMENT_MAX = 2000;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** What an upload will become, from its Upload-Metadata. */
export interface UploadIntent {
  filename: string;
  /** Declared at creation; else by `Imagine-Sha256` on the final empty PATCH. */
  sha256?: string;
  collection?: string;
  asset?: string;
  ifMatch?: string;
  comment?: string;
  idempotencyKey?: string;
}

/** Parses decoded Upload-Metadata into an intent. Throws ERR_VALIDATION and friends. */
export function parseUploadIntent(metadata: Record<string, string | null> | undefined): UploadIntent {
  const value = (key: string) => {
    const v = metadata?.[key];
    return v === null || v === undefined || v === '' ? undefined : v;
  };
  const filename = cleanFilename(value('filename'));
  const sha256 = value('sha256');
  if (sha256 !== undefined && !SHA256_HEX.test(sha256)) {
    throw new ProtocolError('ERR_VALIDATION', 'Upload-Metadata "sha256" is 64 lowercase hex digits');
  }
  const intent: UploadIntent = { filename };
  if (sha256) intent.sha256 = sha256;
  const collection = value('collection');
  const asset = value('asset');
  const comment = value('comment');
  if (collection && asset) {
    throw new ProtocolError('ERR_VALIDATION', 'Upload-Metadata "collection" is for new assets, not with "asset"');
  }
  if (comment !== undefined && comment.length > COMMENT_MAX) {
    throw new ProtocolError('ERR_VALIDATION', `comment longer than ${COMMENT_MAX} characters`);
  }
  if (collection) intent.collection = collection;
  if (asset) intent.asset = asset;
  if (comment) intent.comment = comment;
  const ifMatch = parseIfMatch(value('ifMatch'));
  if (ifMatch) intent.ifMatch = ifMatch;
  const idempotencyKey = parseIdempotencyKey(value('idempotencyKey'));
  if (idempotencyKey) intent.idempotencyKey = idempotencyKey;
  return intent;
}

/** What an upload's idempotency key is scoped to. */
export function intentScope(intent: UploadIntent): IdempotencyScope {
  return intent.asset ? `version:${intent.asset}` : 'asset';
}

/**
 * Removes unfinished uploads (data file and `.json` info) whose last write is older than
 * `maxIdleMs`, and halves of a pair that lost the other half as long ago. Returns how many.
 */
export async function sweepAbandonedUploads(
  directory: string,
  options: { maxIdleMs: number; now?: number; keep?: (id: string) => boolean },
): Promise<number> {
  const now = options.now ?? Date.now();
  const names = await readdir(directory).catch(() => [] as string[]);
  const ids = new Set(names.map((name) => (name.endsWith('.json') ? name.slice(0, -5) : name)));
  let removed = 0;
  for (const id of ids) {
    if (options.keep?.(id)) continue;
    const paths = [join(directory, id), join(directory, `${id}.json`)];
    const times = await Promise.all(paths.map((p) => stat(p).then((s) => s.mtimeMs, () => undefined)));
    const last = Math.max(...times.filter((t): t is number => t !== undefined));
    if (now - last <= options.maxIdleMs) continue;
    await Promise.all(paths.map((p) => rm(p, { force: true })));
    removed++;
  }
  return removed;
}

/** 1 MiB: buffers between the request and the upload's file (with the 16 KiB default a 200 MB PATCH is measurably slower). */
const WRITE_BUFFER = 1024 * 1024;

/** @tus/file-store with large write buffers; otherwise the same (append at `offset`, answer the new offset). */
class UploadFileStore extends FileStore {
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    let received = 0;
    const meter = new Transform({
      highWaterMark: WRITE_BUFFER,
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      await pipeline(readable, meter, createWriteStream(join(this.directory, id), { flags: 'r+', start: offset, highWaterMark: WRITE_BUFFER }));
    } catch {
      throw ERRORS.FILE_WRITE_ERROR;
    }
    return offset + received;
  }
}

/** What the tus hooks need to know about the fastify request behind a web request. */
interface UploadRequestContext {
  /** The signed-in user; absent only for OPTIONS, which runs no hook. */
  actor?: UserRecord;
  origin: string;
  apiBase: string;
  uploadId?: string;
  /** Set when a hook failed with an error of ours: sent as the problem document. */
  problem?: ProtocolError;
  /** A PATCH body from offset 0, hashed as it was written: where it started and what passed. */
  received?: ReceivedBytes;
}

interface ReceivedBytes {
  offset: number;
  bytes: number;
  hash: Hash;
}

/**
 * The sha256 of a finished upload from its PATCH's bytes, when that PATCH started at 0 and
 * passed exactly the whole file to tus, which wrote exactly that (its offset reached the
 * size): then the file holds precisely the bytes that were hashed. Undefined otherwise
 * (a resumed upload, a creation-with-upload): the file is read back.
 */
function receivedDigest(received: ReceivedBytes | undefined, size: number | undefined): string | undefined {
  if (!received || received.offset !== 0 || size === undefined || received.bytes !== size) return undefined;
  return received.hash.digest('hex');
}

/** tus's Access-Control-Expose-Headers with ours. */
const EXPOSED = [EXPOSED_HEADERS, 'Imagine-Asset', 'Imagine-Version', 'Imagine-Duplicate', 'Idempotent-Replayed'].join(', ');

/** How a PATCH body ended: all of it, the connection cut, stopped for another request, or too long. */
type BodyEnd = 'complete' | 'cut' | 'cancelled' | 'overflow';

/**
 * Appends `source` to the file at `offset` (at most `room` bytes), hashing into `received`
 * when given. Whatever way the body ends, every byte taken from it is in the file before this
 * resolves (the file is only ever extended in order, so its size is the upload's offset);
 * a write that fails rejects (ERR_DISK_FULL, ERR_INTERNAL). `onCancel` receives the function
 * that stops reading.
 */
function appendBody(
  source: IncomingMessage,
  path: string,
  offset: number,
  room: number,
  received: ReceivedBytes | undefined,
  onCancel: (cancel: () => void) => void,
): Promise<{ written: number; ended: BodyEnd }> {
  return new Promise((resolve, reject) => {
    const file = createWriteStream(path, { flags: 'r+', start: offset, highWaterMark: WRITE_BUFFER });
    let written = 0;
    let ended: BodyEnd | undefined;
    let failed: Error | undefined;
    const onData = (chunk: Buffer) => {
      if (written + chunk.length > room) return end('overflow');
      received?.hash.update(chunk);
      if (received) received.bytes += chunk.length;
      written += chunk.length;
      if (!file.write(chunk)) {
        source.pause();
        file.once('drain', () => ended === undefined && source.resume());
      }
    };
    const end = (how: BodyEnd) => {
      if (ended !== undefined) return;
      ended = how;
      source.off('data', onData);
      source.pause();
      file.end();
    };
    // A connection closed after the whole body arrived still delivers it ('end' follows).
    const cut = () => source.complete || end('cut');
    source.on('data', onData);
    source.once('end', () => end('complete'));
    source.once('close', cut);
    source.on('error', cut);
    onCancel(() => end('cancelled'));
    file.once('error', (error) => {
      failed = error;
      if (ended === undefined) {
        ended = 'cut';
        source.off('data', onData);
      }
      file.destroy();
    });
    file.once('close', () => {
      source.off('close', cut);
      if (failed) {
        const code = (failed as NodeJS.ErrnoException).code;
        reject(
          code === 'ENOSPC'
            ? new ProtocolError('ERR_DISK_FULL', 'the server has no room for this upload', { cause: failed })
            : new ProtocolError('ERR_INTERNAL', 'the upload could not be written', { cause: failed }),
        );
      } else resolve({ written, ended: ended ?? 'complete' });
    });
    if (source.readableEnded) end('complete');
  });
}

/** tus's own errors ({ status_code, body }) as problems; others unchanged. */
function tusError(error: unknown): unknown {
  if (error && typeof error === 'object' && !(error instanceof Error) && 'status_code' in error) {
    const { status_code: status, body } = error as { status_code: number; body: string };
    return tusProblem(status, body);
  }
  return error;
}

const IdParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }) });
const TusHeaders = {
  'tus-resumable': Type.Optional(Type.String({ description: 'Must be 1.0.0' })),
};
const Empty = (description: string) => Type.Null({ description });

export async function uploadRoutes(app: FastifyInstance, { config, services }: ApiOptions) {
  const { library, auth } = services;
  installActor(app, services);
  // tus reads the bodies itself: hand every body over untouched.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  const directory = resolve(config.dataDir, 'uploads');
  await mkdir(directory, { recursive: true });
  const store = new UploadFileStore({ directory, expirationPeriodInMilliseconds: 0 });
  /** One writer per upload: tus's HEAD, DELETE and POST and the PATCH below take the same locks. */
  const locker = new MemoryLocker();
  const contexts = new WeakMap<Request, UploadRequestContext>();
  /** Uploads whose last byte arrived and that are being verified and committed. */
  const finishing = new Set<string>();
  /**
   * Uploads waiting for their Imagine-Sha256 (and, with a deferred length, their Upload-Length)
   * whose bytes so far all came in one PATCH from offset 0: the digest computed as they were
   * written and how many bytes it covers (else the file is read back).
   */
  const digests = new Map<string, { bytes: number; sha256: string }>();

  const tus = new TusServer({
    path: `${API_PREFIX}/uploads`,
    datastore: store,
    locker,
    maxSize: config.maxUploadBytes,
    respectForwardedHeaders: false,
    // Same-origin clients only, like the rest of the API.
    allowedOrigins: () => false,
    exposedHeaders: ['Imagine-Asset', 'Imagine-Version', 'Imagine-Duplicate', 'Idempotent-Replayed'],
    disableTerminationForFinishedUploads: true,
    generateUrl: (req, { id }) => `${contextOf(req).origin}${API_PREFIX}/uploads/${encodeURIComponent(id)}`,
    getFileIdFromRequest: (req) => contextOf(req).uploadId,
    onUploadCreate: async (req, upload) => ({
      metadata: { ...upload.metadata, [OWNER_KEY]: actorOf(contextOf(req)).name },
    }),
    onUploadFinish: async (req, upload) => {
      // Without a sha256 at creation, the upload waits for Imagine-Sha256 on a final empty PATCH.
      if (!parseUploadIntent(upload.metadata).sha256) return {};
      return { headers: await finishUpload(contextOf(req), upload) };
    },
    onResponseError: (req, error) => {
      // tus's own errors ({ status_code, body }) are turned into problems when sent.
      if (!(error instanceof Error) && 'status_code' in error) return undefined;
      const problem = normaliseError(error);
      const ctx = contexts.get(req);
      if (ctx) ctx.problem = problem;
      if (problem.status >= 500) app.log.error({ err: problem.cause ?? problem }, 'upload failed');
      return { status_code: problem.status, body: problem.message };
    },
  });

  function contextOf(req: Request): UploadRequestContext {
    const ctx = contexts.get(req);
    if (!ctx) throw new ProtocolError('ERR_INTERNAL', 'upload request without its context');
    return ctx;
  }

  function actorOf(ctx: UploadRequestContext): UserRecord {
    if (!ctx.actor) throw new ProtocolError('ERR_UNAUTHORIZED', 'a token is required to use uploads');
    return ctx.actor;
  }

  /** Refuses, before any byte is received, what could only be refused at the end. */
  function authorise(intent: UploadIntent, actor: UserRecord): void {
    if (intent.asset) {
      const asset = library.getAsset(intent.asset);
      auth.requireRead(actor, asset);
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      auth.require(auth.canWrite(actor, asset), actor, 'change this asset');
      const current = currentVersion(asset).id;
      if (intent.ifMatch === undefined) {
        throw new ProtocolError('ERR_PRECONDITION_REQUIRED', 'Upload-Metadata "ifMatch" with the base version is required');
      }
      if (intent.ifMatch !== current) {
        throw new ProtocolError('ERR_PRECONDITION_FAILED', `base version "${intent.ifMatch}" is not the current version "${current}"`, {
          extensions: { currentVersion: current },
        });
      }
      return;
    }
    auth.require(
      auth.canCreateAsset(actor, intent.collection),
      actor,
      intent.collection ? `add assets to collection "${intent.collection}"` : 'add assets outside a collection',
    );
    if (intent.collection) library.getCollection(intent.collection);
  }

  /** Verifies a complete upload and turns it into an asset or a version; the upload is gone after. */
  async function finishUpload(ctx: UploadRequestContext, upload: Upload, claimed = false, declared?: string): Promise<Record<string, string>> {
    const path = join(directory, upload.id);
    if (!claimed) claimFinish(upload.id);
    try {
      const actor = actorOf(ctx);
      const intent = parseUploadIntent(upload.metadata);
      const expected = intent.sha256 ?? declared;
      if (expected === undefined) throw new ProtocolError('ERR_INTERNAL', 'an upload finished without a declared sha256');
      const replay = library.idempotentResult(actor.name, intent.idempotencyKey, intentScope(intent));
      if (replay) return replayHeaders(ctx, replay);
      authorise(intent, actor);
      const kept = digests.get(upload.id);
      const streamed = receivedDigest(ctx.received, upload.size) ?? (kept !== undefined && kept.bytes === upload.size ? kept.sha256 : undefined);
      const onDisk = streamed === undefined ? undefined : (await stat(path)).size;
      const { sha256, size } =
        streamed !== undefined && onDisk !== undefined && onDisk === upload.size
          ? { sha256: streamed, size: onDisk }
          : await BlobStore.hashFile(path);
      if (size !== upload.size) {
        throw new ProtocolError('ERR_UPLOAD_INCOMPLETE', `received ${size} bytes, expected ${upload.size}`);
      }
      if (sha256 !== expected) {
        throw new ProtocolError('ERR_DIGEST_MISMATCH', 'sha-256 of the received bytes differs from the declared one');
      }
      const tmp = { path, sha256, size };
      const options = { filename: intent.filename, comment: intent.comment, user: actor.name, sha256, size, idempotencyKey: intent.idempotencyKey };
      const { asset, duplicate } = intent.asset
        ? { asset: await library.pushVersionFromTemp(intent.asset, tmp, { ...options, ifMatch: intent.ifMatch }), duplicate: false }
        : await library.createAssetFromTemp(tmp, { ...options, collection: intent.collection });
      const made = library.idempotentResult(actor.name, intent.idempotencyKey, intentScope(intent));
      const headers: Record<string, string> = {
        'Imagine-Asset': asset.id,
        'Imagine-Version': made?.version ?? currentVersion(asset).id,
        Location: `${ctx.apiBase}/assets/${encodeURIComponent(asset.id)}`,
      };
      if (duplicate) headers['Imagine-Duplicate'] = 'true';
      return headers;
    } finally {
      // Taken over by the library (renamed into the store) or refused: either way, gone.
      await Promise.all([rm(path, { force: true }), rm(`${path}.json`, { force: true })]);
      digests.delete(upload.id);
      finishing.delete(upload.id);
    }
  }

  /** Marks an upload as being finished; ERR_CONFLICT when it already is. */
  function claimFinish(id: string): void {
    if (finishing.has(id)) throw new ProtocolError('ERR_CONFLICT', 'this upload is already being finished');
    finishing.add(id);
  }

  function replayHeaders(ctx: UploadRequestContext, replay: { asset: { id: string }; version: string }): Record<string, string> {
    return {
      'Imagine-Asset': replay.asset.id,
      'Imagine-Version': replay.version,
      'Idempotent-Replayed': 'true',
      Location: `${ctx.apiBase}/assets/${encodeURIComponent(replay.asset.id)}`,
    };
  }

  /** The upload behind an id, when the caller is its owner; the same 404 otherwise. */
  async function requireOwnUpload(request: FastifyRequest<{ Params: { id: string } }>): Promise<UserRecord> {
    const actor = request.actor;
    if (!actor) throw new ProtocolError('ERR_UNAUTHORIZED', 'a token is required to use uploads');
    const info = await store.configstore.get(request.params.id);
    if (!info || info.metadata?.[OWNER_KEY] !== actor.name) {
      throw new ProtocolError('ERR_UPLOAD_NOT_FOUND', `no upload "${request.params.id}"`);
    }
    return actor;
  }

  /** Hands the request to tus and sends its answer (errors as problem documents). */
  async function dispatch(request: FastifyRequest, reply: FastifyReply, ctx: UploadRequestContext): Promise<void> {
    const path = `${API_PREFIX}/uploads${ctx.uploadId ? `/${encodeURIComponent(ctx.uploadId)}` : ''}`;
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.raw.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const hasBody = request.method === 'POST' || request.method === 'PATCH';
    const body = hasBody ? (Readable.toWeb(request.raw) as unknown as ReadableStream<Uint8Array>) : null;
    const webRequest = new Request(`${ctx.origin}${path}`, {
      method: request.method,
      headers,
      body,
      duplex: 'half',
    } as RequestInit);
    contexts.set(webRequest, ctx);
    reply.hijack();
    let response: Response;
    try {
      response = await tus.handleWeb(webRequest);
    } catch (error) {
      ctx.problem = normaliseError(error);
      request.log.error({ err: error }, 'upload failed');
      response = new Response(null, { status: ctx.problem.status });
    }
    await send(request, reply.raw, response, ctx, path);
  }

  async function send(request: FastifyRequest, raw: ServerResponse, response: Response, ctx: UploadRequestContext, path: string) {
    const headers = new Headers(response.headers);
    let body: Buffer | undefined;
    if (response.status >= 400) {
      const problem = ctx.problem ?? tusProblem(response.status, await response.text());
      body = Buffer.from(JSON.stringify(toProblem(problem, path)));
      headers.set('content-type', PROBLEM_CONTENT_TYPE);
      headers.set('content-length', String(body.length));
    } else {
      if (response.body) body = Buffer.from(await response.arrayBuffer());
      const unfinished = (request.method === 'POST' || request.method === 'PATCH') && !headers.has('imagine-asset');
      if (unfinished) headers.set('upload-expires', new Date(Date.now() + UPLOAD_IDLE_MS).toUTCString());
    }
    headers.set('cache-control', 'no-store');
    if (raw.destroyed || raw.writableEnded) return;
    raw.statusCode = response.status;
    for (const [name, value] of headers) raw.setHeader(name, value);
    raw.end(body);
    // A body tus did not read (an early refusal): discard it, as node does for unread bodies.
    if (!request.raw.complete && !request.raw.destroyed) {
      request.raw.removeAllListeners('data');
      request.raw.resume();
    }
  }

  /**
   * PATCH, answered here rather than by tus: the body goes from the socket to the upload's file
   * through node streams (tus's web-stream conversions cost more than the rest of a 200 MB
   * PATCH), hashed on the way when it starts at 0. The tus semantics are kept: Tus-Resumable
   * (412), Content-Type application/offset+octet-stream (415), Upload-Offset (400) equal to the
   * upload's offset (409, the upload unchanged), no more than the upload's remaining bytes
   * (413 before a byte is read when Content-Length says so; else the PATCH's bytes are dropped),
   * the same locks as tus's HEAD/DELETE (a request that wants the upload stops this one: 409,
   * what it received is kept), what a cut connection delivered is kept (resume from HEAD's
   * offset), and the PATCH that brings the last byte finishes the upload (finishUpload) when
   * its sha256 was declared at creation; else the upload waits for a final empty PATCH with
   * Imagine-Sha256 (the digest of a PATCH that brought every byte from 0 is kept for it).
   */
  async function receivePatch(request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, ctx: UploadRequestContext): Promise<void> {
    const id = request.params.id;
    const path = `${API_PREFIX}/uploads/${encodeURIComponent(id)}`;
    reply.hijack();
    const headers = new Headers({ 'Tus-Resumable': TUS_RESUMABLE, 'Access-Control-Expose-Headers': EXPOSED });
    let status = 204;
    try {
      const version = header(request, 'tus-resumable');
      if (version !== TUS_RESUMABLE) {
        headers.set('Tus-Version', TUS_RESUMABLE);
        throw new ProtocolError('ERR_BAD_REQUEST', `Tus-Resumable: ${TUS_RESUMABLE} is required`, { status: 412 });
      }
      if (header(request, 'content-type') !== 'application/offset+octet-stream') {
        throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', 'a PATCH body is Content-Type: application/offset+octet-stream');
      }
      const offsetHeader = header(request, 'upload-offset');
      if (offsetHeader === undefined || !/^(0|[1-9]\d{0,15})$/.test(offsetHeader)) {
        throw new ProtocolError('ERR_BAD_REQUEST', 'Upload-Offset (bytes) is required');
      }
      const uploadLength = header(request, 'upload-length');
      if (uploadLength !== undefined && !/^(0|[1-9]\d{0,15})$/.test(uploadLength)) {
        throw new ProtocolError('ERR_BAD_REQUEST', 'Upload-Length is a number of bytes');
      }
      const offset = Number(offsetHeader);
      const digestHeader = header(request, 'imagine-sha256');
      if (digestHeader !== undefined && !SHA256_HEX.test(digestHeader)) {
        throw new ProtocolError('ERR_VALIDATION', 'Imagine-Sha256 is the sha-256 of the whole file, 64 lowercase hex digits');
      }
      const lengthHeader = header(request, 'content-length');
      const declared = lengthHeader === undefined ? undefined : Number(lengthHeader);

      // The client going away while this waits for the lock stops the wait.
      const gone = new AbortController();
      reply.raw.once('close', () => gone.abort());
      let stop: (() => void) | undefined;
      let released = false;
      const lock = locker.newLock(id);
      try {
        await lock.lock(gone.signal, () => {
          released = true;
          stop?.();
        });
      } catch {
        throw new ProtocolError('ERR_CONFLICT', 'another request is using this upload; try again');
      }
      let upload: Upload;
      let received: { written: number; ended: BodyEnd };
      let complete = false;
      let digest: string | undefined;
      try {
        if (finishing.has(id)) throw new ProtocolError('ERR_CONFLICT', 'this upload is being finished');
        upload = await store.getUpload(id).catch((error) => Promise.reject(tusError(error)));
        if (upload.offset !== offset) {
          throw new ProtocolError('ERR_CONFLICT', `Upload-Offset ${offset} is not the upload's offset ${upload.offset}`, {
            extensions: { offset: upload.offset },
          });
        }
        if (uploadLength !== undefined) {
          // A deferred length is declared once, by a PATCH (tus creation-defer-length); never changed.
          const length = Number(uploadLength);
          if (upload.size !== undefined && upload.size !== length) {
            throw new ProtocolError('ERR_BAD_REQUEST', `Upload-Length ${length} differs from the upload's ${upload.size}`);
          }
          if (length < offset) throw new ProtocolError('ERR_BAD_REQUEST', `Upload-Length ${length} is less than the ${offset} bytes received`);
          if (length > config.maxUploadBytes) {
            throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `uploads are limited to ${config.maxUploadBytes} bytes`);
          }
          if (upload.size === undefined) {
            await store.declareUploadLength(id, length);
            upload.size = length;
          }
        }
        const intent = parseUploadIntent(upload.metadata);
        if (digestHeader !== undefined) {
          if (offset !== upload.size) {
            throw new ProtocolError(
              'ERR_VALIDATION',
              `Imagine-Sha256 goes on the final empty PATCH (Upload-Offset ${upload.size}), once every byte has arrived`,
            );
          }
          if (intent.sha256 !== undefined && intent.sha256 !== digestHeader) {
            throw new ProtocolError('ERR_VALIDATION', 'Imagine-Sha256 differs from the sha256 declared when the upload was created');
          }
        } else if (intent.sha256 === undefined && upload.size !== undefined && offset === upload.size) {
          throw new ProtocolError(
            'ERR_VALIDATION',
            'every byte of this upload has arrived: its final empty PATCH carries Imagine-Sha256 (no sha256 was declared at creation)',
          );
        }
        // Without a length yet, the size limit bounds the body.
        const room = (upload.size ?? config.maxUploadBytes) - offset;
        if (declared !== undefined && declared > room) {
          throw new ProtocolError(
            'ERR_PAYLOAD_TOO_LARGE',
            upload.size === undefined
              ? `uploads are limited to ${config.maxUploadBytes} bytes`
              : `${declared} bytes from offset ${offset} go past the upload's ${upload.size} bytes`,
          );
        }
        ctx.received = offset === 0 ? { offset: 0, bytes: 0, hash: createHash('sha256') } : undefined;
        if (released) throw new ProtocolError('ERR_CONFLICT', 'another request took over this upload; ask its offset again');
        received = await appendBody(request.raw, join(directory, id), offset, room, ctx.received, (cancel) => (stop = cancel));
        if (received.ended === 'overflow') {
          await truncate(join(directory, id), offset); // none of this PATCH's bytes: the upload as it was
          throw new ProtocolError(
            'ERR_PAYLOAD_TOO_LARGE',
            upload.size === undefined ? `uploads are limited to ${config.maxUploadBytes} bytes` : `the body goes past the upload's ${upload.size} bytes`,
          );
        }
        upload.offset = offset + received.written;
        complete = received.ended === 'complete' && upload.offset === upload.size;
        digest = intent.sha256 ?? digestHeader;
        if (!complete || digest === undefined) {
          // The digest or the length comes with a later PATCH: keep the digest computed on the way.
          const streamed = receivedDigest(ctx.received, received.ended === 'complete' ? upload.offset : undefined);
          if (streamed !== undefined) digests.set(id, { bytes: upload.offset, sha256: streamed });
          complete = false;
        }
        if (complete) claimFinish(id);
      } finally {
        await lock.unlock().catch(() => {});
      }
      headers.set('Upload-Offset', String(upload.offset));
      if (received.ended === 'cancelled') {
        headers.set('Connection', 'close');
        throw new ProtocolError('ERR_CONFLICT', 'another request took over this upload; ask its offset again');
      }
      if (received.ended === 'cut') return; // nobody to answer; what arrived is kept
      if (complete) for (const [name, value] of Object.entries(await finishUpload(ctx, upload, true, digest))) headers.set(name, value);
    } catch (error) {
      ctx.problem = normaliseError(error);
      status = ctx.problem.status;
      if (status >= 500) request.log.error({ err: ctx.problem.cause ?? ctx.problem }, 'upload failed');
    }
    await send(request, reply.raw, new Response(null, { status, headers }), ctx, path);
  }

  app.route({
    method: 'POST',
    url: `${API_PREFIX}/uploads`,
    schema: {
      tags: ['uploads'],
      summary:
        'Create a resumable upload (tus 1.0): Upload-Length, Upload-Metadata filename, sha256 (or Imagine-Sha256 on the final empty PATCH), collection or asset+ifMatch, comment, idempotencyKey',
      headers: Type.Object({
        ...TusHeaders,
        'upload-length': Type.Optional(Type.String({ description: 'Size of the whole file in bytes' })),
        'upload-defer-length': Type.Optional(Type.String({ description: '1: the length comes with a later PATCH (tus creation-defer-length)' })),
        'upload-metadata': Type.Optional(Type.String({ description: 'tus metadata: comma-separated "key base64(value)"' })),
      }),
      response: {
        200: Empty('Idempotent replay: the upload with this idempotencyKey already finished (Imagine-Asset, Imagine-Version, Location)'),
        201: Empty('Created; Location is the upload URL'),
        ...problemResponses(400, 401, 403, 404, 409, 410, 412, 413, 428),
      },
    },
    handler: async (request, reply) => {
      const actor = request.actor;
      if (!actor) throw new ProtocolError('ERR_UNAUTHORIZED', 'a token is required to upload');
      if (header(request, 'upload-concat') !== undefined) {
        throw new ProtocolError('ERR_BAD_REQUEST', 'uploads are not concatenated (no Upload-Concat)');
      }
      const lengthHeader = header(request, 'upload-length');
      const deferLength = header(request, 'upload-defer-length');
      if (deferLength !== undefined) {
        // tus creation-defer-length: the length comes with a later PATCH (a file still being written).
        if (deferLength !== '1' || lengthHeader !== undefined) {
          throw new ProtocolError('ERR_BAD_REQUEST', 'Upload-Defer-Length is 1, and then without Upload-Length');
        }
      } else if (lengthHeader === undefined || !/^\d{1,16}$/.test(lengthHeader)) {
        throw new ProtocolError('ERR_BAD_REQUEST', 'Upload-Length (bytes) is required, or Upload-Defer-Length: 1');
      } else if (Number(lengthHeader) > config.maxUploadBytes) {
        throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `uploads are limited to ${config.maxUploadBytes} bytes`);
      }
      let metadata: Record<string, string | null>;
      try {
        metadata = Metadata.parse(header(request, 'upload-metadata'));
      } catch {
        throw new ProtocolError('ERR_VALIDATION', 'Upload-Metadata (tus: comma-separated "key base64(value)") is malformed');
      }
      const intent = parseUploadIntent(metadata);
      const ctx = presentContext(request, config);
      const replay = library.idempotentResult(actor.name, intent.idempotencyKey, intentScope(intent));
      if (replay) {
        request.raw.resume();
        reply.code(200).header('cache-control', 'no-store').header('tus-resumable', '1.0.0');
        for (const [name, value] of Object.entries(replayHeaders({ actor, ...ctx }, replay))) reply.header(name, value);
        return reply.send();
      }
      authorise(intent, actor);
      return dispatch(request, reply, { actor, origin: ctx.origin, apiBase: ctx.apiBase });
    },
  });

  app.route({
    method: 'OPTIONS',
    url: `${API_PREFIX}/uploads`,
    schema: {
      tags: ['uploads'],
      summary: 'tus capabilities: Tus-Version, Tus-Extension, Tus-Max-Size',
      response: { 204: Empty('Tus-Version, Tus-Extension and Tus-Max-Size headers'), ...problemResponses(400) },
    },
    handler: async (request, reply) => {
      const ctx = presentContext(request, config);
      // Answered without a token: OPTIONS runs no hook.
      return dispatch(request, reply, { actor: request.actor, origin: ctx.origin, apiBase: ctx.apiBase });
    },
  });

  const uploadRoute = (method: 'HEAD' | 'PATCH' | 'DELETE', summary: string, response: Record<number, unknown>, headers?: unknown) =>
    app.route<{ Params: { id: string } }>({
      method,
      url: `${API_PREFIX}/uploads/:id`,
      schema: { tags: ['uploads'], summary, params: IdParams, response, ...(headers ? { headers } : {}) },
      handler: async (request, reply) => {
        const actor = await requireOwnUpload(request);
        if (method === 'DELETE' && finishing.has(request.params.id)) {
          throw new ProtocolError('ERR_CONFLICT', 'this upload is being finished');
        }
        const ctx = presentContext(request, config);
        const context = { actor, origin: ctx.origin, apiBase: ctx.apiBase, uploadId: request.params.id };
        if (method === 'DELETE') digests.delete(request.params.id);
        return method === 'PATCH' ? receivePatch(request, reply, context) : dispatch(request, reply, context);
      },
    });

  uploadRoute('HEAD', 'The offset of an upload (Upload-Offset, Upload-Length or Upload-Defer-Length)', {
    200: Empty('Upload-Offset, and Upload-Length or (not declared yet) Upload-Defer-Length: 1'),
    ...problemResponses(401, 404, 410),
  });
  uploadRoute(
    'PATCH',
    'Append to an upload at Upload-Offset; the last part answers Imagine-Asset, Imagine-Version and Location (the asset). Without a sha256 at creation, a final empty PATCH at Upload-Length with Imagine-Sha256 finishes it',
    {
      204: Empty('Upload-Offset; when complete also Imagine-Asset, Imagine-Version and Location'),
      ...problemResponses(400, 401, 403, 404, 409, 410, 412, 413, 415, 428),
    },
    Type.Object({
      ...TusHeaders,
      'upload-offset': Type.Optional(Type.String({ description: "The upload's offset, where this PATCH's bytes go" })),
      'upload-length': Type.Optional(
        Type.String({ description: 'Size of the whole file in bytes, once known, for an upload created with Upload-Defer-Length: 1' }),
      ),
      'imagine-sha256': Type.Optional(
        Type.String({
          description:
            'Only on the final empty PATCH (Upload-Offset = Upload-Length) of an upload created without sha256: the whole file\'s sha-256, 64 lowercase hex digits',
        }),
      ),
    }),
  );
  uploadRoute('DELETE', 'Abandon an upload (tus termination)', { 204: Empty('Terminated'), ...problemResponses(400, 401, 404, 409) });

  const sweep = async () => {
    try {
      const removed = await sweepAbandonedUploads(directory, { maxIdleMs: UPLOAD_IDLE_MS, keep: (id) => finishing.has(id) });
      if (removed > 0) app.log.info({ removed }, 'abandoned uploads removed');
      for (const id of digests.keys()) {
        if (!(await stat(join(directory, id)).then(() => true, () => false))) digests.delete(id);
      }
    } catch (error) {
      app.log.warn({ err: error }, 'sweeping abandoned uploads failed');
    }
  };
  await sweep();
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));
}

/** tus's plain-text refusals as problems with a code from the registry. */
function tusProblem(status: number, text: string): ProtocolError {
  const code: ErrorCode =
    status === 404 || status === 410
      ? 'ERR_UPLOAD_NOT_FOUND'
      : status === 409
        ? 'ERR_CONFLICT'
        : status === 413
          ? 'ERR_PAYLOAD_TOO_LARGE'
          : status >= 500
            ? 'ERR_INTERNAL'
            : 'ERR_BAD_REQUEST';
  return new ProtocolError(code, text.trim() || `upload request refused (${status})`, { status });
}
