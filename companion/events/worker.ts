/**
 * Sends the outbox's pending deliveries: signed per Standard Webhooks (a fresh timestamp and
 * signature per attempt, the same `webhook-id` and body), through the SSRF-safe client, no
 * redirects. Only 2xx counts as delivered. 410 Gone disables the subscription and cancels its
 * pending deliveries. Anything else (other status, timeout, refused connection or address) is
 * retried with exponential backoff and jitter, until `maxAttempts`, then the delivery is failed.
 * Every attempt is recorded. `close()` aborts attempts in flight without recording them: they
 * stay pending and are sent again after the restart.
 */
import { ProtocolError } from '../../shared/errors.ts';
import { retryDelay } from './backoff.ts';
import { ATTEMPTS_KEPT, pruneFinished, type AttemptRecord, type DeliveryRecord, type EventsStore } from './outbox.ts';
import { safeFetch, type AddressPolicy } from './safe-fetch.ts';
import { nowSeconds, signWebhook } from './standard-webhooks.ts';

export interface EventLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DeliveryWorkerOptions {
  store: EventsStore;
  policy: AddressPolicy;
  timeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  /** Deliveries sent at once. */
  concurrency?: number;
  log: EventLog;
  random?: () => number;
}

/** Largest answer body read from a callback (it is discarded). */
const MAX_ANSWER_BYTES = 64 * 1024;
/** setTimeout's limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class DeliveryWorker {
  readonly #options: DeliveryWorkerOptions;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #pumpScheduled = false;
  #closed = false;

  constructor(options: DeliveryWorkerOptions) {
    this.#options = options;
  }

  /** Looks for due deliveries soon (coalesced). */
  kick(): void {
    if (this.#closed || this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#controller.abort(new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'shutting down'));
    await Promise.allSettled([...this.#inFlight.values()]);
  }

  #pump(): void {
    if (this.#closed) return;
    const concurrency = this.#options.concurrency ?? 4;
    const now = Date.now();
    const waiting = this.#options.store.data.deliveries.filter((d) => d.status === 'pending' && !this.#inFlight.has(d.id));
    const due = waiting.filter((d) => dueAt(d) <= now).sort((a, b) => dueAt(a) - dueAt(b));
    for (const delivery of due) {
      if (this.#inFlight.size >= concurrency) break;
      const run = this.#attempt(delivery.id)
        .catch((error: unknown) => this.#options.log.warn({ err: error, delivery: delivery.id }, 'webhook delivery not recorded'))
        .finally(() => {
          this.#inFlight.delete(delivery.id);
          this.kick();
        });
      this.#inFlight.set(delivery.id, run);
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#inFlight.size >= concurrency) return; // a finished attempt kicks again
    let next = Infinity;
    for (const d of waiting) if (!this.#inFlight.has(d.id) && dueAt(d) > now) next = Math.min(next, dueAt(d));
    if (next !== Infinity) {
      this.#timer = setTimeout(() => this.#pump(), Math.min(MAX_TIMER_MS, Math.max(0, next - now)));
      this.#timer.unref();
    }
  }

  async #attempt(id: string): Promise<void> {
    const { store, log } = this.#options;
    const delivery = store.data.deliveries.find((d) => d.id === id);
    if (!delivery || delivery.status !== 'pending') return;
    const sub = store.data.subscriptions.find((s) => s.id === delivery.subscriptionId);
    if (!sub || sub.status !== 'active') {
      await store.mutate((data) => {
        const d = data.deliveries.find((x) => x.id === id);
        if (d?.status === 'pending') finish(d, 'cancelled');
      });
      return;
    }
    const headers = signWebhook({ id: delivery.id, timestamp: nowSeconds(), body: delivery.body, secret: sub.secret });
    const started = Date.now();
    const attempt: AttemptRecord = { at: new Date(started).toISOString(), ms: 0 };
    try {
      const answer = await safeFetch(sub.url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: delivery.body,
        timeoutMs: this.#options.timeoutMs,
        maxBytes: MAX_ANSWER_BYTES,
        policy: this.#options.policy,
        signal: this.#controller.signal,
      });
      attempt.status = answer.status;
    } catch (error) {
      if (this.#closed) return; // aborted by shutdown: stays pending, sent after the restart
      attempt.error = error instanceof ProtocolError ? error.code : 'ERR_UPSTREAM_UNREACHABLE';
    }
    attempt.ms = Date.now() - started;
    const outcome = await store.mutate((data) => {
      const d = data.deliveries.find((x) => x.id === id);
      if (!d || d.status !== 'pending') return 'gone-meanwhile' as const;
      d.attemptCount++;
      d.attempts.push(attempt);
      if (d.attempts.length > ATTEMPTS_KEPT) d.attempts.splice(0, d.attempts.length - ATTEMPTS_KEPT);
      let result: 'delivered' | 'disabled' | 'failed' | 'retry';
      if (attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300) {
        finish(d, 'delivered');
        result = 'delivered';
      } else if (attempt.status === 410) {
        const s = data.subscriptions.find((x) => x.id === d.subscriptionId);
        if (s && s.status === 'active') {
          s.status = 'disabled';
          s.disabled = new Date().toISOString();
          s.disabledReason = 'the callback answered 410 Gone';
        }
        finish(d, 'cancelled');
        for (const other of data.deliveries) {
          if (other.subscriptionId === d.subscriptionId && other.status === 'pending') finish(other, 'cancelled');
        }
        result = 'disabled';
      } else if (d.attemptCount >= this.#options.maxAttempts) {
        finish(d, 'failed');
        result = 'failed';
      } else {
        const delay = retryDelay(d.attemptCount, {
          baseMs: this.#options.retryBaseMs,
          maxMs: this.#options.retryMaxMs,
          random: this.#options.random,
        });
        d.nextAttempt = new Date(Date.now() + delay).toISOString();
        result = 'retry';
      }
      pruneFinished(data);
      return result;
    });
    const context = { delivery: id, subscription: sub.id, status: attempt.status, error: attempt.error, attempt: delivery.attemptCount };
    if (outcome === 'disabled') log.info(context, 'webhook subscription disabled: callback answered 410 Gone');
    else if (outcome === 'failed') log.warn(context, 'webhook delivery failed: no attempts left');
    else if (outcome === 'retry') log.warn(context, 'webhook delivery refused; will retry');
  }
}

function dueAt(d: DeliveryRecord): number {
  return d.nextAttempt ? Date.parse(d.nextAttempt) : 0;
}

function finish(d: DeliveryRecord, status: 'delivered' | 'failed' | 'cancelled'): void {
  d.status = status;
  d.finished = new Date().toISOString();
  delete d.nextAttempt;
}
