/**
 * The peer tokens a server has accepted, kept until they expire, so that none is accepted twice
 * — also across a restart of the server (a token captured before a restart is still refused
 * after it).
 *
 * In memory: a map key → expiry. On disk: an append-only journal
 * (`<data>/federation/seen-tokens.log`, one `expiryMs key` line per token), written before
 * `remember` returns, so a token the server accepted is in the journal even if the process is
 * killed right after (the write sits in the operating system's cache; only a machine crash can
 * lose it, and a machine restarts in more than a token's life). On open, the journal's
 * unexpired lines are loaded and broken lines skipped; when it holds many expired lines it is
 * rewritten (temp file + rename) with the live ones only.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SeenTokensOptions {
  now?: () => number;
  /** Kept this long after expiry (ms), for the clock tolerance of the check. */
  graceMs?: number;
}

/** Above this many entries, expired ones are dropped from memory (and the journal compacted). */
const SWEEP_ABOVE = 10_000;

export class SeenTokens {
  readonly #path: string | undefined;
  readonly #now: () => number;
  readonly #graceMs: number;
  readonly #seen = new Map<string, number>();
  /** Lines in the journal (live or not). */
  #lines = 0;

  /** `path` undefined: in memory only (tests, tools). */
  constructor(path: string | undefined, options: SeenTokensOptions = {}) {
    this.#path = path;
    this.#now = options.now ?? Date.now;
    this.#graceMs = options.graceMs ?? 0;
    if (path) this.#load(path);
  }

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  /** Remembers `key` until `expiresMs` (+ grace); journaled before it returns. */
  remember(key: string, expiresMs: number): void {
    if (this.#seen.size >= SWEEP_ABOVE) this.#sweep();
    this.#seen.set(key, expiresMs);
    if (!this.#path) return;
    appendFileSync(this.#path, `${expiresMs} ${key}\n`);
    this.#lines++;
  }

  get size(): number {
    return this.#seen.size;
  }

  #live(expiresMs: number, now: number): boolean {
    return expiresMs + this.#graceMs >= now;
  }

  #load(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const now = this.#now();
    for (const line of text.split('\n')) {
      const space = line.indexOf(' ');
      if (space <= 0) continue;
      const expiresMs = Number(line.slice(0, space));
      const key = line.slice(space + 1);
      if (!Number.isFinite(expiresMs) || key === '') continue;
      this.#lines++;
      if (this.#live(expiresMs, now)) this.#seen.set(key, expiresMs);
    }
    if (this.#lines > this.#seen.size) this.#compact();
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, expiresMs] of this.#seen) if (!this.#live(expiresMs, now)) this.#seen.delete(key);
    if (this.#lines > 2 * this.#seen.size) this.#compact();
  }

  /** Rewrites the journal with the live entries only. */
  #compact(): void {
    if (!this.#path) return;
    const temp = `${this.#path}.${process.pid}.tmp`;
    let text = '';
    for (const [key, expiresMs] of this.#seen) text += `${expiresMs} ${key}\n`;
    writeFileSync(temp, text);
    renameSync(temp, this.#path);
    this.#lines = this.#seen.size;
  }
}
