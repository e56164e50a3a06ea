import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../shared/errors.ts';
import { describeError, isAgentProblem } from './messages.ts';

test('the companion not running: how to start it, and that saves are kept', () => {
  const m = describeError(new ProtocolError('ERR_AGENT_NOT_RUNNING', 'The Imagine companion at http://127.0.0.1:7420 is not answering.'));
  assert.equal(m.wayOut, 'start-companion');
  assert.match(m.detail, /npx imagine serve/);
  assert.match(m.detail, /pending saves are kept/);
  assert.match(m.detail, /127\.0\.0\.1:7420/);
  assert.ok(isAgentProblem(new ProtocolError('ERR_PAIRING_REQUIRED', 'x')));
});

test('a rejected token asks to sign in again; a deleted asset offers a way back', () => {
  assert.equal(describeError(new ProtocolError('ERR_TOKEN_INVALID', 'bad')).wayOut, 'sign-in');
  assert.equal(describeError(new ProtocolError('ERR_ASSET_GONE', 'gone')).wayOut, 'back');
  assert.equal(describeError(new ProtocolError('ERR_ASSET_NOT_FOUND', 'gone')).title, 'This image is no longer on the server');
  assert.equal(isAgentProblem(new ProtocolError('ERR_ASSET_GONE', 'gone')), false);
});

test('anything else still gets a title and a retry, and long details are cut', () => {
  const m = describeError(new TypeError('x'.repeat(1000)));
  assert.equal(m.code, 'ERR_INTERNAL');
  assert.equal(m.title, 'Something went wrong');
  assert.equal(m.wayOut, 'retry');
  assert.ok(m.detail.length <= 300);
  const unknown = describeError(new ProtocolError('ERR_NOT_ACCEPTABLE', 'nope'));
  assert.equal(unknown.title, 'No acceptable representation');
  assert.equal(unknown.detail, 'nope');
});
