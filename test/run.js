#!/usr/bin/env node
// Runs every test file (`*.test.ts` beside the code, and under test/) with node's test runner,
// TypeScript loaded through tsx. Node 20's `--test` takes no globs, so the files are listed here.
// Usage: node test/run.js [path-filter ...]
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const roots = ['shared', 'companion', 'plugin', 'test'];
const skipDirs = new Set(['node_modules', 'dist', 'fixtures', '.imagine']);

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!skipDirs.has(entry.name)) yield* walk(join(dir, entry.name));
    } else if (/\.test\.tsx?$/.test(entry.name)) {
      yield join(dir, entry.name);
    }
  }
}

const filters = process.argv.slice(2);
const files = roots
  .flatMap((r) => [...walk(join(root, r))])
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
