/**
 * The mirror store of one connection: the server's assets as it last showed them, by id, and
 * the sync state (feed cursor, last event, scope, errors), durable across crashes.
 *
 * On disk, in `<data>/agent/mirror/<connection>/`:
 *
 *   snapshot.ndjson   line 1 `{"kind":"imagine-mirror","format":1,"gen":G,"state":{…},"count":N}`,
 *                     then one `{"s":scanGen,"a":{asset}}` per line. Written whole to a temp
 *                     file, fsynced and renamed: a crash leaves the old or the new one.
 *   log.ndjson        line 1 `{"kind":"imagine-mirror-log","gen":G}`, then one operation per
 *                     line since that snapshot: `{"put":{asset},"s":scanGen}`, `{"del":"id"}`,
 *                     `{"state":{…}}`, `{"clear":true}`. Each `apply()` is one append + fsync.
 *
 * Loading reads the snapshot, then replays the log of the same generation. A batch's state
 * (its cursor) comes after its assets, so any prefix of the log is a consistent mirror: a torn
 * or unreadable line (a crash mid-append) ends the replay, and the feed is read again from the
 * cursor before it (re-applying assets is idempotent). A failed append (a full disk) is cut
 * back off the log, and memory is only changed once the batch is on disk, so nothing a failed
 * write left half-done is ever served. Once the log outgrows the snapshot it is compacted.
 *
 * @example
 *   const store = await MirrorStore.open(join(agentDir, 'mirror', 'images.example'));
 *   await store.apply({ put: [asset], state: { ...store.state, cursor: page.next } });
 *   store.get(asset.id);
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ProtocolError } from '../../../shared/errors.ts';
import type { Asset } from '../../../shared/schemas/asset.ts';
import type { ErrorNote } from './errors.ts';

export const SNAPSHOT_FILE = 'snapshot.ndjson';
export const LOG_FILE = 'log.ndjson';
const SNAPSHOT_KIND = 'imagine-mirror';
const LOG_KIND = 'imagine-mirror-log';
const FORMAT = 1;

/** Log operations after which, if the log is also bigger than half the snapshot, it is compacted. */
const COMPACT_MIN_OPS = 2000;
/** Lines written per chunk when a snapshot is written (the event loop runs between chunks). */
const SNAPSHOT_CHUNK = 500;


/** Where an initial (or repeated) full sync stands, so it resumes after a crash. */
export interface InitialSync {
  /** Why it runs: `first sync`, `cursor unknown to the server`, `server restored from a backup`… */
  reason: string;
  startedAt: string;
  /** Feed cursor taken before the scan: changes after it are replayed once the scan is done. */
  head: string | null;
  /** Every asset the scan writes carries this number; what the scan did not see is removed. */
  scanGen: number;
  /** Index into the scopes (collections, or the whole library) being scanned. */
  scope: number;
  /** `lastSeq` and `lastEvent` at `head`. */
  headSeq: number;
  headEvent: MirrorState['lastEvent'];
  /** Search cursor within the current scope; null at its start. */
  page: string | null;
  /** How many assets the scan has written so far. */
  scanned: number;
}

export interface MirrorState {
  /** Feed cursor after the last applied page; null before the first full sync has finished. */
  cursor: string | null;
  /** Highest `seq` applied from the feed (0: none). */
  lastSeq: number;
  /** The last event applied: a server restored from a backup gives another one at that `seq`. */
  lastEvent: { seq: number; id: string; time: string } | null;
  /** When the mirror last matched the server (end of a sync that read the feed to its end). */
  lastSync: string | null;
  lastError: ErrorNote | null;
  /** Collection ids mirrored; null for everything the token can read. */
  collections: string[] | null;
  initial: InitialSync | null;
  /** Set when the feed's `next` was seen to be the `seq` of the page's last event (restore probes rely on it). */
  seqCursors: boolean;
  /** A full sync to run at the next opportunity, and why (e.g. the mirrored collections changed). */
  pendingResync: string | null;
  /** Full syncs done after the first one (unknown cursor, restore, scope change…). */
  resyncs: number;
  lastResync: { at: string; reason: string } | null;
}

export function initialState(): MirrorState {
  return {
    cursor: null,
    lastSeq: 0,
    lastEvent: null,
    lastSync: null,
    lastError: null,
    collections: null,
    seqCursors: false,
    pendingResync: null,
    initial: null,
    resyncs: 0,
    lastResync: null,
  };
}

/** One atomic change: assets written or removed, then (optionally) the new state. */
export interface MirrorBatch {
  put?: readonly Asset[];
  /** Scan generation the put assets are marked with (default: kept, or 0 for new ones). */
  scanGen?: number;
  delete?: readonly string[];
  /** Removes every asset first (a scope change). */
  clear?: boolean;
  state?: MirrorState;
}

/** What a batch changed in memory, for the index to follow. */
export interface AppliedChanges {
  cleared: boolean;
  put: Asset[];
  deleted: string[];
}

type Op =
  | { put: Asset; s: number }
  | { del: string }
  | { state: MirrorState }
  | { clear: true };

interface Entry {
  asset: Asset;
  /** Scan generation that last wrote it. */
  s: number;
}

export interface MirrorStoreStats {
  assets: number;
  snapshotBytes: number;
  logBytes: number;
  logOps: number;
  /** How the last load went: lines skipped, files set aside. */
  loadWarnings: string[];
}

export interface MirrorStoreOptions {
  /** Opens files for writing (default `fs/promises` `open`); tests inject faults such as a full disk. */
  open?: typeof open;
}

export class MirrorStore {
  readonly dir: string;
  readonly #open: typeof open;
  #entries = new Map<string, Entry>();
  #state: MirrorState = initialState();
  #gen = 0;
  #log: FileHandle | undefined;
  #logBytes = 0;
  #logOps = 0;
  #snapshotBytes = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #listeners: Array<(changes: AppliedChanges) => void> = [];
  #closed = false;
  #loadWarnings: string[] = [];

  private constructor(dir: string, options: MirrorStoreOptions) {
    this.dir = dir;
    this.#open = options.open ?? open;
  }

  /** Opens the store in `dir` (created when missing), loading the snapshot and replaying the log. */
  static async open(dir: string, options: MirrorStoreOptions = {}): Promise<MirrorStore> {
    const store = new MirrorStore(dir, options);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await store.#load();
    return store;
  }

  get state(): MirrorState {
    return this.#state;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): Asset | undefined {
    return this.#entries.get(id)?.asset;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** The scan generation that last wrote this asset. */
  scanGenOf(id: string): number | undefined {
    return this.#entries.get(id)?.s;
  }

  *assets(): IterableIterator<Asset> {
    for (const entry of this.#entries.values()) yield entry.asset;
  }

  ids(): string[] {
    return [...this.#entries.keys()];
  }

  stats(): MirrorStoreStats {
    return {
      assets: this.#entries.size,
      snapshotBytes: this.#snapshotBytes,
      logBytes: this.#logBytes,
      logOps: this.#logOps,
      loadWarnings: [...this.#loadWarnings],
    };
  }

  /** Bytes of the store's files. */
  get bytesOnDisk(): number {
    return this.#snapshotBytes + this.#logBytes;
  }

  /** Called after every applied batch (and a load), with what changed. */
  onApply(listener: (changes: AppliedChanges) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Writes a batch to the log (one append, fsynced), then to memory. Throws ERR_DISK_FULL (or
   * the write's error) with nothing changed, neither on disk nor in memory.
   */
  apply(batch: MirrorBatch): Promise<AppliedChanges> {
    const run = this.#queue.then(() => this.#apply(batch));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Writes a fresh snapshot and starts an empty log (also done by `apply` when the log is big). */
  compact(): Promise<void> {
    const run = this.#queue.then(() => this.#compact());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Flushes (compacting a large log) and closes the log file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    try {
      if (this.#logOps >= COMPACT_MIN_OPS) await this.#compact();
    } catch {
      // the log is durable as it is; compaction only saves time at the next load
    }
    await this.#log?.close().catch(() => undefined);
    this.#log = undefined;
  }

  /** Closes the store and removes its files (the connection was removed). */
  async destroy(): Promise<void> {
    await this.#queue;
    this.#closed = true;
    await this.#log?.close().catch(() => undefined);
    this.#log = undefined;
    this.#entries.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------------------------

  async #apply(batch: MirrorBatch): Promise<AppliedChanges> {
    if (this.#closed) throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', `mirror store ${this.dir} is closed`);
    const ops: Op[] = [];
    if (batch.clear) ops.push({ clear: true });
    for (const id of batch.delete ?? []) ops.push({ del: id });
    for (const asset of batch.put ?? []) {
      const s = batch.scanGen ?? this.#entries.get(asset.id)?.s ?? 0;
      ops.push({ put: asset, s });
    }
    if (ops.length === 0 && !batch.state) return { cleared: false, put: [], deleted: [] };
    // Every batch ends with a state line: that line is what makes the batch whole on reload.
    ops.push({ state: batch.state ?? this.#state });
    const text = ops.map((op) => `${JSON.stringify(op)}\n`).join('');
    await this.#append(text);
    this.#logOps += ops.length;
    const changes = this.#replay(ops);
    this.#emit(changes);
    if (this.#logOps >= COMPACT_MIN_OPS && this.#logBytes > this.#snapshotBytes / 2) {
      try {
        await this.#compact();
      } catch {
        // the batch is durable in the log; compaction is tried again after the next one
      }
    }
    return changes;
  }

  /** Applies operations to memory; answers what changed. */
  #replay(ops: readonly Op[]): AppliedChanges {
    const put = new Map<string, Asset>();
    const deleted = new Set<string>();
    let cleared = false;
    for (const op of ops) {
      if ('clear' in op) {
        cleared = true;
        this.#entries.clear();
        put.clear();
        deleted.clear();
      } else if ('del' in op) {
        if (this.#entries.delete(op.del)) deleted.add(op.del);
        put.delete(op.del);
      } else if ('put' in op) {
        this.#entries.set(op.put.id, { asset: op.put, s: op.s });
        put.set(op.put.id, op.put);
        deleted.delete(op.put.id);
      } else {
        this.#state = op.state;
      }
    }
    return { cleared, put: [...put.values()], deleted: [...deleted] };
  }

  #emit(changes: AppliedChanges): void {
    for (const listener of this.#listeners) listener(changes);
  }

  async #append(text: string): Promise<void> {
    if (!this.#log) await this.#startLog();
    const log = this.#log!;
    const bytes = Buffer.from(text, 'utf8');
    const before = this.#logBytes;
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await log.write(bytes, written, bytes.length - written, before + written);
        written += bytesWritten;
      }
      await log.datasync();
      this.#logBytes = before + bytes.length;
    } catch (error) {
      // Cut what was written off again, so the log ends on a whole batch.
      try {
        await log.truncate(before);
        await log.datasync();
      } catch {
        // The next load stops at the torn line, which is as safe: the batch is read again from the feed.
      }
      throw diskError(error, join(this.dir, LOG_FILE));
    }
  }

  /** Starts a new, empty log of the current generation (replacing any other). */
  async #startLog(): Promise<void> {
    await this.#log?.close().catch(() => undefined);
    this.#log = undefined;
    const path = join(this.dir, LOG_FILE);
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const header = Buffer.from(`${JSON.stringify({ kind: LOG_KIND, gen: this.#gen })}\n`, 'utf8');
    let handle: FileHandle | undefined;
    try {
      handle = await this.#open(temp, 'wx', 0o600);
      await handle.write(header, 0, header.length, 0);
      await handle.datasync();
      await rename(temp, path);
      await syncDir(this.dir);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw diskError(error, path);
    }
    this.#log = handle;
    this.#logBytes = header.length;
    this.#logOps = 0;
  }

  async #compact(): Promise<void> {
    const path = join(this.dir, SNAPSHOT_FILE);
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const gen = this.#gen + 1;
    let handle: FileHandle | undefined;
    let bytes = 0;
    try {
      handle = await this.#open(temp, 'wx', 0o600);
      const header = { kind: SNAPSHOT_KIND, format: FORMAT, gen, state: this.#state, count: this.#entries.size };
      let chunk = `${JSON.stringify(header)}\n`;
      let lines = 0;
      const flush = async () => {
        const buffer = Buffer.from(chunk, 'utf8');
        await handle!.write(buffer, 0, buffer.length, bytes);
        bytes += buffer.length;
        chunk = '';
        lines = 0;
      };
      // A snapshot of what memory holds now: `apply` is queued behind this, so nothing moves.
      for (const entry of this.#entries.values()) {
        chunk += `${JSON.stringify({ s: entry.s, a: entry.asset })}\n`;
        if (++lines >= SNAPSHOT_CHUNK) await flush();
      }
      await flush();
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(temp, path);
      await syncDir(this.dir);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw diskError(error, path);
    }
    this.#gen = gen;
    this.#snapshotBytes = bytes;
    // The old log belongs to the previous generation: a crash before the new one is in place
    // leaves it behind, and the next load ignores it.
    await this.#startLog();
  }

  async #load(): Promise<void> {
    const warnings: string[] = [];
    const snapshotPath = join(this.dir, SNAPSHOT_FILE);
    const logPath = join(this.dir, LOG_FILE);
    let snapshotGen = 0;
    let needsCompaction = false;

    let snapshotBytes: number | undefined;
    try {
      let header: Record<string, unknown> | undefined;
      const entries = new Map<string, Entry>();
      // Parsed as it is read: a 100,000-asset snapshot is never held twice in memory.
      snapshotBytes = await eachLine(snapshotPath, (line, i) => {
        if (i === 0) {
          header = parseHeader(line, SNAPSHOT_KIND);
          if (header.format !== FORMAT) throw new Error(`unknown format ${String(header.format)}`);
          return;
        }
        if (line === '') return;
        const { s, a } = JSON.parse(line) as { s: unknown; a: unknown };
        if (!isAssetLike(a)) throw new Error(`line ${i + 1} is not an asset`);
        entries.set(a.id, { asset: a, s: typeof s === 'number' ? s : 0 });
      });
      if (snapshotBytes !== undefined) {
        if (!header) throw new Error('empty file');
        this.#entries = entries;
        this.#state = { ...initialState(), ...(header.state as Partial<MirrorState>) };
        snapshotGen = typeof header.gen === 'number' ? header.gen : 0;
        this.#snapshotBytes = snapshotBytes;
      }
    } catch (error) {
      // A file that cannot be read (permissions, I/O) is not damaged: fail, and leave it be.
      if ((error as NodeJS.ErrnoException).code !== undefined) throw error;
      // A snapshot is written atomically, so this is damage from outside: set it aside and
      // start over (a full sync), rather than serve half of it.
      const aside = `${snapshotPath}.corrupt-${Date.now()}`;
      await rename(snapshotPath, aside).catch(() => undefined);
      await rm(logPath, { force: true });
      warnings.push(`snapshot unreadable (${(error as Error).message}); moved to ${aside}, full sync`);
      this.#entries = new Map();
      this.#state = initialState();
      this.#state.lastError = {
        code: 'ERR_MIRROR_UNAVAILABLE',
        message: `the local mirror was damaged and is being rebuilt (${(error as Error).message})`,
        at: new Date().toISOString(),
      };
      this.#gen = 0;
      this.#loadWarnings = warnings;
      await this.#compact();
      return;
    }
    this.#gen = snapshotGen;

    const logLines: string[] = [];
    const logBytes = await eachLine(logPath, (line) => {
      logLines.push(line);
    });
    const log = logBytes === undefined ? undefined : { lines: logLines, bytes: logBytes };
    if (log) {
      let header: Record<string, unknown> | undefined;
      try {
        header = parseHeader(log.lines[0], LOG_KIND);
      } catch {
        header = undefined;
      }
      if (header && header.gen === snapshotGen) {
        const ops: Op[] = [];
        for (let i = 1; i < log.lines.length; i++) {
          const line = log.lines[i]!;
          if (line === '' && i === log.lines.length - 1) break;
          const op = parseOp(line);
          if (!op) {
            warnings.push(`log line ${i + 1} unreadable (an interrupted write): replay stopped there`);
            needsCompaction = true;
            break;
          }
          ops.push(op);
        }
        // The state a batch ends with is its last line: a batch cut before it is dropped whole.
        let end = ops.length;
        while (end > 0 && !('state' in ops[end - 1]!)) end--;
        if (end < ops.length) needsCompaction = true;
        this.#replay(ops.slice(0, end));
        this.#logOps = end;
        this.#logBytes = log.bytes;
      } else {
        if (header) warnings.push(`log of generation ${String(header.gen)} ignored (snapshot is ${snapshotGen})`);
        else warnings.push('log header unreadable: log ignored');
        needsCompaction = true;
      }
    }
    this.#loadWarnings = warnings;
    if (needsCompaction) {
      // Rewrites a clean snapshot and log.
      await this.#compact();
    } else if (!log) {
      await this.#startLog();
    } else {
      // Continue the existing log: it ends on a whole batch.
      this.#log = await this.#open(logPath, 'r+');
    }
  }
}

function parseHeader(line: string | undefined, kind: string): Record<string, unknown> {
  const header = JSON.parse(line ?? '') as Record<string, unknown>;
  if (typeof header !== 'object' || header === null || header.kind !== kind) throw new Error(`not a ${kind} file`);
  return header;
}

function parseOp(line: string): Op | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const op = value as Record<string, unknown>;
  if ('put' in op && isAssetLike(op.put)) return { put: op.put, s: typeof op.s === 'number' ? op.s : 0 };
  if (typeof op.del === 'string') return { del: op.del };
  if (typeof op.state === 'object' && op.state !== null) return { state: { ...initialState(), ...(op.state as Partial<MirrorState>) } };
  if (op.clear === true) return { clear: true };
  return undefined;
}

function isAssetLike(value: unknown): value is Asset {
  return typeof value === 'object' && value !== null && typeof (value as Asset).id === 'string';
}

/** Calls `onLine` with each line of the file (numbered from 0); its size, or undefined when it does not exist. */
async function eachLine(path: string, onLine: (line: string, index: number) => void): Promise<number | undefined> {
  let bytes: number;
  try {
    bytes = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const reader = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let index = 0;
  for await (const line of reader) onLine(line, index++);
  return bytes;
}

/** fsyncs a folder so a rename in it is durable (best effort where folders cannot be opened). */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // not supported on this platform
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function diskError(error: unknown, path: string): unknown {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ProtocolError('ERR_DISK_FULL', `no space left to write the mirror (${path})`, { cause: error });
  }
  return error;
}
