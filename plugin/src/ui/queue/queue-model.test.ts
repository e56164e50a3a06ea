import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueItem } from '../../../../shared/schemas/agent.ts';
import { memoryStore } from '../../memory-store.ts';
import { PendingSaves } from './pending-saves.ts';
import { badge, groupOf, pollInterval, sortQueue, stateLabel, summarise } from './queue-model.ts';

function item(id: string, state: QueueItem['state'], extra: Partial<QueueItem> = {}): QueueItem {
  return {
    id,
    idempotencyKey: `k-${id}`,
    checkout: 'c',
    connection: 'lib',
    assetId: 'a',
    baseVersion: 'v1',
    kind: 'version',
    path: '/q/a.jpg',
    state,
    attempts: 0,
    progress: { done: 0, total: 100 },
    created: `2026-01-0${id.length}T00:00:00Z`,
    updated: '2026-01-01T00:00:00Z',
    ...extra,
  };
}

test('retrying because the server is unreachable counts as offline', () => {
  const offline = item('a', 'retrying', { error: { code: 'ERR_UPSTREAM_UNREACHABLE', message: 'down' }, nextAttempt: '2026-01-01T00:00:30Z' });
  assert.equal(groupOf(offline), 'offline');
  assert.match(stateLabel(offline, Date.parse('2026-01-01T00:00:00Z')), /retrying in 30 s \(kept on this computer\)/);
  assert.equal(groupOf(item('b', 'retrying', { error: { code: 'ERR_INTERNAL', message: 'x' } })), 'in-flight');
});

test('conflicts first, then failures, waiting, running, done (newest first)', () => {
  const items = [
    item('done1', 'done', { updated: '2026-01-01T00:00:00Z' }),
    item('up', 'uploading'),
    item('conf', 'conflict'),
    item('done22', 'done', { updated: '2026-01-02T00:00:00Z' }),
    item('fail', 'failed', { error: { code: 'ERR_DISK_FULL', message: 'full' } }),
  ];
  assert.deepEqual(sortQueue(items).map((i) => i.id), ['conf', 'fail', 'up', 'done22', 'done1']);
  const s = summarise(items);
  assert.deepEqual(s, { active: 1, offline: 0, conflicts: 1, failed: 1, done: 2 });
  assert.equal(badge(s), '2!');
  assert.equal(badge(summarise([item('q', 'queued')]), 1), '2');
  assert.equal(badge(summarise([])), '');
  assert.equal(pollInterval(summarise([item('q', 'queued')])), 1000);
  assert.equal(pollInterval(summarise([])), 5000);
  assert.equal(stateLabel(item('d', 'done', { result: { uri: 'imagine://x/images/a@v2', assetId: 'a', version: 'v2' } })), 'Saved as v2');
});

test('pending saves survive a reload of the panel until the agent takes them', () => {
  const store = memoryStore();
  const first = new PendingSaves(store);
  const a = first.add({ checkoutId: 'c1', label: 'a.jpg', comment: 'warmer' });
  first.add({ checkoutId: 'c2', label: 'b.jpg', comment: '' });
  const reloaded = new PendingSaves(store);
  assert.deepEqual(reloaded.list().map((s) => s.checkoutId), ['c1', 'c2']);
  reloaded.update(a.id, { attempts: 1, lastError: { code: 'ERR_AGENT_NOT_RUNNING', message: 'down' } });
  assert.equal(new PendingSaves(store).list()[0]!.attempts, 1);
  reloaded.remove(a.id);
  assert.deepEqual(new PendingSaves(store).list().map((s) => s.checkoutId), ['c2']);
});

test('a damaged pending-saves entry reads as empty rather than breaking the panel', () => {
  const store = memoryStore();
  store.setItem('imagine.pendingSaves', '{not json');
  assert.deepEqual(new PendingSaves(store).list(), []);
  store.setItem('imagine.pendingSaves', JSON.stringify([{ id: 1 }, { id: 'x', checkoutId: 'c', comment: '' }]));
  assert.deepEqual(new PendingSaves(store).list().map((s) => s.id), ['x']);
});
