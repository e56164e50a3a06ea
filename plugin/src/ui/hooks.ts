/** Small hooks the screens share: a user action's run state, polling, debouncing. */
import { useCallback, useEffect, useRef, useState } from 'react';

export interface ActionState<R, A extends unknown[] = []> {
  running: boolean;
  error: unknown;
  result: R | undefined;
  /** Runs the action unless it is running already; errors are kept in `error`, never thrown. */
  run: (...args: A) => Promise<R | undefined>;
  reset: () => void;
}

/** One user action: `fn` runs once at a time, its failure is shown instead of blanking the panel. */
export function useAction<R, A extends unknown[] = []>(fn: (...args: A) => Promise<R>): ActionState<R, A> {
  const [state, setState] = useState<{ running: boolean; error: unknown; result: R | undefined }>({ running: false, error: undefined, result: undefined });
  const latest = useRef(fn);
  latest.current = fn;
  const running = useRef(false);
  const mounted = useMounted();
  const run = useCallback(async (...args: A) => {
    if (running.current) return undefined;
    running.current = true;
    setState({ running: true, error: undefined, result: undefined });
    try {
      const result = await latest.current(...args);
      if (mounted.current) setState({ running: false, error: undefined, result });
      return result;
    } catch (error) {
      if (mounted.current) setState({ running: false, error, result: undefined });
      return undefined;
    } finally {
      running.current = false;
    }
  }, [mounted]);
  const reset = useCallback(() => setState({ running: false, error: undefined, result: undefined }), []);
  return { ...state, run, reset };
}

export function useMounted() {
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  return mounted;
}

/**
 * Calls `fn` now and then again `intervalMs` after each call ends (never two at once), while
 * `active`. `fn` returns the next interval to use, or nothing to keep the same.
 */
export function usePoll(fn: () => Promise<number | void>, intervalMs: number, active = true, deps: unknown[] = []): () => void {
  const latest = useRef(fn);
  latest.current = fn;
  const kick = useRef<() => void>(() => {});
  useEffect(() => {
    if (!active) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let busy = false;
    const tick = async () => {
      if (stopped || busy) return;
      busy = true;
      clearTimeout(timer);
      let next: number | void = intervalMs;
      try {
        next = await latest.current();
      } catch {
        // the callback shows its own errors
      } finally {
        busy = false;
      }
      if (!stopped) timer = setTimeout(tick, typeof next === 'number' ? next : intervalMs);
    };
    kick.current = () => void tick();
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      kick.current = () => {};
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [active, intervalMs, ...deps]);
  return useCallback(() => kick.current(), []);
}

/** `value`, `delayMs` after it last changed. */
export function useDebounced<T>(value: T, delayMs: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delayMs);
    return () => clearTimeout(timer);
  }, [value, delayMs]);
  return settled;
}
