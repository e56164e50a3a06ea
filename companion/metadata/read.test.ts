import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { corpusFiles, exiftool, fixture, makeJpeg, scratch, writeXmpBlock, xmpPacket } from '../../test/helpers/metadata.ts';
import { endExiftool, pickTag, readGroupedTags } from './exiftool.ts';
import { exifDateToIso, readMetadata, readMetadataMany } from './read.ts';

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

describe('readMetadata: the MWG rules', () => {
  test('MWG.jpg resolves every conflict the way the MWG rules say (only RIGHT-* values)', async () => {
    const { metadata, sources } = await readMetadata(fixture('MWG.jpg'));
    assert.deepEqual(metadata, {
      creator: ['RIGHT1of2-EXIF-Creator', 'RIGHT2of2-EXIF-Creator'], // EXIF wins
      description: 'RIGHT-EXIF-Description', // EXIF wins
      keywords: ['RIGHT1of2-XMP-Keywords', 'RIGHT2of2-XMP-Keywords'], // no digest: XMP over IIM
      copyrightNotice: 'RIGHT-XMP-Copyright', // no EXIF: XMP over IIM
      dateCreated: '2001-01-01T01:11:11.111', // EXIF DateTimeOriginal + SubSecTimeOriginal
      city: 'RIGHT-XMP-City',
      sublocation: 'RIGHT-IPTC-Location', // only IIM has it
      state: 'RIGHT-IPTC-State',
      country: 'RIGHT-IPTC-Country',
      rating: 3,
    });
    assert.equal(sources.creator, 'exif');
    assert.equal(sources.keywords, 'xmp');
    assert.equal(sources.state, 'iim');
  });

  test("agrees with exiftool's own MWG composites on every corpus file", async () => {
    const composites: Record<string, string> = {
      creator: 'Creator',
      description: 'Description',
      copyrightNotice: 'Copyright',
      keywords: 'Keywords',
      city: 'City',
      state: 'State',
      country: 'Country',
      sublocation: 'Location',
      rating: 'Rating',
    };
    let compared = 0;
    for (const name of await corpusFiles()) {
      const { metadata } = await readMetadata(fixture(name));
      const mwg = await readGroupedTags(fixture(name), ['-use', 'MWG', '-MWG:all']);
      for (const [field, tag] of Object.entries(composites)) {
        let theirs = pickTag(mwg.tags, `MWG:${tag}`);
        if (theirs === undefined || String(theirs).trim() === '') continue;
        // A text field takes the first of several values (XMP7.xmp shows three cities).
        if (Array.isArray(theirs) && !Array.isArray(metadata[field])) theirs = theirs[0];
        if (Array.isArray(metadata[field]) && !Array.isArray(theirs)) theirs = [theirs];
        const expected = Array.isArray(theirs) ? theirs.map(String) : typeof theirs === 'string' ? theirs.trim() : theirs;
        assert.deepEqual(metadata[field], expected, `${name} ${field}`);
        compared++;
      }
    }
    assert.ok(compared > 60, `compared ${compared} values`);
  });

  test('IIM wins when its digest is out of date (IPTC.jpg)', async () => {
    const { metadata, sources, iim } = await readMetadata(fixture('IPTC.jpg'));
    assert.equal(iim.digest, 'out-of-sync');
    assert.equal(metadata.title, 'Test IPTC picture');
    assert.equal(sources.title, 'iim');
    assert.equal(metadata.dateCreated, '2004-02-26');
  });

  test('formats: TIFF, PSD, PNG, WebP, HEIC, DNG, XMP sidecars', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['ExifTool.tif', { title: 'This is the title', creator: ["I'm the author"] }],
      ['Photoshop.psd', { title: 'Test Picture', creatorJobTitle: 'Supreme leader' }],
      ['RIFF.webp', { keywords: ['test'] }],
      ['DNG.dng', { creator: ['unknown'] }],
      ['PLUS.xmp', { licensor: 'Phil Harvey', rightsMarked: true, digitalSourceType: 'https://exiftool.org' }],
      ['XMP7.xmp', { city: 'London', countryCode: 'GB' }],
    ];
    for (const [name, expected] of cases) {
      const { metadata } = await readMetadata(fixture(name));
      for (const [field, value] of Object.entries(expected)) assert.deepEqual(metadata[field], value, `${name} ${field}`);
    }
    const png = await readMetadata(fixture('PNG.png'));
    assert.equal(png.mimeType, 'image/png');
    const heic = await readMetadata(fixture('QuickTime.heic'));
    assert.equal(heic.mimeType, 'image/heif');
  });
});

describe('readMetadata: bad input', () => {
  test('IIM that says UTF-8 but is not: read as Latin-1, with a warning', async () => {
    const path = await tmp.copy('IPTC.jpg');
    await exiftool('-overwrite_original', '-IPTC:ObjectName=Tïtle é', path); // Latin-1 bytes
    await exiftool('-overwrite_original', '-IPTC:CodedCharacterSet=UTF8', path); // now a lie
    const { metadata, warnings } = await readMetadata(path);
    assert.equal(metadata.title, 'Tïtle é');
    assert.ok(warnings.some((w) => /not valid UTF-8/.test(w)), warnings.join('; '));
  });

  test('a file exiftool cannot parse: empty metadata and a warning, no throw', async () => {
    const corrupt = tmp.path('corrupt.jpg');
    await writeFile(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff]), Buffer.alloc(64, 0x41)]));
    const bad = await readMetadata(corrupt);
    assert.deepEqual(bad.metadata, {});
    assert.ok(bad.warnings.length > 0, 'a warning');
    const text = tmp.path('notes.jpg');
    await writeFile(text, 'this is not a picture');
    assert.deepEqual((await readMetadata(text)).metadata, {});
    const missing = await readMetadata(tmp.path('missing.jpg'));
    assert.match(missing.unreadable ?? '', /ENOENT/);
  });

  test('a truncated JPEG still gives what its header holds', async () => {
    const path = await tmp.copy('XMP.jpg');
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 40));
    const { metadata } = await readMetadata(path);
    assert.equal(metadata.title, 'Test IPTC picture');
  });

  test('XMP nested 1,500 levels deep is not handed to exiftool (it would take seconds)', async () => {
    const path = await makeJpeg(tmp.path('deep.jpg'));
    const depth = 1500;
    await writeXmpBlock(path, xmpPacket(`<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Deep</rdf:li></rdf:Alt></dc:title>
${'<dc:n rdf:parseType="Resource">'.repeat(depth)}x${'</dc:n>'.repeat(depth)}`));
    const started = Date.now();
    const result = await readMetadata(path);
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(result.metadata, {});
    assert.match(result.unreadable ?? '', /nests \d+ levels deep/);
  });

  test('billion-laughs entities are never expanded', async () => {
    const path = await makeJpeg(tmp.path('laughs.jpg'));
    const entities = '<!ENTITY a0 "ha">' + Array.from({ length: 9 }, (_, i) => `<!ENTITY a${i + 1} "${`&a${i};`.repeat(10)}">`).join('');
    const packet = xmpPacket('<dc:title><rdf:Alt><rdf:li xml:lang="x-default">&a9;</rdf:li></rdf:Alt></dc:title>').replace(
      '<x:xmpmeta',
      `<!DOCTYPE x:xmpmeta [${entities}]>\n<x:xmpmeta`,
    );
    await writeXmpBlock(path, packet);
    const started = Date.now();
    const { metadata } = await readMetadata(path);
    assert.ok(Date.now() - started < 2000);
    assert.ok(String(metadata.title ?? '').length < 100, 'no expansion');
  });

  test('a 10 MB XMP packet is read', async () => {
    const path = await tmp.copy('ExifTool.tif');
    await writeXmpBlock(
      path,
      xmpPacket(`<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Huge</rdf:li></rdf:Alt></dc:title>
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">${'x'.repeat(10 * 1024 * 1024)}</rdf:li></rdf:Alt></dc:description>`),
    );
    const { metadata } = await readMetadata(path);
    assert.equal(metadata.title, 'Huge');
  });
});

describe('reading helpers', () => {
  test('exifDateToIso keeps the precision it is given', () => {
    assert.equal(exifDateToIso('2004'), '2004');
    assert.equal(exifDateToIso('2004:00:00'), '2004');
    assert.equal(exifDateToIso('2004:02'), '2004-02');
    assert.equal(exifDateToIso('2004:02:26'), '2004-02-26');
    assert.equal(exifDateToIso('2004:02:26 09:36:46'), '2004-02-26T09:36:46');
    assert.equal(exifDateToIso('2004:02:26 09:36:46.5+0100'), '2004-02-26T09:36:46.5+01:00');
    assert.equal(exifDateToIso('2004:02:26 09:36Z'), '2004-02-26T09:36:00Z');
    assert.equal(exifDateToIso('next tuesday'), 'next tuesday');
  });

  test('readMetadataMany reads a batch in order through the shared pool', async () => {
    const names = ['IPTC.jpg', 'XMP.jpg', 'MWG.jpg', 'Photoshop.psd', 'PNG.png'];
    const results = await readMetadataMany(names.map(fixture), { concurrency: 3 });
    assert.equal(results.length, names.length);
    assert.equal(results[0]!.metadata.title, 'Test IPTC picture');
    assert.equal(results[3]!.metadata.title, 'Test Picture');
    assert.equal(results[4]!.mimeType, 'image/png');
  });
});
