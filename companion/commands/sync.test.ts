import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../shared/errors.ts';
import { localSearchPath } from './search.ts';
import { describeStatus, formatBytes, formatSeconds } from './sync.ts';

describe('imagine sync / search helpers', () => {
  test('sizes and durations read like a person would write them', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(formatSeconds(null), 'never synced');
    assert.equal(formatSeconds(12.4), '12s');
    assert.equal(formatSeconds(75), '1m 15s');
    assert.equal(formatSeconds(3 * 3600 + 120), '3h 2m');
    assert.equal(formatSeconds(2 * 86_400 + 3600), '2d 1h');
  });

  test('a status shows state, last sync and lag, size on disk and the last error', () => {
    const text = describeStatus({
      connection: 'images.example',
      state: 'offline',
      lastSync: '2025-01-01T00:00:00.000Z',
      lagSeconds: 90,
      assets: 1000,
      bytesOnDisk: 2 * 1024 ** 2,
      lastError: { code: 'ERR_UPSTREAM_UNREACHABLE', message: 'connection refused', at: '2025-01-01T00:01:30.000Z' },
      phase: 'incremental',
      thumbnails: { cached: 990, failed: 1 },
    });
    assert.match(text, /^images\.example: offline$/m);
    assert.match(text, /assets +1000/);
    assert.match(text, /last sync +2025-01-01T00:00:00\.000Z \(lag 1m 30s\)/);
    assert.match(text, /on disk +2\.0 MiB/);
    assert.match(text, /thumbnails +990 cached, 1 failed/);
    assert.match(text, /last error +connection refused \[ERR_UPSTREAM_UNREACHABLE\]/);
  });

  test('the local search path carries the query and filters, and checks --limit', () => {
    assert.equal(localSearchPath('', {}), '/sync/search');
    assert.equal(
      localSearchPath(' harbour dawn ', { connection: 'images.example', collection: 'c1', sort: '-created', limit: '20' }),
      '/sync/search?q=harbour+dawn&connection=images.example&collection=c1&sort=-created&limit=20',
    );
    assert.throws(() => localSearchPath('x', { limit: '500' }), (e) => isProtocolError(e, 'ERR_VALIDATION'));
    assert.throws(() => localSearchPath('x', { limit: 'ten' }), (e) => isProtocolError(e, 'ERR_VALIDATION'));
  });
});
