import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from '../../../../shared/schemas/agent.ts';
import { isProtocolError } from '../../../../shared/errors.ts';
import { scriptedClient } from '../../test-agent.ts';
import { canAddConnection, canSignIn, runAddConnection, runSignIn } from './connection-actions.ts';

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

test('sign-in with a refused token puts the connection back and reports the refusal', async () => {
  const bodies: unknown[] = [];
  const { client, calls } = scriptedClient({
    'DELETE /agent/v1/connections/lib': () => ({ status: 204 }),
    'POST /agent/v1/connections': ({ body }) => {
      bodies.push(body);
      return (body as { token?: string }).token
        ? { status: 401, body: { code: 'ERR_TOKEN_INVALID', title: 'Token is not valid', status: 401, detail: 'refused' } }
        : { status: 201, body: lib };
    },
  });
  await assert.rejects(runSignIn(client, lib, 'wrong'), (e) => isProtocolError(e, 'ERR_TOKEN_INVALID'));
  assert.deepEqual(calls, ['DELETE /agent/v1/connections/lib', 'POST /agent/v1/connections', 'POST /agent/v1/connections']);
  assert.deepEqual(bodies, [{ url: lib.origin, token: 'wrong', name: 'Demo' }, { url: lib.origin, name: 'Demo' }]);
});
