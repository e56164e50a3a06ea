// Idempotency-Key on uploads, against a real server on a real socket: a repeated key answers the
// first result (raw pushes, new assets and tus uploads), never a second version; keys are per
// user and per scope, survive a restart (they live in the catalog) and expire after 24 h.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { startTestLibrary, type TestLibrary } from '../../test/helpers/test-library.ts';
import { findIdempotent, IDEMPOTENCY_TTL_MS, parseIdempotencyKey, rememberIdempotent } from './idempotency.ts';
import type { CatalogData } from './records.ts';

let lib: TestLibrary;
let seed = 1;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function jpeg(): Promise<Buffer> {
  const n = seed++;
  return sharp({ create: { width: 32, height: 24, channels: 3, background: { r: n * 7 % 256, g: n * 13 % 256, b: n * 29 % 256 } } })
    .jpeg()
    .toBuffer();
}

function post(path: string, body: Buffer, headers: Record<string, string>, token = lib.admin): Promise<Response> {
  return fetch(`${lib.origin}/api/v1${path}`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg', 'imagine-filename': 'a.jpg', ...headers },
  });
}

async function newAsset(): Promise<{ id: string; version: string }> {
  const res = await post('/assets', await jpeg(), {});
  assert.equal(res.status, 201);
  const asset = (await res.json()) as { id: string; currentVersion: string };
  return { id: asset.id, version: asset.currentVersion };
}

before(async () => {
  lib = await startTestLibrary({ name: 'idempotency' });
});
after(async () => lib.close());

describe('parseIdempotencyKey', () => {
  test('accepts tokens, strips quotes, refuses junk', () => {
    assert.equal(parseIdempotencyKey(undefined), undefined);
    assert.equal(parseIdempotencyKey(' '), undefined);
    assert.equal(parseIdempotencyKey('"push-01HZ:3"'), 'push-01HZ:3');
    for (const bad of ['a b', 'x'.repeat(201), 'é', 'a,b']) {
      assert.throws(() => parseIdempotencyKey(bad), { code: 'ERR_BAD_REQUEST' });
    }
  });

  test('expired keys are forgotten and pruned', () => {
    const data = { idempotency: [] } as unknown as CatalogData;
    const t0 = Date.now();
    rememberIdempotent(data, { user: 'ann', key: 'k', scope: 'asset', assetId: 'a', version: 'v1' }, t0);
    assert.equal(findIdempotent(data, 'ann', 'k', 'asset', t0 + 1000)?.version, 'v1');
    assert.equal(findIdempotent(data, 'bob', 'k', 'asset', t0 + 1000), undefined);
    assert.equal(findIdempotent(data, 'ann', 'k', 'asset', t0 + IDEMPOTENCY_TTL_MS + 1), undefined);
    rememberIdempotent(data, { user: 'ann', key: 'k2', scope: 'asset', assetId: 'a', version: 'v1' }, t0 + IDEMPOTENCY_TTL_MS + 1);
    assert.deepEqual(data.idempotency!.map((r) => r.key), ['k2']);
  });
});

describe('Idempotency-Key on raw uploads', () => {
  test('a repeated version push answers the first version, not a 412 or a second version', async () => {
    const asset = await newAsset();
    const file = await jpeg();
    const headers = { 'if-match': `"${asset.version}"`, 'idempotency-key': 'push-1' };
    const first = await post(`/assets/${asset.id}/versions`, file, headers);
    assert.equal(first.status, 201, await first.clone().text());
    assert.equal(first.headers.get('imagine-version'), 'v2');
    const again = await post(`/assets/${asset.id}/versions`, file, headers);
    assert.equal(again.status, 200, await again.clone().text());
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('imagine-version'), 'v2');
    assert.equal(lib.services.library.getAsset(asset.id).versions.length, 2);
    // Without the key the same stale push is a conflict, as before.
    const stale = await post(`/assets/${asset.id}/versions`, file, { 'if-match': `"${asset.version}"` });
    assert.equal(stale.status, 412);
  });

  test('concurrent pushes with one key make one version', async () => {
    const asset = await newAsset();
    const file = await jpeg();
    const headers = { 'if-match': `"${asset.version}"`, 'idempotency-key': 'push-race' };
    const answers = await Promise.all([1, 2, 3].map(() => post(`/assets/${asset.id}/versions`, file, headers)));
    for (const answer of answers) assert.ok([200, 201].includes(answer.status), String(answer.status));
    assert.deepEqual(new Set(answers.map((a) => a.headers.get('imagine-version'))), new Set(['v2']));
    assert.equal(lib.services.library.getAsset(asset.id).versions.length, 2);
  });

  test('a key is per user and per scope', async () => {
    const asset = await newAsset();
    await lib.services.auth.addUser({ name: 'bob', admin: true });
    const bob = (await lib.services.auth.createToken('bob')).token;
    const first = await post(`/assets/${asset.id}/versions`, await jpeg(), { 'if-match': `"${asset.version}"`, 'idempotency-key': 'shared' });
    assert.equal(first.status, 201);
    // Bob's same key is his own: his stale push is a conflict, not Alice's result.
    const bobs = await post(`/assets/${asset.id}/versions`, await jpeg(), { 'if-match': `"${asset.version}"`, 'idempotency-key': 'shared' }, bob);
    assert.equal(bobs.status, 412);
    // The same key for a new asset is refused.
    const other = await post('/assets', await jpeg(), { 'idempotency-key': 'shared' });
    assert.equal(other.status, 409);
    assert.equal(((await other.json()) as { code: string }).code, 'ERR_CONFLICT');
  });

  test('a repeated new asset answers the first asset', async () => {
    const before = lib.services.library.catalog.data.assets.length;
    const a = await post('/assets', await jpeg(), { 'idempotency-key': 'new-1' });
    const b = await post('/assets', await jpeg(), { 'idempotency-key': 'new-1' });
    assert.equal(a.status, 201);
    assert.equal(b.status, 200);
    assert.equal(((await a.json()) as { id: string }).id, ((await b.json()) as { id: string }).id);
    assert.equal(lib.services.library.catalog.data.assets.length, before + 1);
  });

  test('a malformed key is refused before anything is stored', async () => {
    const res = await post('/assets', await jpeg(), { 'idempotency-key': 'no spaces please' });
    assert.equal(res.status, 400);
  });
});

describe('idempotencyKey in tus uploads', () => {
  const meta = (values: Record<string, string>) =>
    Object.entries(values).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');

  async function upload(file: Buffer, metadata: Record<string, string>): Promise<Response> {
    const created = await fetch(`${lib.origin}/api/v1/uploads`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${lib.admin}`,
        'tus-resumable': '1.0.0',
        'upload-length': String(file.length),
        'upload-metadata': meta({ filename: 'a.jpg', sha256: sha256(file), ...metadata }),
      },
    });
    if (created.status !== 201) return created;
    return fetch(created.headers.get('location')!, {
      method: 'PATCH',
      body: new Uint8Array(file),
      headers: {
        authorization: `Bearer ${lib.admin}`,
        'tus-resumable': '1.0.0',
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
      },
    });
  }

  test('creating an upload with a finished key answers the first result, with no upload made', async () => {
    const asset = await newAsset();
    const file = await jpeg();
    const metadata = { asset: asset.id, ifMatch: asset.version, idempotencyKey: 'tus-1' };
    const done = await upload(file, metadata);
    assert.equal(done.status, 204);
    assert.equal(done.headers.get('imagine-version'), 'v2');
    const again = await upload(file, metadata);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('imagine-asset'), asset.id);
    assert.equal(again.headers.get('imagine-version'), 'v2');
    assert.equal(lib.services.library.getAsset(asset.id).versions.length, 2);
  });

  test('a raw push and a tus upload share the key space of a version', async () => {
    const asset = await newAsset();
    const file = await jpeg();
    const raw = await post(`/assets/${asset.id}/versions`, file, { 'if-match': `"${asset.version}"`, 'idempotency-key': 'both' });
    assert.equal(raw.status, 201);
    const tus = await upload(file, { asset: asset.id, ifMatch: asset.version, idempotencyKey: 'both' });
    assert.equal(tus.status, 200);
    assert.equal(tus.headers.get('imagine-version'), 'v2');
  });
});
