/**
 * Attaches a DOM event listener to an element by ref: the only way to hear `sp-*` widgets,
 * whose events React does not wire. The latest handler is always called, without re-attaching.
 */
import { useEffect, useRef, type RefObject } from 'react';

export function useElementEvent<E extends HTMLElement>(
  ref: RefObject<E>,
  type: string,
  handler: ((event: Event) => void) | undefined,
): void {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const listener = (event: Event) => latest.current?.(event);
    element.addEventListener(type, listener);
    return () => element.removeEventListener(type, listener);
  }, [ref, type]);
}

/** `true` or nothing: Spectrum widgets read a boolean attribute's presence, so false is left out. */
export function flag(value: boolean | undefined): true | undefined {
  return value ? true : undefined;
}
