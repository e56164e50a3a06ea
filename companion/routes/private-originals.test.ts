/**
 * Originals through the API as the privacy policy says: the public and other servers get a copy
 * without the location their collection hides (default: none), members get the stored file;
 * the setting is per collection; the stored original is never touched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readAllTags } from '../metadata/tag-diff.ts';
import { readMetadata } from '../metadata/read.ts';
import { fixture, sha256File } from '../../test/helpers/metadata.ts';
import { startTestLibrary, type TestLibrary } from '../../test/helpers/test-library.ts';

let lib: TestLibrary;
let assetId = '';
let collectionId = '';
let originalSha = '';

interface Ticket {
  url: string;
  sha256: string;
  size: number;
  rendition: string;
}

async function download(bearer?: string): Promise<{ ticket: Ticket; path: string; bytes: Buffer }> {
  const headers: Record<string, string> = bearer ? { authorization: `Bearer ${bearer}` } : {};
  const response = await fetch(`${lib.origin}/api/v1/assets/${assetId}/download`, { headers });
  assert.equal(response.status, 200, await response.clone().text());
  const ticket = (await response.json()) as Ticket;
  const file = await fetch(ticket.url);
  assert.equal(file.status, 200);
  const bytes = Buffer.from(await file.arrayBuffer());
  const path = join(lib.dataDir, `download-${Math.random().toString(36).slice(2)}.jpg`);
  await writeFile(path, bytes);
  return { ticket, path, bytes };
}

const hasGps = async (path: string) => Object.keys((await readAllTags(path)).tags).some((k) => /GPS/i.test(k));

before(async () => {
  lib = await startTestLibrary({ name: 'private-originals' });
  const collection = await lib.services.library.createCollection({ name: 'Open', public: true });
  collectionId = collection.id;
  const created = await lib.services.library.ingestFile(fixture('GPS.jpg'), { filename: 'GPS.jpg', collection: collection.id });
  assetId = created.asset.id;
  originalSha = created.asset.versions[0]!.sha256;
});

after(async () => lib?.close());

describe('originals and the privacy policy', () => {
  test('members get the stored original, GPS and all', async () => {
    const { ticket, path, bytes } = await download(lib.admin);
    assert.equal(ticket.sha256, originalSha);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), originalSha);
    assert.ok(await hasGps(path));
  });

  test('the public gets a copy without any location, and the ticket describes that copy', async () => {
    const { ticket, path, bytes } = await download();
    assert.notEqual(ticket.sha256, originalSha);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), ticket.sha256, 'the ticket matches the bytes served');
    assert.equal(bytes.length, ticket.size);
    assert.match(ticket.url, /\/original-none\?/);
    assert.equal(await hasGps(path), false);
    const { metadata } = await readMetadata(path);
    assert.equal(metadata.city, undefined);
    assert.equal(metadata.country, undefined);
    assert.ok(metadata.creator || metadata.title || metadata.copyrightNotice || Object.keys(metadata).length > 0, 'other fields stay');
    // The stored original is untouched.
    assert.equal(await sha256File(lib.services.library.blobs.pathOf(originalSha)), originalSha);
  });

  test("a collection set to 'country' for the public: the country stays, GPS and city go (file and API alike)", async () => {
    const patched = await fetch(`${lib.origin}/api/v1/collections/${collectionId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${lib.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ privacy: { public: { location: 'country' } } }),
    });
    assert.equal(patched.status, 200, await patched.clone().text());
    assert.deepEqual(((await patched.json()) as { privacy: unknown }).privacy, { guests: { location: 'none' }, public: { location: 'country' } });
    const { path, ticket } = await download();
    assert.match(ticket.url, /\/original-country\?/);
    const { metadata } = await readMetadata(path);
    assert.equal(metadata.country, 'United Kingdom');
    assert.equal(metadata.city, undefined);
    assert.equal(await hasGps(path), false);
    const api = (await (await fetch(`${lib.origin}/api/v1/assets/${assetId}`)).json()) as { metadata: Record<string, unknown> };
    assert.equal(api.metadata.country, 'United Kingdom');
    assert.equal(api.metadata.city, undefined);
  });

  test("'full' for the public serves the stored original", async () => {
    await fetch(`${lib.origin}/api/v1/collections/${collectionId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${lib.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ privacy: { public: { location: 'full' } } }),
    });
    const { ticket } = await download();
    assert.equal(ticket.sha256, originalSha);
  });

  test('hostile: a bad privacy value is refused; a filtered URL cannot be turned into the full one', async () => {
    const bad = await fetch(`${lib.origin}/api/v1/collections/${collectionId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${lib.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ privacy: { public: { location: 'street' } } }),
    });
    assert.equal(bad.status, 400);
    await fetch(`${lib.origin}/api/v1/collections/${collectionId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${lib.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ privacy: { public: { location: 'none' } } }),
    });
    const { ticket } = await download();
    const forged = ticket.url.replace('/original-none?', '/original?');
    assert.equal((await fetch(forged)).status, 403);
  });
});
