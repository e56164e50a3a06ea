/**
 * Follows the catalog's change feed and turns each committed change into one delivery per
 * matching active subscription, in the same write that advances `dispatchedSeq`. Woken by the
 * catalog after each commit; at start it catches up from `dispatchedSeq`, so nothing committed
 * while the server was down (or between a commit and a crash) is lost.
 */
import type { Library } from '../library/library.ts';
import type { ChangeRecord } from '../library/records.ts';
import { presentChange } from '../library/present.ts';
import { API_PREFIX, IIIF_PREFIX } from '../routes/api-context.ts';
import { pruneFinished, type DeliveryRecord, type EventsStore, type SubscriptionRecord } from './outbox.ts';

/** Changes read from the feed per write. */
const BATCH = 500;

/** The thin payload of an event: Standard Webhooks' `{type, timestamp, data}`, data as in the change feed. */
export function payloadOf(change: ChangeRecord, origin: string): string {
  const data = presentChange(change, { origin, apiBase: `${origin}${API_PREFIX}`, iiifBase: `${origin}${IIIF_PREFIX}` });
  return JSON.stringify({ type: change.type, timestamp: change.time, data });
}

export function deliveryId(subscriptionId: string, seq: number): string {
  return `msg_${subscriptionId}_${seq}`;
}

export class Dispatcher {
  readonly #store: EventsStore;
  readonly #library: Library;
  readonly #onEnqueued: () => void;
  readonly #unsubscribe: () => void;
  /** Highest sequence number known to be on disk (a change in memory may still fail to write). */
  #committedSeq: number;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: { store: EventsStore; library: Library; onEnqueued: () => void }) {
    this.#store = options.store;
    this.#library = options.library;
    this.#onEnqueued = options.onEnqueued;
    this.#committedSeq = this.#library.catalog.data.nextSeq - 1;
    this.#unsubscribe = this.#library.catalog.onCommit((changes) => {
      for (const change of changes) if (change.seq > this.#committedSeq) this.#committedSeq = change.seq;
      if (changes.length) this.kick();
    });
  }

  get committedSeq(): number {
    return this.#committedSeq;
  }

  /** First run: a new store starts at the current end of the feed (no subscription existed before). */
  async start(): Promise<void> {
    if (this.#store.data.dispatchedSeq < 0) {
      const seq = this.#committedSeq;
      await this.#store.mutate((data) => {
        if (data.dispatchedSeq < 0) data.dispatchedSeq = seq;
      });
    }
    this.kick();
    await this.idle();
  }

  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Resolves when the dispatcher has nothing left to do (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    await this.idle();
  }

  async #loop(): Promise<void> {
    while (!this.#closed && (await this.#dispatchBatch()));
  }

  /** Dispatches one batch; true when more changes wait. */
  async #dispatchBatch(): Promise<boolean> {
    const from = this.#store.data.dispatchedSeq;
    const upTo = this.#committedSeq;
    if (from < 0 || from >= upTo) return false;
    const page = this.#library.changes(String(from), BATCH);
    const changes = page.events.filter((c) => c.seq > from && c.seq <= upTo);
    if (changes.length === 0) return false;
    const last = changes[changes.length - 1]!.seq;
    let enqueued = 0;
    await this.#store.mutate((data) => {
      if (data.dispatchedSeq !== from) return;
      const now = new Date().toISOString();
      const active = data.subscriptions.filter((s) => s.status === 'active');
      for (const change of changes) {
        for (const sub of active) {
          if (!matches(sub, change, this.#library)) continue;
          const delivery: DeliveryRecord = {
            id: deliveryId(sub.id, change.seq),
            subscriptionId: sub.id,
            seq: change.seq,
            type: change.type,
            body: payloadOf(change, sub.origin),
            status: 'pending',
            created: now,
            attemptCount: 0,
            attempts: [],
            nextAttempt: now,
          };
          data.deliveries.push(delivery);
          enqueued++;
        }
      }
      data.dispatchedSeq = last;
      pruneFinished(data);
    });
    if (enqueued) this.#onEnqueued();
    return last < upTo;
  }
}

function matches(sub: SubscriptionRecord, change: ChangeRecord, library: Library): boolean {
  if (change.seq <= sub.afterSeq || !sub.events.includes(change.type)) return false;
  if (sub.collection === undefined) return true;
  // A peer's subscription to one collection learns of nothing else (not even other assets' URIs).
  if (change.collectionId !== undefined) return change.collectionId === sub.collection;
  const asset = change.assetId ? library.catalog.asset(change.assetId) : undefined;
  return !!asset && asset.collections.includes(sub.collection);
}
