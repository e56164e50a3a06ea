/**
 * Reads a vector file of test/vectors/. Long inputs are written in the files as
 * `{ prefix, repeat, times, suffix }` objects and expanded here, anywhere in a vector.
 */
import { readFileSync } from 'node:fs';

function expand(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(expand);
  if (typeof value !== 'object' || value === null) return value;
  const v = value as Record<string, unknown>;
  if (typeof v.repeat === 'string' && typeof v.times === 'number') {
    return `${(v.prefix as string | undefined) ?? ''}${v.repeat.repeat(v.times)}${(v.suffix as string | undefined) ?? ''}`;
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)]));
}

export function loadVectors<T>(name: string): T {
  return expand(JSON.parse(readFileSync(new URL(`./${name}.json`, import.meta.url), 'utf8'))) as T;
}

/** A test title for an input, shortened when long. */
export function vectorLabel(s: string): string {
  return JSON.stringify(s.length > 70 ? `${s.slice(0, 60)}... (${s.length} chars)` : s);
}
