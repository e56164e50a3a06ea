import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from '../../../../shared/schemas/agent.ts';
import { isProtocolError } from '../../../../shared/errors.ts';
import { scriptedClient } from '../../test-agent.ts';
import { canAddConnection, canSignIn, describeSync, runAddConnection, runSignIn } from './connection-actions.ts';

const lib: Connection = { id: 'lib', origin: 'http://127.0.0.1:7420', domain: '127.0.0.1', name: 'Demo', authenticated: true, state: 'ok', added: '2026-01-01T00:00:00Z' };

test('can-add: an address is needed, without spaces, not one already connected', () => {
  assert.equal(canAddConnection({ url: ' ', token: '', name: '' }, []).ok, false);
  assert.equal(canAddConnection({ url: 'images example', token: '', name: '' }, []).ok, false);
  assert.equal(canAddConnection({ url: 'http://127.0.0.1:7420/', token: '', name: '' }, [lib]).ok, false);
  assert.equal(canAddConnection({ url: 'imagine://images.example/images/x', token: '', name: '' }, [lib]).ok, true);
  assert.equal(canAddConnection({ url: 'images.example', token: '', name: '' }, [lib]).ok, true);
  assert.equal(canSignIn('  ').ok, false);
});

test('add: the token and name are sent only when given', async () => {
  const bodies: unknown[] = [];
  const { client } = scriptedClient({ 'POST /agent/v1/connections': ({ body }) => (bodies.push(body), { status: 201, body: lib }) });
  await runAddConnection(client, { url: ' images.example ', token: '', name: '' });
  await runAddConnection(client, { url: 'images.example', token: ' t ', name: 'Studio' });
  assert.deepEqual(bodies, [{ url: 'images.example' }, { url: 'images.example', token: 't', name: 'Studio' }]);
});

test('sign-in changes the token in place; a refused token is reported and nothing else is called', async () => {
  const bodies: unknown[] = [];
  const { client, calls } = scriptedClient({
    'PATCH /agent/v1/connections/lib': ({ body }) => {
      bodies.push(body);
      return (body as { token?: string }).token === 'wrong'
        ? { status: 401, body: { code: 'ERR_TOKEN_INVALID', title: 'Token is not valid', status: 401, detail: 'refused' } }
        : { status: 200, body: lib };
    },
  });
  await assert.rejects(runSignIn(client, lib, 'wrong'), (e) => isProtocolError(e, 'ERR_TOKEN_INVALID'));
  assert.equal((await runSignIn(client, lib, ' good ')).id, 'lib');
  assert.deepEqual(calls, ['PATCH /agent/v1/connections/lib', 'PATCH /agent/v1/connections/lib']);
  assert.deepEqual(bodies, [{ token: 'wrong' }, { token: 'good' }]);
});

test('sync status line: size, last sync, lag, and the last error', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(describeSync(undefined).text, 'Offline copy: not started yet.');
  const ok = describeSync({ connection: 'lib', state: 'idle', lastSync: '2026-01-01T11:58:00Z', lagSeconds: 120, assets: 26, bytesOnDisk: 3 * 1024 * 1024 }, now);
  assert.equal(ok.text, 'Offline copy: 26 images, 3.0 MB on this computer; last synced 2 min ago.');
  assert.equal(ok.error, undefined);
  const behind = describeSync(
    { connection: 'lib', state: 'error', lastSync: '2026-01-01T09:00:00Z', lagSeconds: 10800, assets: 1, bytesOnDisk: 2048, lastError: { code: 'ERR_UPSTREAM_UNREACHABLE', message: 'server could not be reached', at: '2026-01-01T11:59:00Z' } },
    now,
  );
  assert.equal(behind.text, 'Offline copy: 1 image, 2 KB on this computer; last synced 3 h ago (behind by 3 h).');
  assert.equal(behind.error, 'Last sync error: server could not be reached');
  assert.match(describeSync({ connection: 'lib', state: 'syncing', lastSync: null, lagSeconds: null, assets: 0, bytesOnDisk: 0 }, now).text, /syncing now/);
});
