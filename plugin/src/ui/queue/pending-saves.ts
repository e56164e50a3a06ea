/**
 * Saves the user asked for that the agent has not acknowledged yet. A save is written here
 * before it is sent to the agent and removed only once the agent answers that it holds it in
 * its durable queue, so a save made while the companion is down (or crashing mid-request) is
 * never lost: it is shown in the queue view and sent again when the companion is back.
 */
import type { KeyValueStore } from '../../settings.ts';
import { STORAGE_KEYS } from '../../settings.ts';

export interface PendingSave {
  id: string;
  checkoutId: string;
  /** What the user sees: the file name and server. */
  label: string;
  comment: string;
  /** The file to push when it is not the checkout's own path. */
  path?: string;
  created: string;
  attempts: number;
  lastError?: { code: string; message: string };
}

export class PendingSaves {
  readonly #store: KeyValueStore;
  readonly #key: string;
  /** Saves being sent right now (by the save itself, or the retry loop): never sent twice at once. */
  readonly #sending = new Set<string>();

  constructor(store: KeyValueStore, key = STORAGE_KEYS.pendingSaves) {
    this.#store = store;
    this.#key = key;
  }

  list(): PendingSave[] {
    let text: string | null = null;
    try {
      text = this.#store.getItem(this.#key);
    } catch {
      return [];
    }
    if (!text) return [];
    try {
      const parsed: unknown = JSON.parse(text);
      return Array.isArray(parsed) ? parsed.filter(isPendingSave) : [];
    } catch {
      return [];
    }
  }

  add(save: Omit<PendingSave, 'id' | 'created' | 'attempts'>, now = new Date()): PendingSave {
    const entry: PendingSave = { ...save, id: newId(now), created: now.toISOString(), attempts: 0 };
    this.#write([...this.list(), entry]);
    return entry;
  }

  update(id: string, patch: Partial<Omit<PendingSave, 'id'>>): void {
    this.#write(this.list().map((s) => (s.id === id ? { ...s, ...patch } : s)));
  }

  remove(id: string): void {
    this.#write(this.list().filter((s) => s.id !== id));
  }

  /** Marks a save as being sent; false when it already is. */
  claim(id: string): boolean {
    if (this.#sending.has(id)) return false;
    this.#sending.add(id);
    return true;
  }

  release(id: string): void {
    this.#sending.delete(id);
  }

  #write(items: PendingSave[]): void {
    if (items.length === 0) this.#store.removeItem(this.#key);
    else this.#store.setItem(this.#key, JSON.stringify(items));
  }
}

let counter = 0;
function newId(now: Date): string {
  counter = (counter + 1) % 1_000_000;
  return `p${now.getTime().toString(36)}${counter.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

function isPendingSave(value: unknown): value is PendingSave {
  const v = value as PendingSave;
  return typeof v === 'object' && v !== null && typeof v.id === 'string' && typeof v.checkoutId === 'string' && typeof v.comment === 'string';
}
