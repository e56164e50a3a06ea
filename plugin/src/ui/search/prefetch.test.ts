import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptedClient } from '../../test-agent.ts';
import { firstPage, prefetchFirstPage } from './prefetch.ts';

const page = { items: [], next: null, sources: [] };

test('the first page is asked for once, early, and taken once', async () => {
  const { client, calls } = scriptedClient({ 'GET /agent/v1/search': ({ url }) => (assert.equal(url.search, '?limit=50'), { status: 200, body: page }) });
  prefetchFirstPage(client);
  prefetchFirstPage(client);
  assert.deepEqual(await firstPage(client), page);
  assert.equal(calls.length, 1);
  await firstPage(client);
  assert.equal(calls.length, 2, 'taken once: a later first page is a fresh search');
});

test('a prefetch that failed (companion away, not paired yet) is asked again', async () => {
  let up = false;
  const { client, calls } = scriptedClient({ 'GET /agent/v1/search': () => (up ? { status: 200, body: page } : 'network-error') });
  prefetchFirstPage(client);
  await new Promise((resolve) => setTimeout(resolve, 10));
  up = true;
  assert.deepEqual(await firstPage(client), page);
  assert.equal(calls.length, 2);
});
