// The push spool's copy of an edited file: missing files, files still being written, and a
// settled file copied exactly.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copySettled, ensureSettled, removeSpoolFolder, spoolFolder } from './spool.ts';

const dir = mkdtempSync(join(tmpdir(), 'imagine-spool-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a file that is not there, or a folder, is ERR_FILE_MISSING', async () => {
  await assert.rejects(ensureSettled(join(dir, 'nope.jpg'), { settleMs: 10 }), { code: 'ERR_FILE_MISSING' });
  await mkdir(join(dir, 'folder.jpg'));
  await assert.rejects(ensureSettled(join(dir, 'folder.jpg'), { settleMs: 10 }), { code: 'ERR_FILE_MISSING' });
});

test('a file that grows between two looks, or is empty, is ERR_FILE_BUSY', async () => {
  const path = join(dir, 'growing.jpg');
  await writeFile(path, 'a');
  const timer = setInterval(() => void appendFile(path, 'more'), 5);
  try {
    await assert.rejects(ensureSettled(path, { settleMs: 100 }), { code: 'ERR_FILE_BUSY' });
  } finally {
    clearInterval(timer);
  }
  await writeFile(join(dir, 'empty.jpg'), '');
  await assert.rejects(ensureSettled(join(dir, 'empty.jpg'), { settleMs: 10 }), { code: 'ERR_FILE_BUSY' });
});

test('a settled file is copied exactly into its spool folder, which can be removed', async () => {
  const source = join(dir, 'done.jpg');
  await writeFile(source, Buffer.alloc(100_000, 7));
  const folder = await spoolFolder(dir, 'item1');
  const target = join(folder, 'file.jpg');
  await copySettled(source, target, { settleMs: 20 });
  assert.deepEqual(await readFile(target), await readFile(source));
  await removeSpoolFolder(dir, 'item1');
  await assert.rejects(stat(folder), { code: 'ENOENT' });
});
