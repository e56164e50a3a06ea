/**
 * What the collection mirrors of this server keep on disk:
 *
 * - `<data>/federation/mirrors.json`: the declarations (which peer collection is mirrored),
 *   shared by the running server and `imagine peers mirror`: every change is a
 *   read-modify-write under a lock file, and the server reloads the file when it changes.
 * - `<data>/federation/mirrors/<id>.json`: the state of one mirror, written by the server only
 *   (atomically, mode 0600: it holds the webhook secret) after every applied step: the local
 *   collection, the feed cursor, an unfinished scan, and the map remote asset → local asset.
 */
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import { readJsonFile, writeJsonFile } from '../agent/json-file.ts';
import { newId } from '../library/ids.ts';
import { generateSecret } from '../events/standard-webhooks.ts';
import { FEDERATION_DIR } from './keys.ts';

export interface MirrorDeclaration {
  /** `m_` + 12 base32 characters. */
  id: string;
  /** The peer's origin. */
  peer: string;
  /** The collection's id on the peer. */
  collection: string;
  /** `imagine://<peer>/collections/<id>`. */
  uri: string;
  /** This server's origin: the issuer of its signed requests and the base of its webhook URL. */
  localOrigin: string;
  /** The user (`name@domain`) the mirror reads as on the peer, when one was named. */
  subject?: string;
  created: string;
  createdBy?: string;
}

/** One mirrored asset: remote id → this. */
export interface MirrorItem {
  /** The local asset's id. */
  local: string;
  /** The peer's version the local current version is a copy of. */
  remoteVersion: string;
  sha256: string;
  /**
   * false when identical bytes were already in this library (another asset): the mirror added
   * that asset to its collection and never deletes or versions it, only takes it out again.
   */
  owned: boolean;
}

export interface FeedPosition {
  cursor: string;
  lastSeq: number;
  lastEvent: { seq: number; id: string; time: string } | null;
}

/** A full scan in progress (initial copy or re-scan): resumed after a crash. */
export interface ScanState {
  reason: string;
  started: string;
  /** The feed's end when the scan started: followed from there once the scan is done. */
  head: FeedPosition;
  /** Search cursor of the next page (null: the first page). */
  page: string | null;
  /** Remote ids the scan found in the collection so far. */
  seen: string[];
}

export interface MirrorCounters {
  runs: number;
  hints: number;
  hintsRefused: number;
  created: number;
  updated: number;
  removed: number;
  fullScans: number;
}

export interface MirrorRunRecord {
  trigger: string;
  started: string;
  finished: string;
  created: number;
  updated: number;
  removed: number;
  pages: number;
  fullScan?: string;
  /** For each change applied: when it was applied (ms since the epoch). */
  appliedAt?: number;
}

export interface MirrorState {
  schemaVersion: 1;
  localCollection: string | null;
  remoteName: string | null;
  /** Where the feed is followed from; null until the first scan is done. */
  position: FeedPosition | null;
  scan: ScanState | null;
  items: Record<string, MirrorItem>;
  /** The Standard Webhooks secret this server gives the peer for its hints (`whsec_...`). */
  hookSecret: string;
  subscription: { id: string; url: string; created: string } | null;
  subscriptionError: { code: string; message: string; at: string } | null;
  lastRun: MirrorRunRecord | null;
  lastError: { code: string; message: string; at: string } | null;
  counters: MirrorCounters;
}

export function emptyMirrorState(): MirrorState {
  return {
    schemaVersion: 1,
    localCollection: null,
    remoteName: null,
    position: null,
    scan: null,
    items: {},
    hookSecret: generateSecret(),
    subscription: null,
    subscriptionError: null,
    lastRun: null,
    lastError: null,
    counters: { runs: 0, hints: 0, hintsRefused: 0, created: 0, updated: 0, removed: 0, fullScans: 0 },
  };
}

const LOCK_WAIT_MS = 5_000;
const STALE_LOCK_MS = 15_000;

/** Runs `fn` holding `<path>.lock` (created exclusively; a lock older than 15 s is stale). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) await rm(lockPath, { force: true });
      else if (Date.now() > deadline) throw new ProtocolError('ERR_CATALOG_LOCKED', `${lockPath} is held by another process`);
      else await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

interface DeclarationsFile {
  mirrors: MirrorDeclaration[];
}

/** The declarations file, shared with `imagine peers mirror`. */
export class MirrorDeclarations {
  readonly path: string;
  #mirrors: MirrorDeclaration[] = [];
  #mtimeMs = -1;

  constructor(dataDir: string) {
    this.path = join(dataDir, FEDERATION_DIR, 'mirrors.json');
  }

  /** Every declaration, reloaded from disk when the file changed. */
  async list(): Promise<MirrorDeclaration[]> {
    await this.#reload();
    return this.#mirrors.map((m) => ({ ...m }));
  }

  /** Declares a mirror of `peer`'s `collection`; the existing declaration when there is one. */
  async add(input: Omit<MirrorDeclaration, 'id' | 'created'>): Promise<{ mirror: MirrorDeclaration; existed: boolean }> {
    return withFileLock(this.path, async () => {
      this.#mtimeMs = -1;
      await this.#reload();
      const existing = this.#mirrors.find((m) => m.peer === input.peer && m.collection === input.collection);
      if (existing) return { mirror: { ...existing }, existed: true };
      const mirror: MirrorDeclaration = { id: `m_${newId(12)}`, ...input, created: new Date().toISOString() };
      const next = [...this.#mirrors, mirror];
      await writeJsonFile(this.path, { mirrors: next } satisfies DeclarationsFile);
      this.#mirrors = next;
      this.#mtimeMs = -1;
      return { mirror: { ...mirror }, existed: false };
    });
  }

  /** Removes a declaration (the local copies stay). */
  async remove(id: string): Promise<MirrorDeclaration> {
    return withFileLock(this.path, async () => {
      this.#mtimeMs = -1;
      await this.#reload();
      const found = this.#mirrors.find((m) => m.id === id);
      if (!found) throw new ProtocolError('ERR_COLLECTION_MIRROR_NOT_FOUND', `no collection mirror "${id}"`);
      const next = this.#mirrors.filter((m) => m.id !== id);
      await writeJsonFile(this.path, { mirrors: next } satisfies DeclarationsFile);
      this.#mirrors = next;
      this.#mtimeMs = -1;
      return found;
    });
  }

  async #reload(): Promise<void> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.path)).mtimeMs;
    } catch {
      this.#mirrors = [];
      this.#mtimeMs = -1;
      return;
    }
    if (mtimeMs === this.#mtimeMs) return;
    const file = await readJsonFile<DeclarationsFile>(this.path, { mirrors: [] });
    this.#mirrors = Array.isArray(file.mirrors) ? file.mirrors.filter(isDeclaration) : [];
    this.#mtimeMs = mtimeMs;
  }
}

function isDeclaration(value: unknown): value is MirrorDeclaration {
  const m = value as Partial<MirrorDeclaration> | null;
  return (
    !!m &&
    typeof m.id === 'string' &&
    typeof m.peer === 'string' &&
    typeof m.collection === 'string' &&
    typeof m.uri === 'string' &&
    typeof m.localOrigin === 'string'
  );
}

/** The state file of one mirror: loaded once, every `save` an atomic write, one at a time. */
export class MirrorStateFile {
  readonly path: string;
  #state: MirrorState;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, state: MirrorState) {
    this.path = path;
    this.#state = state;
  }

  static async open(dataDir: string, id: string): Promise<MirrorStateFile> {
    if (!/^m_[a-z0-9]+$/i.test(id)) throw new ProtocolError('ERR_VALIDATION', `not a mirror id: ${JSON.stringify(id)}`);
    const path = join(dataDir, FEDERATION_DIR, 'mirrors', `${id}.json`);
    const stored = await readJsonFile<MirrorState | null>(path, null);
    const state = stored && stored.schemaVersion === 1 ? { ...emptyMirrorState(), ...stored } : emptyMirrorState();
    const file = new MirrorStateFile(path, state);
    if (!stored) await file.save(state);
    return file;
  }

  get state(): MirrorState {
    return this.#state;
  }

  /** Replaces the state and writes it; resolves once it is on disk. */
  save(next: MirrorState): Promise<void> {
    this.#state = next;
    const snapshot = JSON.parse(JSON.stringify(next)) as MirrorState;
    const write = this.#queue.then(() => writeJsonFile(this.path, snapshot));
    this.#queue = write.catch(() => undefined);
    return write;
  }

  /** Applies `change` to a copy of the state and saves it. */
  update(change: (state: MirrorState) => void): Promise<void> {
    const next = JSON.parse(JSON.stringify(this.#state)) as MirrorState;
    change(next);
    return this.save(next);
  }
}
