/**
 * The push queue: every push is a durable item (`<data>/agent/queue.json`, lowdb) before the
 * route answers 202, and one worker uploads the items in order, resumably (tus-client.ts), with
 * an `Idempotency-Key` per push so a retried upload whose answer was lost never makes a second
 * version.
 *
 * States (shared/schemas/agent.ts): `queued` → `uploading` → `done`; a server that cannot be
 * reached, answers 5xx or loses the connection → `retrying` (exponential backoff with jitter,
 * capped by `config.agentRetryMaxSeconds`); a stale base (412) → `conflict`, with the choices
 * `push-on-top` (the newest version becomes the base), `new-asset` (a new asset derived from the
 * newest version, fork provenance written) or `discard`; any other refusal → `failed` (retry by
 * hand). The prepared file stays in the spool until its push lands, and the user's working file
 * is never touched. Items `uploading` when the agent stopped are retried when it starts again.
 *
 * The prepared file is not hashed before the 202: the worker creates the upload without a
 * sha256, hashes the file's bytes as it sends them, records the digest in the item (on disk,
 * before declaring it) and declares it on a final empty PATCH (`Imagine-Sha256`). A retry uses
 * the recorded digest, or hashes the spool file (never changed once prepared) when the upload
 * resumes from an offset past 0 (tus-client.ts).
 *
 * A head start: while exiftool writes the prepared file (front to back, from the edited file),
 * its bytes are already sent, as they appear, to an upload created with a deferred length
 * (`tusHeadStart`), so the preparation and the upload overlap. It never decides anything: the
 * worker waits for it, then finishes that upload like any resumed one (the rest of the bytes,
 * the length, the digest of the finished spool file, which the server checks against what it
 * received: a mismatch starts a new upload). A server without deferred lengths, an unreachable
 * one or any failure only costs the head start; a push refused before it is queued (policy,
 * preservation) abandons its upload.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import type { PushRequest, QueueItem, ResolveConflictRequest, WorkflowPolicy } from '../../shared/schemas/agent.ts';
import { formatUri, parseUri } from '../../shared/uri.ts';
import { BlobStore } from '../library/blob-store.ts';
import { writeForkProvenance } from '../metadata/fork.ts';
import { PRISTINE_DIR, type Checkouts } from './checkouts.ts';
import { fileSystemError } from './download.ts';
import { followFile } from './follow-file.ts';
import { preparePush } from './push.ts';
import { isUnreachable, type AgentServices, type QueueSummary } from './services.ts';
import { removeSpoolFolder } from './spool.ts';
import { TUS_VERSION, tusHeadStart, tusUpload } from './tus-client.ts';

export const QUEUE_FILE = 'queue.json';

/** A queue item as stored: the contract's fields and what the worker needs. */
export interface QueueRecord extends QueueItem {
  /** The prepared file's sha256, once the worker has read it (the first upload attempt). */
  sha256?: string;
  size: number;
  /** The file name the server records. */
  filename: string;
  mediaType?: string;
  /** tus upload URL of the current attempt, kept to resume it. */
  uploadUrl?: string;
  /** For `new-asset`: the collection the new asset joins. */
  collection?: string;
  /** After a 412: the server's current version. */
  currentVersion?: string;
  /** Metadata fields preservation restored. */
  restored?: string[];
  warnings?: string[];
  discarded?: boolean;
  /** The caller's `requestId` of the push that made this item. */
  requestId?: string;
}

interface QueueFile {
  items: QueueRecord[];
}

export interface PushQueueOptions {
  /** First wait after a failed attempt, ms (default 1000); doubled per attempt, capped by config.agentRetryMaxSeconds. */
  retryBaseMs?: number;
  /** Time between the two looks at a file being pushed, ms (default 300). */
  settleMs?: number;
  /** The workflow policy to check a push against (default: none). */
  policy?: (connectionId: string) => Promise<WorkflowPolicy>;
}

const PENDING = new Set(['queued', 'uploading', 'retrying']);
/** Done items are kept this long for the panel's history (7 days). */
const DONE_KEPT_MS = 7 * 24 * 60 * 60 * 1000;

/** Whether an upload error is worth trying again later (the server may come back, or the bytes got lost). */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof ProtocolError)) return true; // network errors thrown as plain errors
  if (isUnreachable(error)) return true;
  if (
    isProtocolError(error, 'ERR_UPLOAD_NOT_FOUND') ||
    isProtocolError(error, 'ERR_UPLOAD_INCOMPLETE') ||
    isProtocolError(error, 'ERR_DIGEST_MISMATCH') ||
    isProtocolError(error, 'ERR_CONFLICT') ||
    isProtocolError(error, 'ERR_RATE_LIMITED') ||
    isProtocolError(error, 'ERR_DISCOVERY_STATUS')
  ) {
    return true;
  }
  const { code, status } = error as ProtocolError;
  return status >= 500 && code !== 'ERR_DISK_FULL' && code !== 'ERR_FILE_MISSING';
}

/** The wait before attempt `attempts + 1`: exponential, capped, with jitter (half to full). */
export function backoffMs(attempts: number, baseMs: number, maxMs: number, random = Math.random): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(raw / 2 + (raw / 2) * random());
}

const newItemId = () => `push_${randomBytes(9).toString('base64url')}`;
const errorOf = (error: unknown) =>
  isProtocolError(error) ? { code: error.code, message: error.message } : { code: 'ERR_INTERNAL', message: 'the push failed' };

/** A push's file sent while it was prepared (`PushQueue.#headStart`). */
interface HeadStart {
  /** The upload, once created. */
  url: string | undefined;
  /** Settles (never rejects) when the head start has ended, however it ended. */
  done: Promise<void>;
  /** Bytes sent so far. */
  sent: number;
  /** Told of every chunk sent (the queue item's progress, once there is an item). */
  onSent?: (sent: number) => void;
  /** The file's digest, taken once it was written, with what identifies that file (`hashUnchanged`). */
  digest: Promise<{ sha256: string } & FileIdentity>;
  /** Stops it and removes its upload (the push was refused before it was queued). */
  abandon(): void;
}

type FileIdentity = { ino: number; mtimeMs: number; size: number };
/** Whether two looks at a path saw the same file (exiftool rewrites into a new file and renames it). */
const sameFile = (a: FileIdentity, b: FileIdentity) => a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.size === b.size;

/** The digest of a file with its identity, refused (rejects) when the file changed while it was hashed. */
async function hashUnchanged(path: string): Promise<{ sha256: string } & FileIdentity> {
  const before = await stat(path);
  const { sha256, size } = await BlobStore.hashFile(path);
  const after = await stat(path);
  if (!sameFile(before, after) || after.size !== size) throw new Error(`${path} changed while it was hashed`);
  return { sha256, size, ino: after.ino, mtimeMs: after.mtimeMs };
}

/** An upload's Upload-Metadata for a queue item. No sha256: it is declared after the bytes (hashed while they are sent, or known). */
function uploadMetadata(item: Pick<QueueRecord, 'kind' | 'filename' | 'comment' | 'idempotencyKey' | 'assetId' | 'baseVersion' | 'collection'>): Record<string, string | undefined> {
  const metadata: Record<string, string | undefined> = { filename: item.filename, comment: item.comment, idempotencyKey: item.idempotencyKey };
  if (item.kind === 'version') {
    metadata.asset = item.assetId;
    metadata.ifMatch = item.baseVersion;
  } else {
    metadata.collection = item.collection;
  }
  return metadata;
}

export class PushQueue implements QueueSummary {
  readonly #services: AgentServices;
  readonly #checkouts: Checkouts;
  readonly #db: Low<QueueFile>;
  readonly #options: Required<Omit<PushQueueOptions, 'policy'>> & Pick<PushQueueOptions, 'policy'>;
  readonly #abort = new AbortController();
  /** Head starts of items just queued, by item id (waited for by the worker). */
  readonly #headStarts = new Map<string, HeadStart>();
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(services: AgentServices, checkouts: Checkouts, db: Low<QueueFile>, options: PushQueueOptions) {
    this.#services = services;
    this.#checkouts = checkouts;
    this.#db = db;
    this.#options = { retryBaseMs: options.retryBaseMs ?? 1000, settleMs: options.settleMs ?? 300, policy: options.policy };
  }

  /** Opens the queue and starts its worker (items cut short by a stop are retried now). */
  static async open(services: AgentServices, checkouts: Checkouts, options: PushQueueOptions = {}): Promise<PushQueue> {
    const db = new Low(new JSONFile<QueueFile>(join(services.dir, QUEUE_FILE)), { items: [] });
    await db.read();
    if (!Array.isArray(db.data?.items)) db.data = { items: [] };
    const now = Date.now();
    db.data.items = db.data.items.filter((i) => i.state !== 'done' || now - Date.parse(i.updated) < DONE_KEPT_MS);
    for (const item of db.data.items) {
      if (item.state === 'uploading') {
        item.state = 'retrying';
        item.nextAttempt = new Date(now).toISOString();
      }
    }
    await db.write();
    const queue = new PushQueue(services, checkouts, db, options);
    queue.#kick();
    return queue;
  }

  list(): QueueRecord[] {
    return this.#db.data.items.map((i) => ({ ...i, progress: { ...i.progress } }));
  }

  get(id: string): QueueRecord | undefined {
    const found = this.#db.data.items.find((i) => i.id === id);
    return found && { ...found, progress: { ...found.progress } };
  }

  require(id: string): QueueRecord {
    const found = this.get(id);
    if (!found) throw new ProtocolError('ERR_QUEUE_ITEM_NOT_FOUND', `no queued push ${JSON.stringify(id)}`);
    return found;
  }

  counts(): { pending: number; conflicts: number; failed: number } {
    const items = this.#db.data.items;
    return {
      pending: items.filter((i) => PENDING.has(i.state)).length,
      conflicts: items.filter((i) => i.state === 'conflict').length,
      failed: items.filter((i) => i.state === 'failed' && !i.discarded).length,
    };
  }

  /**
   * Prepares a push of checkout `checkoutId` (push.ts) and queues it; resolves once the item is
   * on disk. Refused while the checkout downloads, or has a push in flight or in conflict.
   */
  async enqueue(checkoutId: string, request: PushRequest): Promise<QueueRecord & { repeated?: true }> {
    const checkout = this.#checkouts.require(checkoutId);
    if (request.requestId) {
      const earlier = this.#db.data.items.find((i) => i.checkout === checkout.id && i.requestId === request.requestId);
      if (earlier) return { ...earlier, repeated: true };
    }
    if (checkout.state === 'downloading' || checkout.state === 'failed') {
      throw new ProtocolError('ERR_CONFLICT', `checkout ${checkout.id} is not ready (${checkout.state})`);
    }
    const inFlight = this.#db.data.items.find((i) => i.checkout === checkout.id && (PENDING.has(i.state) || i.state === 'conflict'));
    if (inFlight) {
      throw new ProtocolError(
        'ERR_CONFLICT',
        `checkout ${checkout.id} already has a push ${inFlight.state === 'conflict' ? 'in conflict (resolve it first)' : 'in the queue'}: ${inFlight.id}`,
        { extensions: { item: inFlight.id } },
      );
    }
    const id = newItemId();
    const idempotencyKey = randomUUID();
    const policy = (await this.#options.policy?.(checkout.connection)) ?? {};
    let headStart: HeadStart | undefined;
    let prepared: Awaited<ReturnType<typeof preparePush>>;
    try {
      prepared = await preparePush({
        agentDir: this.#services.dir,
        itemId: id,
        checkout,
        path: request.path,
        policy,
        settleMs: this.#options.settleMs,
        onWriting: (file, written) => {
          const metadata = uploadMetadata({ kind: 'version', filename: file.filename, comment: request.comment, idempotencyKey, assetId: checkout.assetId, baseVersion: checkout.baseVersion });
          headStart = this.#headStart(checkout.connection, metadata, followFile(file.path, written), written.then(() => hashUnchanged(file.path)));
        },
      });
    } catch (error) {
      headStart?.abandon();
      throw error;
    }
    const now = new Date().toISOString();
    const item: QueueRecord = {
      id,
      idempotencyKey,
      checkout: checkout.id,
      connection: checkout.connection,
      assetId: checkout.assetId,
      baseVersion: checkout.baseVersion,
      kind: 'version',
      path: prepared.path,
      state: 'queued',
      attempts: 0,
      progress: { done: 0, total: prepared.size },
      created: now,
      updated: now,
      size: prepared.size,
      filename: prepared.filename,
      restored: prepared.restored,
      warnings: prepared.warnings,
    };
    if (prepared.mediaType) item.mediaType = prepared.mediaType;
    if (request.comment) item.comment = request.comment;
    if (request.requestId) item.requestId = request.requestId;
    if (headStart?.url) item.uploadUrl = headStart.url;
    // Known to the worker before the item is: it never sends beside its head start.
    if (headStart) {
      this.#headStarts.set(id, headStart);
      headStart.onSent = (sent) => (item.progress = { done: Math.min(sent, item.size), total: item.size });
      headStart.onSent(headStart.sent);
    }
    this.#db.data.items.push(item);
    try {
      await this.#save();
    } catch (error) {
      this.#db.data.items = this.#db.data.items.filter((i) => i.id !== id);
      this.#headStarts.delete(id);
      headStart?.abandon();
      await removeSpoolFolder(this.#services.dir, id);
      throw error;
    }
    await this.#checkouts.update(checkout.id, { state: 'pushing', pushItem: id });
    this.#kick();
    return this.require(id);
  }

  /** Tries a failed or waiting item again now. */
  async retry(id: string): Promise<QueueRecord> {
    const item = this.#item(id);
    if (item.state !== 'failed' && item.state !== 'retrying' && item.state !== 'queued') {
      throw new ProtocolError('ERR_CONFLICT', `push ${id} is ${item.state}: only failed or waiting pushes are retried`);
    }
    if (item.discarded) throw new ProtocolError('ERR_CONFLICT', `push ${id} was discarded`);
    if (!(await exists(item.path))) {
      throw new ProtocolError('ERR_FILE_MISSING', `the prepared file of push ${id} is gone; push the checkout again`);
    }
    this.#set(item, { state: 'queued', nextAttempt: undefined });
    await this.#save();
    await this.#checkouts.update(item.checkout, { state: 'pushing', pushItem: id }).catch(() => {});
    this.#kick();
    return this.require(id);
  }

  /** Resolves a conflict (see the module comment). */
  async resolve(id: string, request: ResolveConflictRequest): Promise<QueueRecord> {
    const item = this.#item(id);
    if (item.state !== 'conflict') throw new ProtocolError('ERR_NOT_IN_CONFLICT', `push ${id} is ${item.state}, not in conflict`);
    const checkout = this.#checkouts.get(item.checkout);
    if (request.action === 'discard') {
      this.#set(item, { state: 'failed', discarded: true, error: { code: 'ERR_CONFLICT', message: 'discarded after a conflict' } });
      await this.#save();
      await removeSpoolFolder(this.#services.dir, id);
      if (checkout) await this.#checkouts.update(checkout.id, { state: 'ready', pushItem: undefined });
      return this.require(id);
    }
    const { asset, etag } = await this.#services.client(item.connection, { timeoutMs: 30_000 }).getAsset(item.assetId);
    if (request.action === 'push-on-top') {
      this.#set(item, { baseVersion: etag, currentVersion: etag, idempotencyKey: randomUUID(), uploadUrl: undefined });
    } else {
      // A new asset derived from the newest version: a new document that says where it came from.
      const authority = parseUri(checkout?.uri ?? asset.uri).authority;
      const parentUri = formatUri({ authority, type: 'images', id: asset.id, version: etag });
      await writeForkProvenance(item.path, { parentUri });
      const { size } = await stat(item.path);
      this.#set(item, {
        kind: 'new-asset',
        sha256: undefined, // the file changed: hashed again as it is uploaded
        size,
        baseVersion: etag,
        currentVersion: etag,
        collection: asset.collections[0],
        idempotencyKey: randomUUID(),
        uploadUrl: undefined,
        progress: { done: 0, total: size },
      });
    }
    this.#set(item, { state: 'queued', error: undefined, nextAttempt: undefined });
    await this.#save();
    if (checkout) await this.#checkouts.update(checkout.id, { state: 'pushing', pushItem: id });
    this.#kick();
    return this.require(id);
  }

  #item(id: string): QueueRecord {
    const found = this.#db.data.items.find((i) => i.id === id);
    if (!found) throw new ProtocolError('ERR_QUEUE_ITEM_NOT_FOUND', `no queued push ${JSON.stringify(id)}`);
    return found;
  }

  #set(item: QueueRecord, patch: Partial<QueueRecord>): void {
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete (item as unknown as Record<string, unknown>)[key];
      else (item as unknown as Record<string, unknown>)[key] = value;
    }
    item.updated = new Date().toISOString();
  }

  #save(): Promise<void> {
    return this.#db.write().catch((error) => Promise.reject(fileSystemError(error, 'save the push queue')));
  }

  // --- the worker ------------------------------------------------------------------------------

  #kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#running = this.#work().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  /** Uploads due items one after another (pushes of a checkout land in order); sleeps until the next is due. */
  async #work(): Promise<void> {
    for (;;) {
      if (this.#closed) return;
      this.#again = false;
      const now = Date.now();
      const due = this.#db.data.items.find(
        (i) => i.state === 'queued' || (i.state === 'retrying' && Date.parse(i.nextAttempt ?? '') <= now),
      );
      if (!due) {
        const waits = this.#db.data.items
          .filter((i) => i.state === 'retrying')
          .map((i) => Date.parse(i.nextAttempt ?? '') - now);
        if (waits.length && !this.#again) {
          this.#timer = setTimeout(() => this.#kick(), Math.max(0, Math.min(...waits)));
          this.#timer.unref();
        }
        return;
      }
      await this.#attempt(due);
    }
  }

  async #attempt(item: QueueRecord): Promise<void> {
    this.#set(item, { state: 'uploading', attempts: item.attempts + 1, nextAttempt: undefined });
    await this.#save().catch(() => {});
    const headStart = this.#headStarts.get(item.id);
    if (headStart) {
      // What it sent is resumed below: the worker never sends while it does. The finished file's
      // digest (declared at the end, checked by the server against what it received) was taken
      // as soon as the file was written; if something rewrote the file since, the upload hashes it.
      this.#headStarts.delete(item.id);
      const [digest] = await Promise.all([headStart.digest.catch(() => undefined), headStart.done]);
      const current = await stat(item.path).catch(() => undefined);
      if (item.sha256 === undefined && digest && current && sameFile(digest, current) && digest.size === item.size) {
        this.#set(item, { sha256: digest.sha256 });
      }
      if (headStart.url && !item.uploadUrl) this.#set(item, { uploadUrl: headStart.url });
      await this.#save().catch(() => {});
    }
    try {
      if (!(await exists(item.path))) {
        throw new ProtocolError('ERR_FILE_MISSING', `the prepared file of push ${item.id} is gone; push the checkout again`);
      }
      const result = await this.#upload(item);
      await this.#landed(item, result);
    } catch (error) {
      if (this.#closed) {
        // Stopping: the item is retried (and its upload resumed) at the next start.
        this.#set(item, { state: 'retrying', nextAttempt: new Date().toISOString() });
      } else if (isProtocolError(error, 'ERR_PRECONDITION_FAILED')) {
        const current = (error.extensions.currentVersion as string | undefined) ?? undefined;
        this.#set(item, { state: 'conflict', error: errorOf(error), currentVersion: current, uploadUrl: undefined });
        await this.#checkouts.update(item.checkout, { state: 'conflict' }).catch(() => {});
      } else if (isRetryable(error)) {
        const wait = backoffMs(item.attempts, this.#options.retryBaseMs, this.#services.config.agentRetryMaxSeconds * 1000);
        this.#set(item, { state: 'retrying', error: errorOf(error), nextAttempt: new Date(Date.now() + wait).toISOString() });
        if (isProtocolError(error, 'ERR_DIGEST_MISMATCH') || isProtocolError(error, 'ERR_UPLOAD_INCOMPLETE')) {
          this.#set(item, { uploadUrl: undefined }); // those bytes are wrong: start a new upload
        }
      } else {
        this.#set(item, { state: 'failed', error: errorOf(error) });
        await this.#checkouts.update(item.checkout, { state: 'ready', pushItem: undefined }).catch(() => {});
      }
      await this.#save().catch(() => {});
    }
  }

  async #upload(item: QueueRecord): Promise<{ assetId: string; version: string }> {
    const { connection, endpoint } = await this.#uploadsEndpoint(item.connection);
    const metadata = uploadMetadata(item);
    return tusUpload({
      fetch: this.#services.fetch,
      endpoint,
      token: connection.token,
      path: item.path,
      size: item.size,
      metadata,
      uploadUrl: item.uploadUrl,
      sha256: item.sha256,
      onDigest: async (sha256) => {
        if (item.sha256 === sha256) return;
        this.#set(item, { sha256 });
        await this.#save();
      },
      signal: this.#abort.signal,
      onCreated: async (url) => {
        this.#set(item, { uploadUrl: url });
        await this.#save();
      },
      onProgress: (done, total) => {
        item.progress = { done, total };
      },
    });
  }

  /** A connection and its server's uploads endpoint (from its discovery document). */
  async #uploadsEndpoint(connectionId: string): Promise<{ connection: ReturnType<AgentServices['connections']['require']>; endpoint: string }> {
    const connection = this.#services.connections.require(connectionId);
    const discovery = await this.#services.client(connectionId, { timeoutMs: 30_000 }).discover();
    const api = new URL(discovery.endpoints.api, connection.origin).href.replace(/\/+$/, '');
    return { connection, endpoint: new URL(discovery.endpoints.uploads ?? `${api}/uploads`, connection.origin).href };
  }

  /** Starts sending a push's file while it is being written (see the module comment); never throws. */
  #headStart(connectionId: string, metadata: Record<string, string | undefined>, stream: Readable, digest: HeadStart['digest']): HeadStart {
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, this.#abort.signal]);
    digest.catch(() => {}); // a failed write fails the push; an unreadable file is hashed again
    const headStart: HeadStart = {
      url: undefined,
      sent: 0,
      digest,
      done: (async () => {
        const { connection, endpoint } = await this.#uploadsEndpoint(connectionId);
        await tusHeadStart({
          fetch: this.#services.fetch,
          endpoint,
          token: connection.token,
          metadata,
          stream,
          signal,
          onCreated: (url) => (headStart.url = url),
          onSent: (sent) => {
            headStart.sent = sent;
            headStart.onSent?.(sent);
          },
        });
      })().then(
        () => undefined,
        () => {
          stream.destroy();
        },
      ),
      abandon: () => {
        stop.abort(new ProtocolError('ERR_CONFLICT', 'the push was not queued'));
        void headStart.done.then(async () => {
          if (!headStart.url) return;
          const { connection } = await this.#uploadsEndpoint(connectionId);
          const headers: Record<string, string> = { 'Tus-Resumable': TUS_VERSION };
          if (connection.token) headers.Authorization = `Bearer ${connection.token}`;
          const res = await this.#services.fetch(headStart.url, { method: 'DELETE', headers, signal: AbortSignal.timeout(10_000) });
          await res.body?.cancel();
        }).catch(() => {}); // an upload left behind is swept by the server
      },
    };
    return headStart;
  }

  /** A push landed: the item is done, the checkout's base is the new version (its file the new pristine copy). */
  async #landed(item: QueueRecord, result: { assetId: string; version: string }): Promise<void> {
    const checkout = this.#checkouts.get(item.checkout);
    const authority = parseUri(checkout?.uri ?? `imagine://${connectionAuthority(this.#services, item.connection)}/images/${item.assetId}`).authority;
    const uri = formatUri({ authority, type: 'images', id: result.assetId, version: result.version });
    // Known since the upload declared it (hashed here only if a server finished it without asking).
    if (item.sha256 === undefined && item.kind === 'version' && (await exists(item.path))) {
      this.#set(item, { sha256: (await BlobStore.hashFile(item.path)).sha256 });
    }
    let pristine: string | undefined;
    if (item.kind === 'version' && item.sha256 !== undefined) {
      pristine = join(this.#services.dir, PRISTINE_DIR, item.sha256);
      await mkdir(join(this.#services.dir, PRISTINE_DIR), { recursive: true });
      await rename(item.path, pristine).catch(() => (pristine = undefined));
    }
    // The checkout moves on first: whoever sees the item done then finds the checkout's new base
    // (a checkout of the old version asked for right after is a new one, not this).
    if (checkout && item.kind === 'version' && result.assetId === checkout.assetId) {
      await this.#checkouts.update(checkout.id, {
        state: 'pushed',
        baseVersion: result.version,
        sha256: item.sha256,
        pristine: pristine ?? checkout.pristine,
        pushItem: undefined,
      });
    } else if (checkout) {
      await this.#checkouts.update(checkout.id, { state: 'pushed', pushItem: undefined });
    }
    this.#set(item, {
      state: 'done',
      result: { uri, assetId: result.assetId, version: result.version },
      progress: { done: item.size, total: item.size },
      error: undefined,
      uploadUrl: undefined,
    });
    await this.#save().catch(() => {});
    await removeSpoolFolder(this.#services.dir, item.id);
  }

  /** Stops the worker; an upload in flight is cut and resumed at the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort(new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'the agent is stopping'));
    await this.#running?.catch(() => {});
    // Head starts stop with the abort; what they sent is resumed at the next start.
    await Promise.all([...this.#headStarts.values()].map((headStart) => headStart.done));
    await this.#db.write().catch(() => {});
  }
}

function connectionAuthority(services: AgentServices, connectionId: string): string {
  const origin = services.connections.require(connectionId).origin;
  return origin.slice(origin.indexOf('://') + 3);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
