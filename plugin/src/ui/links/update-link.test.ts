import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Checkout } from '../../../../shared/schemas/agent.ts';
import { recordingHost, scriptedClient } from '../../test-agent.ts';
import { checkLinks, currentUri, runUpdateLink } from './update-link.ts';

const old: Checkout = {
  id: 'c1', uri: 'imagine://lib/images/a@v1', connection: 'lib', assetId: 'a', baseVersion: 'v1', rendition: 'proxy', path: '/w/a_v1.jpg', filename: 'a_v1.jpg',
  state: 'ready', progress: { done: 1, total: 1 }, created: '2026-01-01T00:00:00Z', updated: '2026-01-01T00:00:00Z',
};

test('the current version is asked for, not the one in the URI', () => {
  assert.equal(currentUri('imagine://lib/images/a@v1'), 'imagine://lib/images/a');
  assert.equal(currentUri('imagine://lib:7420/images/a'), 'imagine://lib:7420/images/a');
});

test('check, then update: a new checkout of the current version (same rendition), relinked', async () => {
  const host = { ...recordingHost(), listLinks: async () => [{ id: '7', path: '/w/a_v1.jpg', status: 'normal' as const, name: 'a_v1.jpg' }] };
  const { client } = scriptedClient({
    'GET /agent/v1/checkouts': () => ({ status: 200, body: { items: [old] } }),
    'GET /agent/v1/assets/lib/a': () => ({ status: 200, body: { id: 'a', currentVersion: 'v2' } }),
    'POST /agent/v1/checkouts': ({ body }) => (assert.deepEqual(body, { uri: 'imagine://lib/images/a', rendition: 'proxy' }), { status: 201, body: { ...old, id: 'c2', baseVersion: 'v2', path: '/w/a_v2.jpg' } }),
  });
  const [report] = await checkLinks(client, host);
  assert.equal(report!.state, 'out-of-date');
  const fresh = await runUpdateLink(client, host, report!);
  assert.equal(fresh.path, '/w/a_v2.jpg');
  assert.deepEqual(host.calls, [['relink', '7', '/w/a_v2.jpg']]);
});

test('an asset deleted on its server shows as deleted; an unreachable one as unknown', async () => {
  const host = { ...recordingHost(), listLinks: async () => [{ id: '1', path: '/w/a_v1.jpg', status: 'normal' as const, name: 'a' }] };
  const gone = scriptedClient({
    'GET /agent/v1/checkouts': () => ({ status: 200, body: { items: [old] } }),
    'GET /agent/v1/assets/lib/a': () => ({ status: 410, body: { code: 'ERR_ASSET_GONE', title: 'Asset was deleted', status: 410 } }),
  });
  assert.equal((await checkLinks(gone.client, host))[0]!.state, 'deleted');
  const down = scriptedClient({
    'GET /agent/v1/checkouts': () => ({ status: 200, body: { items: [old] } }),
    'GET /agent/v1/assets/lib/a': () => ({ status: 502, body: { code: 'ERR_UPSTREAM_UNREACHABLE', title: 'Server could not be reached', status: 502 } }),
  });
  assert.equal((await checkLinks(down.client, host))[0]!.state, 'unknown');
});
