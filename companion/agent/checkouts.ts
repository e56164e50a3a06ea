/**
 * Checkouts: a server's file on this machine, ready for the editor, with the version it was
 * made from (the base a push sends as `If-Match`).
 *
 * `start({ uri, rendition, version })` answers at once with a `downloading` checkout; the
 * download runs in the background through a signed URL, into a `.part` file that a broken
 * transfer resumes with `Range` (download.ts), verified by sha256, kept as the content-addressed
 * pristine copy of the base (`<data>/agent/pristine/<sha256>`, what metadata preservation
 * compares the edited file with), and linked into the working folder under a readable name
 * (`harbour-at-dawn_a1b2_v3.jpg`) without ever overwriting a file there. Checking out the same
 * version again reuses the checkout and its file. Progress is pushed to subscribers (the SSE
 * route) and the records are kept in `<data>/agent/checkouts.json` (lowdb); a download cut by a
 * restart resumes when the agent starts again.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants } from 'node:fs';
import { copyFile, link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import type { Checkout, CheckoutRendition, CheckoutRequest, CheckoutState } from '../../shared/schemas/agent.ts';
import type { Asset } from '../../shared/schemas/asset.ts';
import { formatUri, parseUri } from '../../shared/uri.ts';
import { downloadVerified, fileSystemError } from './download.ts';
import type { AgentServices } from './services.ts';

export const CHECKOUTS_FILE = 'checkouts.json';
export const PRISTINE_DIR = 'pristine';
export const DOWNLOADS_DIR = 'downloads';

/** A checkout as stored: the contract's fields and what the agent needs to push it. */
export interface CheckoutRecord extends Checkout {
  /** The asset's file name on the server (sent back with a push). */
  assetFilename: string;
  mediaType?: string;
  size?: number;
  /** Content-addressed copy of the base version's file. */
  pristine?: string;
  /** The queued push of this checkout in flight, if any. */
  pushItem?: string;
}

interface CheckoutsFile {
  checkouts: CheckoutRecord[];
}

export interface CheckoutOptions {
  /** Attempts of one download (each resumes the last; default 4). */
  downloadAttempts?: number;
  /** Pause between two attempts, ms (default 500, doubled each time). */
  retryDelayMs?: number;
}

const REUSABLE: CheckoutState[] = ['downloading', 'ready', 'failed', 'pushing', 'conflict'];
const SETTLED: CheckoutState[] = ['ready', 'failed', 'pushed', 'conflict'];

/** Whether a checkout's download is over (ready or failed, or it moved on since). */
export function isSettled(checkout: Checkout): boolean {
  return SETTLED.includes(checkout.state);
}

/**
 * A readable file name for a working file: the title (or the server's file name), the start of
 * the asset id and the version.
 *
 * @example
 *   workingFilename({ title: 'Harbour at dawn', filename: 'IMG_01.jpg', assetId: 'a1b2c3', version: 'v3' });
 *   // 'harbour-at-dawn_a1b2_v3.jpg'
 */
export function workingFilename(input: { title?: unknown; filename: string; assetId: string; version: string; rendition?: CheckoutRendition }): string {
  const ext = input.rendition === 'proxy' ? '.jpg' : extname(input.filename).toLowerCase().replace(/[^.a-z0-9]/g, '').slice(0, 10);
  const title = titleText(input.title) ?? input.filename.slice(0, input.filename.length - extname(input.filename).length);
  const slug =
    title
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60)
      .replace(/-+$/, '') || 'image';
  const id = input.assetId.replace(/[^A-Za-z0-9]/g, '').slice(0, 4) || 'x';
  const version = input.version.replace(/[^A-Za-z0-9.-]/g, '').slice(0, 20);
  return `${slug}_${id}_${version}${input.rendition === 'proxy' ? '_proxy' : ''}${ext}`;
}

function titleText(title: unknown): string | undefined {
  if (typeof title === 'string') return title.trim() || undefined;
  if (title && typeof title === 'object' && !Array.isArray(title)) {
    const values = title as Record<string, unknown>;
    const text = values['x-default'] ?? Object.values(values)[0];
    return typeof text === 'string' ? text.trim() || undefined : undefined;
  }
  return undefined;
}

const newCheckoutId = () => `co_${randomBytes(9).toString('base64url')}`;

export class Checkouts {
  readonly #services: AgentServices;
  readonly #db: Low<CheckoutsFile>;
  readonly #events = new EventEmitter();
  readonly #tasks = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  readonly #options: Required<CheckoutOptions>;

  private constructor(services: AgentServices, db: Low<CheckoutsFile>, options: CheckoutOptions) {
    this.#services = services;
    this.#db = db;
    this.#options = { downloadAttempts: options.downloadAttempts ?? 4, retryDelayMs: options.retryDelayMs ?? 500 };
    this.#events.setMaxListeners(0);
  }

  static async open(services: AgentServices, options: CheckoutOptions = {}): Promise<Checkouts> {
    const db = new Low(new JSONFile<CheckoutsFile>(join(services.dir, CHECKOUTS_FILE)), { checkouts: [] });
    await db.read();
    if (!Array.isArray(db.data?.checkouts)) db.data = { checkouts: [] };
    const checkouts = new Checkouts(services, db, options);
    // Downloads a stop cut short resume now, from their .part files.
    for (const record of db.data.checkouts) if (record.state === 'downloading') checkouts.#download(record.id);
    return checkouts;
  }

  list(): CheckoutRecord[] {
    return this.#db.data.checkouts.map((c) => ({ ...c }));
  }

  get(id: string): CheckoutRecord | undefined {
    const found = this.#db.data.checkouts.find((c) => c.id === id);
    return found && { ...found };
  }

  require(id: string): CheckoutRecord {
    const found = this.get(id);
    if (!found) throw new ProtocolError('ERR_CHECKOUT_NOT_FOUND', `no checkout ${JSON.stringify(id)}`);
    return found;
  }

  /** The checkout whose working file is `path` (the newest, should there be several). */
  byPath(path: string): CheckoutRecord | undefined {
    const wanted = resolve(path);
    const found = this.#db.data.checkouts.filter((c) => c.path === wanted).pop();
    return found && { ...found };
  }

  /** Calls `fn` with every new snapshot of checkout `id`; answers the unsubscribe function. */
  subscribe(id: string, fn: (checkout: CheckoutRecord) => void): () => void {
    const listener = (checkout: CheckoutRecord) => {
      if (checkout.id === id) fn(checkout);
    };
    this.#events.on('change', listener);
    return () => this.#events.off('change', listener);
  }

  /** Changes a checkout and persists it (for the push queue: states, new base). */
  async update(id: string, patch: Partial<CheckoutRecord>, options: { persist?: boolean } = {}): Promise<CheckoutRecord> {
    const record = this.#db.data.checkouts.find((c) => c.id === id);
    if (!record) throw new ProtocolError('ERR_CHECKOUT_NOT_FOUND', `no checkout ${JSON.stringify(id)}`);
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete (record as unknown as Record<string, unknown>)[key];
      else (record as unknown as Record<string, unknown>)[key] = value;
    }
    record.updated = new Date().toISOString();
    if (options.persist !== false) await this.#save();
    this.#events.emit('change', { ...record });
    return { ...record };
  }

  /**
   * Checks out `request.uri` (answers at once; the download goes on in the background). A
   * checkout of the same version and rendition that was not pushed yet is reused.
   */
  async start(request: CheckoutRequest): Promise<{ checkout: CheckoutRecord; reused: boolean }> {
    const uri = parseUri(request.uri);
    if (uri.type !== 'images') throw new ProtocolError('ERR_URI_INVALID', `only images can be checked out, not ${uri.type}`);
    const connection = this.#services.connections.byAuthority(uri.authority);
    if (!connection) {
      throw new ProtocolError('ERR_CONNECTION_NOT_FOUND', `no connection to ${uri.authority} (add it with: imagine connect)`);
    }
    const rendition: CheckoutRendition = request.rendition ?? 'original';
    const wantedVersion = request.version ?? uri.version;
    const reusable = (version: string) =>
      this.#db.data.checkouts
        .filter((c) => c.connection === connection.id && c.assetId === uri.id && c.baseVersion === version && c.rendition === rendition)
        .filter((c) => REUSABLE.includes(c.state))
        .pop();

    let asset: Asset;
    try {
      ({ asset } = await this.#services.client(connection.id).getAsset(uri.id));
    } catch (error) {
      // Offline, a checkout already on disk is still good.
      const existing = wantedVersion === undefined ? undefined : reusable(wantedVersion);
      if (existing) return { checkout: await this.#reuse(existing), reused: true };
      throw error;
    }
    const version = wantedVersion ?? asset.currentVersion;
    if (!asset.versions.some((v) => v.id === version)) {
      throw new ProtocolError('ERR_VERSION_NOT_FOUND', `asset "${asset.id}" has no version "${version}"`);
    }
    const existing = reusable(version);
    if (existing) return { checkout: await this.#reuse(existing), reused: true };

    const id = newCheckoutId();
    const name = workingFilename({ title: asset.metadata.title, filename: asset.filename, assetId: asset.id, version, rendition });
    const path = await this.#freePath(name);
    const now = new Date().toISOString();
    const versionInfo = asset.versions.find((v) => v.id === version);
    const record: CheckoutRecord = {
      id,
      uri: formatUri({ authority: uri.authority, type: 'images', id: asset.id }),
      connection: connection.id,
      assetId: asset.id,
      baseVersion: version,
      rendition,
      path,
      filename: path.slice(path.lastIndexOf('/') + 1),
      state: 'downloading',
      progress: { done: 0, total: rendition === 'original' && typeof versionInfo?.size === 'number' ? versionInfo.size : null },
      created: now,
      updated: now,
      assetFilename: asset.filename,
    };
    this.#db.data.checkouts.push(record);
    await this.#save();
    this.#download(id);
    return { checkout: { ...record }, reused: false };
  }

  /** A reused checkout: a failed download starts again; a working file that vanished comes back. */
  async #reuse(record: CheckoutRecord): Promise<CheckoutRecord> {
    if (record.state === 'failed') {
      const next = await this.update(record.id, { state: 'downloading', error: undefined });
      this.#download(record.id);
      return next;
    }
    if (record.state !== 'downloading' && record.pristine && !(await exists(record.path))) {
      await this.#placeWorkingFile(record.pristine, record.path);
    }
    return { ...record };
  }

  /** `name` in the working folder, with `-2`, `-3`... when a file or another checkout has it. */
  async #freePath(name: string): Promise<string> {
    const ext = extname(name);
    const stem = name.slice(0, name.length - ext.length);
    const taken = new Set(this.#db.data.checkouts.map((c) => c.path));
    for (let n = 1; ; n++) {
      const path = join(this.#services.workDir, n === 1 ? name : `${stem}-${n}${ext}`);
      if (!taken.has(path) && !(await exists(path))) return path;
    }
  }

  #download(id: string): void {
    if (this.#tasks.has(id)) return;
    const task = this.#runDownload(id)
      .catch(async (error) => {
        if (this.#abort.signal.aborted) return; // stopping: resumed at the next start
        const problem = isProtocolError(error) ? error : new ProtocolError('ERR_INTERNAL', 'the download failed', { cause: error });
        await this.update(id, { state: 'failed', error: { code: problem.code, message: problem.message } }).catch(() => {});
      })
      .finally(() => this.#tasks.delete(id));
    this.#tasks.set(id, task);
  }

  async #runDownload(id: string): Promise<void> {
    const record = this.require(id);
    const client = this.#services.client(record.connection, { timeoutMs: 30_000 });
    const rendition = record.rendition === 'proxy' ? 'thumbnail' : 'original';
    let ticket = await client.downloadTicket(record.assetId, { rendition, version: record.baseVersion });
    const pristineDir = join(this.#services.dir, PRISTINE_DIR);
    const downloadsDir = join(this.#services.dir, DOWNLOADS_DIR);
    await mkdir(pristineDir, { recursive: true }).catch((e) => Promise.reject(fileSystemError(e, 'create the pristine folder')));
    await mkdir(downloadsDir, { recursive: true }).catch((e) => Promise.reject(fileSystemError(e, 'create the downloads folder')));
    const pristine = join(pristineDir, ticket.sha256);
    await this.update(id, { progress: { done: 0, total: ticket.size }, mediaType: ticket.mediaType, size: ticket.size }, { persist: false });

    if ((await stat(pristine).then((s) => s.size, () => -1)) !== ticket.size) {
      const part = join(downloadsDir, `${ticket.sha256}.part`);
      let lastProgress = 0;
      for (let attempt = 1; ; attempt++) {
        try {
          await downloadVerified({
            url: ticket.url,
            fetch: this.#services.fetch,
            partPath: part,
            size: ticket.size,
            sha256: ticket.sha256,
            signal: this.#abort.signal,
            onProgress: (done, total) => {
              if (done === lastProgress) return;
              lastProgress = done;
              void this.update(id, { progress: { done, total } }, { persist: false });
            },
          });
          break;
        } catch (error) {
          if (this.#abort.signal.aborted) throw error;
          const again =
            attempt < this.#options.downloadAttempts &&
            (isProtocolError(error, 'ERR_DOWNLOAD_INCOMPLETE') || (isProtocolError(error, 'ERR_DIGEST_MISMATCH') && attempt < 2));
          if (!again) throw error;
          await sleep(this.#options.retryDelayMs * 2 ** (attempt - 1), undefined, { signal: this.#abort.signal });
          // Signed URLs live minutes: a fresh one for each attempt.
          ticket = await client.downloadTicket(record.assetId, { rendition, version: record.baseVersion });
        }
      }
      await rename(part, pristine).catch((e) => Promise.reject(fileSystemError(e, 'keep the downloaded file')));
    }
    await this.#placeWorkingFile(pristine, record.path);
    await this.update(id, {
      state: 'ready',
      sha256: ticket.sha256,
      pristine,
      progress: { done: ticket.size, total: ticket.size },
      error: undefined,
    });
  }

  /** Copies the pristine file to `path` through a temp file, never replacing a file already there. */
  async #placeWorkingFile(pristine: string, path: string): Promise<void> {
    if (await exists(path)) return; // the user's file (being edited) is never overwritten
    await mkdir(this.#services.workDir, { recursive: true });
    const temp = `${path}.${randomBytes(4).toString('hex')}.part`;
    try {
      await copyFile(pristine, temp, constants.COPYFILE_FICLONE);
      await link(temp, path).catch((error) => {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      });
    } catch (error) {
      throw fileSystemError(error, `write ${path}`);
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Waits until checkout `id` is ready or failed (or moved on); answers it. */
  async settled(id: string, timeoutMs = 10 * 60_000): Promise<CheckoutRecord> {
    const current = this.require(id);
    if (isSettled(current)) return current;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ProtocolError('ERR_UPSTREAM_TIMEOUT', `checkout ${id} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.subscribe(id, (checkout) => {
        if (!isSettled(checkout)) return;
        clearTimeout(timer);
        off();
        resolvePromise(checkout);
      });
    });
  }

  #save(): Promise<void> {
    return this.#db.write().catch((error) => Promise.reject(fileSystemError(error, 'save the checkouts')));
  }

  /** Stops the downloads in flight (each resumes at the next start) and waits for them. */
  async close(): Promise<void> {
    this.#abort.abort(new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'the agent is stopping'));
    await Promise.allSettled([...this.#tasks.values()]);
    await this.#db.write().catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
