/**
 * A concurrency limit with a bounded queue, so a burst of image requests cannot hold more
 * decoded images in memory than `active` renders need. When the queue is full, `run()`
 * rejects at once with `BusyError` (the route answers 503 with Retry-After).
 *
 * @example
 *   const limit = new Limiter({ active: 2, queue: 64 });
 *   const bytes = await limit.run(() => render(plan));
 */
export class BusyError extends Error {
  override readonly name = 'BusyError';
}

export interface LimiterOptions {
  /** Tasks running at once. */
  active: number;
  /** Tasks waiting at most; more are refused. */
  queue: number;
}

export class Limiter {
  readonly #max: number;
  readonly #queueMax: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: LimiterOptions) {
    this.#max = Math.max(1, options.active);
    this.#queueMax = Math.max(0, options.queue);
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#max) {
      if (this.#waiting.length >= this.#queueMax) throw new BusyError('too many image requests at once');
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes to the next task
      else this.#running--;
    }
  }
}

/**
 * Runs one task per key at a time: callers asking for the same key while it runs share its
 * result (a burst of identical tile requests renders once).
 */
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  run(key: string, task: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const promise = task().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return promise;
  }
}
