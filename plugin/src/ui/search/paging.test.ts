import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentAsset, AgentSearchPage } from '../../../../shared/schemas/agent.ts';
import {
  canLoadMore,
  countLabel,
  describeSources,
  dropAsset,
  initialPaging,
  pageArrived,
  pageFailed,
  startNextPage,
  startSearch,
} from './paging.ts';

function asset(id: string, connection = 'local'): AgentAsset {
  return { id, connection } as AgentAsset;
}

function page(ids: string[], next: string | null, sources: AgentSearchPage['sources'] = [{ connection: 'local', state: 'ok', count: ids.length }]): AgentSearchPage {
  return { items: ids.map((id) => asset(id)), next, sources };
}

test('a new search drops the answers of the one before', () => {
  let s = startSearch(initialPaging());
  const first = s.generation;
  s = startSearch(s);
  s = pageArrived(s, first, page(['old'], null));
  assert.deepEqual(s.items, []);
  assert.equal(s.loading, true);
  s = pageArrived(s, s.generation, page(['a', 'b'], 'c1'));
  assert.deepEqual(s.items.map((a) => a.id), ['a', 'b']);
  assert.equal(s.loading, false);
  assert.ok(canLoadMore(s));
});

test('pages append without duplicates, one at a time, until the cursor ends', () => {
  let s = pageArrived(startSearch(initialPaging()), 1, page(['a', 'b'], 'c1'));
  s = startNextPage(s);
  assert.equal(canLoadMore(s), false, 'one page in flight at most');
  s = pageArrived(s, 1, page(['b', 'c'], 'c2'));
  assert.deepEqual(s.items.map((a) => a.id), ['a', 'b', 'c']);
  s = pageArrived(startNextPage(s), 1, page(['d'], null));
  assert.equal(s.next, null);
  assert.equal(canLoadMore(s), false);
  assert.equal(countLabel(s), '4');
});

test('the same asset id on two servers is two results', () => {
  let s = startSearch(initialPaging());
  s = pageArrived(s, 1, { items: [asset('a', 'one'), asset('a', 'two')], next: null, sources: [] });
  assert.equal(s.items.length, 2);
  s = dropAsset(s, asset('a', 'one'));
  assert.deepEqual(s.items.map((a) => a.connection), ['two']);
});

test('a cursor that brings nothing new ends the paging instead of looping', () => {
  let s = pageArrived(startSearch(initialPaging()), 1, page(['a'], 'c1'));
  s = pageArrived(startNextPage(s), 1, page(['a'], 'c1'));
  assert.equal(s.next, null);
  assert.equal(canLoadMore(s), false);
});

test('a huge result set stops at the cap', () => {
  let s = startSearch(initialPaging());
  const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `x${from + i}`);
  s = pageArrived(s, 1, { ...page(ids(0, 200), 'c'), sources: [{ connection: 'local', state: 'ok', count: 200, total: 100_000 }] }, 300);
  s = pageArrived(startNextPage(s), 1, { ...page(ids(200, 200), 'c2'), sources: [{ connection: 'local', state: 'ok', count: 200, total: 100_000 }] }, 300);
  assert.equal(s.items.length, 300);
  assert.equal(s.capped, true);
  assert.equal(canLoadMore(s), false);
  assert.equal(countLabel(s), '300 of 100,000');
});

test('a failed page keeps the results and blocks paging until cleared', () => {
  let s = pageArrived(startSearch(initialPaging()), 1, page(['a'], 'c1'));
  s = pageFailed(startNextPage(s), 1, new Error('boom'));
  assert.deepEqual(s.items.map((a) => a.id), ['a']);
  assert.equal(s.loading, false);
  assert.equal(canLoadMore(s), false);
  assert.equal(pageFailed(s, 0, new Error('stale')).error, s.error);
  assert.ok(canLoadMore(startNextPage(s)) === false);
});

test('sources: offline servers and mirrored results are said', () => {
  const lines = describeSources(
    [
      { connection: 'studio', state: 'offline', local: true, count: 3 },
      { connection: 'home', state: 'failed', count: 0, error: { code: 'ERR_TOKEN_INVALID', message: 'token refused' } },
      { connection: 'local', state: 'ok', count: 5 },
    ],
    { studio: 'Studio' },
  );
  assert.deepEqual(lines, ['Studio is offline: showing images kept on this computer.', 'home failed: token refused.']);
});
