import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeenTokens } from './seen-tokens.ts';

describe('SeenTokens', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imagine-seen-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a remembered token is known again after a reopen, until it expires (+ grace)', async () => {
    let now = 1_000_000;
    const path = join(dir, 'nested', 'seen.log');
    const first = new SeenTokens(path, { now: () => now, graceMs: 100 });
    first.remember('https://a.example t1', now + 1000);
    first.remember('https://a.example t2', now + 5000);
    assert.ok(first.has('https://a.example t1'));
    const reopened = new SeenTokens(path, { now: () => now, graceMs: 100 });
    assert.ok(reopened.has('https://a.example t1'));
    assert.ok(reopened.has('https://a.example t2'));
    now += 1050; // t1 expired, still within the grace
    assert.ok(new SeenTokens(path, { now: () => now, graceMs: 100 }).has('https://a.example t1'));
    now += 100; // t1 past its grace: dropped, and the journal compacted to the live line
    const later = new SeenTokens(path, { now: () => now, graceMs: 100 });
    assert.equal(later.has('https://a.example t1'), false);
    assert.ok(later.has('https://a.example t2'));
    assert.equal(await readFile(path, 'utf8'), `${1_000_000 + 5000} https://a.example t2\n`);
  });

  test('broken lines in the journal are skipped, the rest is loaded', async () => {
    const path = join(dir, 'broken.log');
    const far = Date.now() + 60_000;
    await writeFile(path, `garbage\n\n${far} ok-key\nNaN bad\n${far}\n 123 leading-space\n${far} other key`);
    const seen = new SeenTokens(path);
    assert.ok(seen.has('ok-key'));
    assert.ok(seen.has('other key'));
    assert.equal(seen.size, 2);
  });

  test('without a path, nothing is written and tokens are kept in memory', () => {
    const seen = new SeenTokens(undefined);
    seen.remember('k', Date.now() + 1000);
    assert.ok(seen.has('k'));
    assert.equal(seen.has('other'), false);
  });
});
