import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProtocolError } from '../../shared/errors.ts';
import { MirrorDeclarations, MirrorStateFile } from './mirror-store.ts';

const declaration = {
  peer: 'http://127.0.0.1:9001',
  collection: 'c1',
  uri: 'imagine://127.0.0.1:9001/collections/c1',
  localOrigin: 'http://127.0.0.1:9000',
};

describe('mirror store', () => {
  test('declarations: added once per peer collection, seen by another reader, removed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagine-mirror-store-'));
    try {
      const server = new MirrorDeclarations(dir);
      const cli = new MirrorDeclarations(dir);
      assert.deepEqual(await server.list(), []);
      const first = await cli.add(declaration);
      assert.equal(first.existed, false);
      assert.match(first.mirror.id, /^m_[a-z0-9]{12}$/);
      const again = await server.add(declaration);
      assert.equal(again.existed, true);
      assert.equal(again.mirror.id, first.mirror.id);
      assert.equal((await server.list()).length, 1);
      await cli.remove(first.mirror.id);
      assert.deepEqual(await server.list(), []);
      await assert.rejects(cli.remove(first.mirror.id), (e) => isProtocolError(e, 'ERR_COLLECTION_MIRROR_NOT_FOUND'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('state: created with a webhook secret, private, and read back as saved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagine-mirror-state-'));
    try {
      const file = await MirrorStateFile.open(dir, 'm_abc');
      assert.match(file.state.hookSecret, /^whsec_/);
      assert.equal(statSync(file.path).mode & 0o777, 0o600, 'the file holds a secret');
      file.state.items.r1 = { local: 'l1', remoteVersion: 'v2', sha256: 'a'.repeat(64), owned: true };
      file.state.position = { cursor: '7', lastSeq: 7, lastEvent: null };
      await file.save(file.state);
      const reopened = await MirrorStateFile.open(dir, 'm_abc');
      assert.deepEqual(reopened.state.items, file.state.items);
      assert.equal(reopened.state.hookSecret, file.state.hookSecret);
      assert.equal(reopened.state.position?.cursor, '7');
      await assert.rejects(MirrorStateFile.open(dir, '../escape'), (e) => isProtocolError(e, 'ERR_VALIDATION'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
