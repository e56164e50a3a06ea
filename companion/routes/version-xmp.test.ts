// The metadata engine behind the API, on a real socket: the metadata profile document with a
// server's custom mapping (from <data>/metadata-profile.json), every version's raw XMP packet
// stored and served, and a metadata edit that follows the custom profile.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeJpeg, writeXmpBlock, xmpPacket } from '../../test/helpers/metadata.ts';
import { startTestLibrary, type TestLibrary } from '../../test/helpers/test-library.ts';
import type { LibraryServices } from '../library/services.ts';
import { pickTag, readGroupedTags } from '../metadata/exiftool.ts';

let library: TestLibrary;
let services: LibraryServices;
let origin: string;
let admin: string;

async function upload(path: string, filename: string): Promise<{ id: string; currentVersion: string }> {
  const res = await fetch(`${origin}/api/v1/assets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'image/jpeg', 'imagine-filename': filename },
    body: new Uint8Array(await readFile(path)),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { id: string; currentVersion: string };
}

before(async () => {
  library = await startTestLibrary({
    name: 'xmp-route',
    prepare: (dataDir) =>
      writeFileSync(
        join(dataDir, 'metadata-profile.json'),
        JSON.stringify({
          profile: 'newsroom.example/1',
          custom: [{ field: 'creator', label: 'Photographer', type: 'list', exiftool: 'IPTC:SpecialInstructions' }],
        }),
      ),
  });
  ({ services, origin, admin } = library);
});

after(() => library?.close());

describe('metadata through the API', () => {
  let assetId: string;

  test('the metadata profile document lists the custom mapping', async () => {
    const doc = (await (await fetch(`${origin}/.well-known/imagine/metadata-profile`)).json()) as {
      profile: string;
      fields: Array<{ field: string; exiftool: string; iim?: string }>;
      custom: Array<{ field: string; exiftool: string }>;
    };
    assert.equal(doc.profile, 'newsroom.example/1');
    assert.deepEqual(doc.custom.map((c) => [c.field, c.exiftool]), [['creator', 'IPTC:SpecialInstructions']]);
    assert.equal(doc.fields.find((f) => f.field === 'instructions')?.iim, undefined, 'the dataset went to the custom field');
  });

  test("GET .../versions/{v}/xmp answers the version's raw packet", async () => {
    const path = join(library.dataDir, 'source.jpg');
    await makeJpeg(path);
    await writeXmpBlock(path, xmpPacket('<my:desk>Foreign desk</my:desk><dc:format>image/jpeg</dc:format>', { my: 'http://example.com/ns/newsroom/1.0/' }));
    const asset = await upload(path, 'desk.jpg');
    assetId = asset.id;
    const res = await fetch(`${origin}/api/v1/assets/${assetId}/versions/v1/xmp`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^application\/rdf\+xml/);
    const etag = res.headers.get('etag');
    assert.match(String(etag), /^"[0-9a-f]{64}"$/);
    const body = await res.text();
    assert.match(body, /<my:desk>Foreign desk<\/my:desk>/);
    const again = await fetch(`${origin}/api/v1/assets/${assetId}/versions/v1/xmp`, { headers: { authorization: `Bearer ${admin}`, 'if-none-match': etag! } });
    assert.equal(again.status, 304);
  });

  test('the xmp route has the auth of the version route', async () => {
    const anonymous = await fetch(`${origin}/api/v1/assets/${assetId}/versions/v1/xmp`);
    const version = await fetch(`${origin}/api/v1/assets/${assetId}/versions/v1`);
    assert.equal(anonymous.status, version.status);
    assert.equal(anonymous.status, 401);
    const missing = await fetch(`${origin}/api/v1/assets/${assetId}/versions/v9/xmp`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(missing.status, 404);
  });

  test('a version without XMP answers 404 ERR_VERSION_NOT_FOUND', async () => {
    const path = join(library.dataDir, 'plain.jpg');
    await makeJpeg(path, 48);
    const asset = await upload(path, 'plain.jpg');
    const res = await fetch(`${origin}/api/v1/assets/${asset.id}/versions/v1/xmp`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'ERR_VERSION_NOT_FOUND');
  });

  test('a metadata edit follows the custom profile and its version has its own packet', async () => {
    const res = await fetch(`${origin}/api/v1/assets/${assetId}/metadata`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'if-match': '"v1"' },
      body: JSON.stringify({ metadata: { creator: ['Jane Doe'], title: 'Desk' } }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const asset = (await res.json()) as { metadata: Record<string, unknown>; currentVersion: string };
    assert.deepEqual(asset.metadata.creator, ['Jane Doe']);
    const version = services.library.getAsset(assetId).versions[1]!;
    const file = services.library.blobs.pathOf(version.sha256);
    const tags = await readGroupedTags(file, ['-IPTC:SpecialInstructions', '-XMP-dc:Creator']);
    assert.equal(pickTag(tags.tags, 'IPTC:SpecialInstructions'), 'Jane Doe');
    assert.equal(pickTag(tags.tags, 'XMP-dc:Creator'), undefined);
    const packet = await (await fetch(`${origin}/api/v1/assets/${assetId}/versions/v2/xmp`, { headers: { authorization: `Bearer ${admin}` } })).text();
    assert.match(packet, /Desk/);
    assert.match(packet, /Foreign desk/, 'the custom namespace survived the edit');
  });
});
