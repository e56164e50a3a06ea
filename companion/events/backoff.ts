/**
 * Retry delays: exponential with "equal jitter". Attempt n (1-based) waits between half and all
 * of `min(max, base * 2^(n-1))`, so retries spread out without ever coming back at once, and
 * never wait less than half the nominal delay.
 *
 * @example
 *   retryDelay(3, { baseMs: 10_000, maxMs: 21_600_000 }); // 20-40 s
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** In [0, 1); Math.random by default. */
  random?: () => number;
}

export function retryDelay(attempt: number, options: BackoffOptions): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^(n-1) overflows to Infinity for large n; min() keeps it at the cap.
  const nominal = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(n - 1, 60));
  const random = (options.random ?? Math.random)();
  return Math.round(nominal / 2 + (nominal / 2) * random);
}
