import type { KeyValueStore } from './settings.ts';

/** A `KeyValueStore` in memory: the fallback when no localStorage is available, and for tests. */
export function memoryStore(): KeyValueStore & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, value),
    removeItem: (key) => void map.delete(key),
  };
}
