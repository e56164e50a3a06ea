import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../../../shared/errors.ts';
import type { AgentAsset, Checkout } from '../../../../shared/schemas/agent.ts';
import { recordingHost, scriptedClient } from '../../test-agent.ts';
import { canCheckout, runCheckout, usesOf, waitUntilReady } from './checkout-actions.ts';

const asset = { id: 'a', uri: 'imagine://lib/images/a', connection: 'lib', filename: 'a.jpg', rights: { doNotDistribute: false, expired: false } } as AgentAsset;
const restricted = { ...asset, rights: { doNotDistribute: true, expired: false } } as AgentAsset;
const base: Checkout = {
  id: 'c1', uri: asset.uri, connection: 'lib', assetId: 'a', baseVersion: 'v1', rendition: 'original', path: '/w/a.jpg', filename: 'a.jpg',
  state: 'downloading', progress: { done: 0, total: 10 }, created: '2026-01-01T00:00:00Z', updated: '2026-01-01T00:00:00Z',
};

test('uses follow the host: Photoshop opens, InDesign places, the preview does both', () => {
  assert.deepEqual(usesOf({ capabilities: { open: true, place: false, links: false } }), ['open']);
  assert.deepEqual(usesOf({ capabilities: { open: false, place: true, links: true } }), ['place']);
  assert.deepEqual(usesOf(recordingHost()), ['open', 'place']);
});

test('can-run: rights that need confirming, deleted assets, what the host cannot do', () => {
  const host = recordingHost();
  assert.deepEqual(canCheckout({ host, asset, use: 'place', confirmed: false }), { ok: true });
  const r = canCheckout({ host, asset: restricted, use: 'place', confirmed: false });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.needsConfirmation, true);
  assert.deepEqual(canCheckout({ host, asset: restricted, use: 'place', confirmed: true }), { ok: true });
  assert.equal(canCheckout({ host, asset: { ...asset, deleted: '2026-01-02T00:00:00Z' }, use: 'open', confirmed: true }).ok, false);
  assert.equal(canCheckout({ host: { ...host, capabilities: { open: false, place: true, links: true } }, asset, use: 'open', confirmed: true }).ok, false);
});

test('run: the download is followed until ready, then the host places the local file', async () => {
  let polls = 0;
  const { client } = scriptedClient({
    'POST /agent/v1/checkouts': ({ body }) => (assert.deepEqual(body, { uri: asset.uri, rendition: 'proxy' }), { status: 201, body: base }),
    'GET /agent/v1/checkouts/c1': () => ({ status: 200, body: ++polls < 3 ? { ...base, progress: { done: polls * 3, total: 10 } } : { ...base, state: 'ready', progress: { done: 10, total: 10 } } }),
  });
  const host = recordingHost();
  const seen: number[] = [];
  const checkout = await runCheckout({ client, host, asset, use: 'place', rendition: 'proxy', placeMode: 'embedded', confirmed: false, pollMs: 1, onProgress: (c) => seen.push(c.progress.done) });
  assert.equal(checkout.state, 'ready');
  assert.deepEqual(host.calls, [['placeFile', '/w/a.jpg', 'embedded']]);
  assert.deepEqual(seen, [0, 3, 6, 10]);
});

test('a failed download keeps its code; nothing reaches the host', async () => {
  const { client } = scriptedClient({
    'GET /agent/v1/checkouts/c1': () => ({ status: 200, body: { ...base, state: 'failed', error: { code: 'ERR_DISK_FULL', message: 'no space left' } } }),
  });
  await assert.rejects(waitUntilReady(client, base, { pollMs: 1 }), (e) => isProtocolError(e, 'ERR_DISK_FULL'));
  const host = recordingHost();
  await assert.rejects(runCheckout({ client, host, asset: restricted, use: 'open', rendition: 'original', confirmed: false }), (e) => isProtocolError(e, 'ERR_FORBIDDEN'));
  assert.deepEqual(host.calls, []);
});
