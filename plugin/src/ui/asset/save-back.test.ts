import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Checkout, QueueItem } from '../../../../shared/schemas/agent.ts';
import { memoryStore } from '../../memory-store.ts';
import { recordingHost, scriptedClient } from '../../test-agent.ts';
import { PendingSaves } from '../queue/pending-saves.ts';
import { canSaveBack, flushPending, planSaveBack, runSaveBack } from './save-back.ts';

const checkout: Checkout = {
  id: 'c1', uri: 'imagine://lib/images/a', connection: 'lib', assetId: 'a', baseVersion: 'v1', rendition: 'original',
  path: '/work/a.jpg', filename: 'a.jpg', state: 'ready', progress: { done: 10, total: 10 }, created: '2026-01-01T00:00:00Z', updated: '2026-01-01T00:00:00Z',
};

const queued = { id: 'q1', state: 'queued' } as QueueItem;

test('can-run: a local copy must exist and be ready', () => {
  assert.equal(canSaveBack(undefined, '').ok, false);
  assert.equal(canSaveBack({ ...checkout, state: 'downloading' }, '').ok, false);
  assert.equal(canSaveBack({ ...checkout, state: 'pushing' }, '').ok, false);
  assert.equal(canSaveBack(checkout, 'x'.repeat(2001)).ok, false);
  assert.equal(canSaveBack({ ...checkout, state: 'pushed' }, 'again').ok, true);
});

test('the document is saved first only when it is the checked-out file', () => {
  assert.deepEqual(planSaveBack(checkout, { path: '/work/a.jpg', name: 'a.jpg', dirty: true }), { saveDocumentFirst: true });
  assert.deepEqual(planSaveBack(checkout, { path: '/other/b.psd', name: 'b.psd', dirty: true }), { saveDocumentFirst: false });
  assert.deepEqual(planSaveBack(checkout, null), { saveDocumentFirst: false });
});

test('a save handed to the agent leaves the pending list; the comment goes along', async () => {
  const { client, calls } = scriptedClient({
    'POST /agent/v1/checkouts/c1/push': ({ body }) => {
      assert.deepEqual(body, { comment: 'warmer tones' });
      return { status: 202, body: queued };
    },
  });
  const host = recordingHost({ path: '/work/a.jpg', name: 'a.jpg', dirty: true });
  const pending = new PendingSaves(memoryStore());
  const result = await runSaveBack({ client, host, pending, checkout, comment: ' warmer tones ', label: 'a.jpg' });
  assert.ok('queued' in result);
  assert.deepEqual(host.calls, [['saveActiveDocument']]);
  assert.deepEqual(calls, ['POST /agent/v1/checkouts/c1/push']);
  assert.deepEqual(pending.list(), []);
});

test('companion down: the save is kept, then sent when it is back', async () => {
  let up = false;
  const { client } = scriptedClient({
    'POST /agent/v1/checkouts/c1/push': () => (up ? { status: 202, body: queued } : 'network-error'),
  });
  const store = memoryStore();
  const pending = new PendingSaves(store);
  const result = await runSaveBack({ client, host: recordingHost(), pending, checkout, comment: 'v2', label: 'a.jpg' });
  assert.ok('kept' in result);
  assert.match(result.message, /kept in this panel/);
  const kept = new PendingSaves(store).list();
  assert.equal(kept.length, 1);
  assert.equal(kept[0]!.lastError?.code, 'ERR_AGENT_NOT_RUNNING');
  assert.deepEqual(await flushPending(client, pending), { sent: 0, left: 1 });
  up = true;
  assert.deepEqual(await flushPending(client, pending), { sent: 1, left: 0 });
});

test('a save the agent refuses waits for the user instead of being retried forever', async () => {
  const { client, calls } = scriptedClient({
    'POST /agent/v1/checkouts/c1/push': () => ({ status: 409, body: { code: 'ERR_FILE_MISSING', title: 'Local file is no longer there', status: 409, detail: 'gone' } }),
  });
  const pending = new PendingSaves(memoryStore());
  const result = await runSaveBack({ client, host: recordingHost(), pending, checkout, comment: '', label: 'a.jpg' });
  assert.ok('kept' in result);
  assert.equal(result.message, 'The local file is no longer there');
  assert.deepEqual(await flushPending(client, pending), { sent: 0, left: 1 });
  assert.equal(calls.length, 1);
});

test('the retry loop never sends a save that is being sent right now', async () => {
  let release: () => void = () => {};
  let pushes = 0;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const store = memoryStore();
  const pending = new PendingSaves(store);
  const { client } = scriptedClient({
    'POST /agent/v1/checkouts/c1/push': () => {
      pushes++;
      return { status: 202, body: queued };
    },
  });
  // The push answers only when the gate opens: meanwhile the status poll flushes.
  const slowClient = Object.assign(Object.create(Object.getPrototypeOf(client)), client);
  slowClient.push = async (...args: Parameters<typeof client.push>) => {
    await gate;
    return client.push(...args);
  };
  const saving = runSaveBack({ client: slowClient, host: recordingHost(), pending, checkout, comment: 'once', label: 'a.jpg' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(pending.list().length, 1, 'the save is pending while the agent has not answered');
  assert.deepEqual(await flushPending(client, pending), { sent: 0, left: 1 });
  release();
  assert.ok('queued' in (await saving));
  assert.equal(pushes, 1);
  assert.deepEqual(pending.list(), []);
});
