/**
 * Where benchmarks keep their results: docs/benchmarks.md, one section per benchmark between
 * `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. A run replaces its own section (text outside
 * the markers stays), or appends it under `heading` the first time.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

export async function writeBenchSection(name: string, heading: string, body: string): Promise<void> {
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${begin}\n${body}\n${end}`;
  const doc = await readFile(BENCHMARKS_DOC, 'utf8').catch(() => '# Benchmarks\n');
  const at = doc.indexOf(begin);
  const until = doc.indexOf(end, at);
  const updated =
    at !== -1 && until !== -1
      ? doc.slice(0, at) + block + doc.slice(until + end.length)
      : `${doc.trimEnd()}\n\n## ${heading}\n\n${block}\n`;
  await writeFile(BENCHMARKS_DOC, updated);
}
