// Retry decisions of the push queue: which errors wait and try again, and how long.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../shared/errors.ts';
import { backoffMs, isRetryable } from './queue.ts';

test('backoff doubles, is capped, and jitters between half and all of it', () => {
  assert.equal(backoffMs(1, 1000, 300_000, () => 1), 1000);
  assert.equal(backoffMs(3, 1000, 300_000, () => 1), 4000);
  assert.equal(backoffMs(3, 1000, 300_000, () => 0), 2000);
  assert.equal(backoffMs(40, 1000, 300_000, () => 1), 300_000);
  for (let i = 0; i < 100; i++) {
    const wait = backoffMs(5, 1000, 10_000);
    assert.ok(wait >= 5000 && wait <= 10_000, String(wait));
  }
});

test('unreachable servers, 5xx, lost bytes and network errors are retried; refusals are not', () => {
  for (const code of ['ERR_UPSTREAM_UNREACHABLE', 'ERR_UPSTREAM_TIMEOUT', 'ERR_INTERNAL', 'ERR_SERVICE_UNAVAILABLE', 'ERR_UPLOAD_NOT_FOUND', 'ERR_DIGEST_MISMATCH', 'ERR_CONFLICT', 'ERR_RATE_LIMITED'] as const) {
    assert.equal(isRetryable(new ProtocolError(code, 'x')), true, code);
  }
  assert.equal(isRetryable(new ProtocolError('ERR_UPSTREAM_ERROR', 'x', { status: 503 })), true);
  assert.equal(isRetryable(new TypeError('fetch failed')), true);
  for (const code of ['ERR_PRECONDITION_FAILED', 'ERR_FORBIDDEN', 'ERR_TOKEN_INVALID', 'ERR_ASSET_GONE', 'ERR_NOT_AN_IMAGE', 'ERR_PAYLOAD_TOO_LARGE', 'ERR_DISK_FULL', 'ERR_FILE_MISSING'] as const) {
    assert.equal(isRetryable(new ProtocolError(code, 'x')), false, code);
  }
  assert.equal(isRetryable(new ProtocolError('ERR_UPSTREAM_ERROR', 'x', { status: 400 })), false);
});
