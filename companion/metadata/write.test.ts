import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../shared/errors.ts';
import { exiftool, makeJpeg, scratch, sha256File, writeXmpBlock, xmpPacket } from '../../test/helpers/metadata.ts';
import { endExiftool, pickTag, readGroupedTags } from './exiftool.ts';
import { readMetadata } from './read.ts';
import { fitsLatin1, truncateIim, validateMetadataChange, writeMetadata } from './write.ts';

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

/** The tags given, as exiftool reads them now (group-qualified). */
async function tags(path: string, ...names: string[]): Promise<Record<string, unknown>> {
  const read = await readGroupedTags(path, names.map((n) => `-${n}`));
  return Object.fromEntries(names.map((n) => [n, pickTag(read.tags, n)]));
}

const isValidation = (e: unknown) => isProtocolError(e, 'ERR_VALIDATION');

describe('validateMetadataChange', () => {
  test('accepts the field types of the profile', () => {
    validateMetadataChange({ title: 'x', keywords: ['a'], creator: 'one', rating: 5, rightsMarked: false, dateCreated: '2024-05-01T12:30:00+02:00', city: null });
  });

  test('refuses unknown fields and wrong shapes', () => {
    assert.throws(() => validateMetadataChange({ notAField: 'x' }), isValidation);
    assert.throws(() => validateMetadataChange({ rating: 'five' }), isValidation);
    assert.throws(() => validateMetadataChange({ rating: 9 }), isValidation);
    assert.throws(() => validateMetadataChange({ rightsMarked: 'yes' }), isValidation);
    assert.throws(() => validateMetadataChange({ title: ['a'] }), isValidation);
    for (const date of ['2024-13-01', '2024-05-01 12:00', 'yesterday', '2024-05-01T25:00']) {
      assert.throws(() => validateMetadataChange({ dateCreated: date }), isValidation, date);
    }
  });
});

describe('IIM helpers', () => {
  test('truncateIim cuts bytes at a character boundary (UTF-8) or characters (Latin-1)', () => {
    assert.equal(truncateIim('a'.repeat(40), 32, true), 'a'.repeat(32));
    assert.equal(truncateIim('é'.repeat(20), 32, true), 'é'.repeat(16));
    assert.equal(truncateIim('aé'.repeat(20), 32, true).length, 21);
    assert.equal(truncateIim('é'.repeat(40), 32, false), 'é'.repeat(32));
  });

  test('fitsLatin1 follows cp1252', () => {
    assert.ok(fitsLatin1('Café € “quotes”'));
    assert.ok(!fitsLatin1('✓'));
    assert.ok(!fitsLatin1('東京'));
  });
});

describe('writeMetadata', () => {
  test('XMP always; IIM only where the file already has IIM', async () => {
    const plain = await makeJpeg(tmp.path('plain.jpg'));
    await writeMetadata(plain, { title: 'Plain', keywords: ['a', 'b'] });
    const read = await readGroupedTags(plain, ['-IPTC:all', '-XMP-dc:all']);
    assert.ok(!Object.keys(read.tags).some((k) => k.startsWith('IPTC')), 'no IIM created');
    assert.equal(pickTag(read.tags, 'XMP-dc:Title'), 'Plain');

    const iptc = await tmp.copy('IPTC.jpg');
    await writeMetadata(iptc, { headline: 'New headline' });
    assert.deepEqual(await tags(iptc, 'IPTC:Headline', 'XMP-photoshop:Headline'), { 'IPTC:Headline': 'New headline', 'XMP-photoshop:Headline': 'New headline' });
  });

  test('IIM values are cut to the IIM limits; XMP keeps the full value, and reads return it', async () => {
    const path = await tmp.copy('IPTC.jpg');
    const creator = 'Alexandra Konstantinopoulou-Smithson'; // 36 characters; By-line holds 32
    const keyword = 'k'.repeat(70);
    // ŝ is not Latin-1: the IIM becomes UTF-8, two bytes a character.
    const { warnings } = await writeMetadata(path, { creator: [creator], keywords: [keyword, 'short'], city: 'ŝ'.repeat(20) });
    const t = await tags(path, 'IPTC:By-line', 'XMP-dc:Creator', 'IPTC:Keywords', 'IPTC:City');
    assert.equal(t['IPTC:By-line'], creator.slice(0, 32));
    assert.equal(t['XMP-dc:Creator'], creator);
    assert.deepEqual(t['IPTC:Keywords'], ['k'.repeat(64), 'short']);
    assert.equal(t['IPTC:City'], 'ŝ'.repeat(16), 'UTF-8: 32 bytes');
    assert.ok(warnings.some((w) => /By-line cut to the IIM limit of 32/.test(w)));
    const { metadata } = await readMetadata(path);
    assert.deepEqual(metadata.creator, [creator]);
    assert.deepEqual(metadata.keywords, [keyword, 'short']);
  });

  test('the IPTC digest ends up matching the IIM, so MWG readers (exiftool too) trust it', async () => {
    const path = await tmp.copy('IPTC.jpg'); // digest out of date: IIM wins over XMP
    const before = await readMetadata(path);
    assert.equal(before.iim.digest, 'out-of-sync');
    const { warnings } = await writeMetadata(path, { title: 'A title longer than sixty-four characters, so IIM has to cut it short' });
    const after = await readMetadata(path);
    assert.equal(after.iim.digest, 'in-sync');
    assert.equal(after.metadata.title, 'A title longer than sixty-four characters, so IIM has to cut it short');
    // Every other field reads as before: what IIM said was copied into XMP first.
    for (const [field, value] of Object.entries(before.metadata)) if (field !== 'title') assert.deepEqual(after.metadata[field], value, field);
    assert.ok(warnings.some((w) => /XMP brought in line/.test(w)));
    const mwg = await readGroupedTags(path, ['-use', 'MWG', '-MWG:Creator', '-MWG:City', '-ExifTool:Warning']);
    assert.equal(pickTag(mwg.tags, 'MWG:Creator'), 'Phil Harvey');
    assert.deepEqual(mwg.warnings, [], 'no "IPTCDigest is not current" warning');
  });

  test('dates go into XMP, IIM DateCreated + TimeCreated and the EXIF date the file has', async () => {
    const path = await tmp.copy('IPTC.jpg');
    await writeMetadata(path, { dateCreated: '2024-05-01T12:30:15+02:00' });
    assert.deepEqual(await tags(path, 'XMP-photoshop:DateCreated', 'IPTC:DateCreated', 'IPTC:TimeCreated'), {
      'XMP-photoshop:DateCreated': '2024:05:01 12:30:15+02:00',
      'IPTC:DateCreated': '2024:05:01',
      'IPTC:TimeCreated': '12:30:15+02:00',
    });
    await writeMetadata(path, { dateCreated: '2024-05' });
    assert.deepEqual(await tags(path, 'XMP-photoshop:DateCreated', 'IPTC:DateCreated', 'IPTC:TimeCreated'), {
      'XMP-photoshop:DateCreated': '2024:05',
      'IPTC:DateCreated': '2024:05:00',
      'IPTC:TimeCreated': undefined,
    });
    assert.equal((await readMetadata(path)).metadata.dateCreated, '2024-05');

    const exif = await tmp.copy('MWG.jpg'); // EXIF DateTimeOriginal + SubSecTimeOriginal win on read
    await writeMetadata(exif, { dateCreated: '2024-05-01T12:30:15.25+02:00' });
    assert.deepEqual(await tags(exif, 'EXIF:DateTimeOriginal', 'EXIF:SubSecTimeOriginal', 'EXIF:OffsetTimeOriginal'), {
      'EXIF:DateTimeOriginal': '2024:05:01 12:30:15',
      'EXIF:SubSecTimeOriginal': 25,
      'EXIF:OffsetTimeOriginal': '+02:00',
    });
    assert.equal((await readMetadata(exif)).metadata.dateCreated, '2024-05-01T12:30:15.25+02:00');
  });

  test('EXIF copies the file has are kept in step (MWG reads EXIF first)', async () => {
    const path = await tmp.copy('XMP.jpg'); // EXIF Artist, ImageDescription and Copyright
    await writeMetadata(path, { creator: ['Ann', 'Bo'], description: 'New caption', copyrightNotice: '© 2024 Ann' });
    assert.deepEqual(await tags(path, 'EXIF:Artist', 'EXIF:ImageDescription', 'EXIF:Copyright'), {
      'EXIF:Artist': ['Ann', 'Bo'],
      'EXIF:ImageDescription': 'New caption',
      'EXIF:Copyright': '© 2024 Ann',
    });
    const { metadata } = await readMetadata(path);
    assert.deepEqual([metadata.creator, metadata.description, metadata.copyrightNotice], [['Ann', 'Bo'], 'New caption', '© 2024 Ann']);
  });

  test('deleting a field removes it from XMP, IIM and EXIF', async () => {
    const path = await tmp.copy('ExifTool.jpg');
    await writeMetadata(path, { creator: null, city: '' });
    const { metadata } = await readMetadata(path);
    assert.equal(metadata.creator, undefined);
    assert.equal(metadata.city, undefined);
    assert.deepEqual(await tags(path, 'IPTC:By-line', 'EXIF:Artist', 'XMP-dc:Creator'), { 'IPTC:By-line': undefined, 'EXIF:Artist': undefined, 'XMP-dc:Creator': undefined });
  });

  test('Latin-1 IIM is re-encoded as UTF-8 only when a new value needs it, keeping every dataset', async () => {
    const path = await tmp.copy('IPTC.jpg');
    await exiftool('-overwrite_original', '-IPTC:City=Montréal', path); // Latin-1 bytes, no CodedCharacterSet
    await writeMetadata(path, { headline: 'Café' }); // fits Latin-1
    assert.equal((await tags(path, 'IPTC:CodedCharacterSet'))['IPTC:CodedCharacterSet'], undefined);
    const { warnings } = await writeMetadata(path, { headline: 'Done ✓', keywords: ['un', 'deux'] });
    assert.ok(warnings.some((w) => /re-encoded/.test(w)));
    const t = await tags(path, 'IPTC:CodedCharacterSet', 'IPTC:City', 'IPTC:Headline', 'IPTC:Keywords', 'IPTC:By-line');
    assert.equal(t['IPTC:CodedCharacterSet'], '\u001b%G');
    assert.equal(t['IPTC:City'], 'Montréal');
    assert.equal(t['IPTC:Headline'], 'Done ✓');
    assert.deepEqual(t['IPTC:Keywords'], ['un', 'deux'], 'not doubled by the re-encoding copy');
    assert.equal(t['IPTC:By-line'], 'Phil Harvey');
  });

  test('lang-alt: the default language is written, other languages stay', async () => {
    const path = await makeJpeg(tmp.path('langs.jpg'));
    await writeXmpBlock(path, xmpPacket('<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Old</rdf:li><rdf:li xml:lang="de">Alt</rdf:li></rdf:Alt></dc:title>'));
    await writeMetadata(path, { title: 'New' });
    assert.deepEqual(await tags(path, 'XMP-dc:Title', 'XMP-dc:Title-de'), { 'XMP-dc:Title': 'New', 'XMP-dc:Title-de': 'Alt' });
  });

  test('rating keeps a Microsoft EXIF rating in step', async () => {
    const path = await makeJpeg(tmp.path('rated.jpg'));
    await exiftool('-overwrite_original', '-EXIF:Rating=1', path);
    await writeMetadata(path, { rating: 4 });
    assert.deepEqual(await tags(path, 'XMP-xmp:Rating', 'EXIF:Rating'), { 'XMP-xmp:Rating': 4, 'EXIF:Rating': 4 });
  });

  test('a file exiftool cannot write: ERR_UNSUPPORTED_MEDIA_TYPE, the file untouched', async () => {
    for (const name of ['XMP.svg']) {
      const path = await tmp.copy(name);
      const before = await sha256File(path);
      await assert.rejects(writeMetadata(path, { title: 'x' }), (e) => isProtocolError(e, 'ERR_UNSUPPORTED_MEDIA_TYPE'));
      assert.equal(await sha256File(path), before);
    }
  });

  test('a file whose XMP would stall exiftool is refused, untouched', async () => {
    const path = await makeJpeg(tmp.path('deep.jpg'));
    await writeXmpBlock(path, xmpPacket(`${'<dc:n rdf:parseType="Resource">'.repeat(500)}x${'</dc:n>'.repeat(500)}`));
    const before = await sha256File(path);
    await assert.rejects(writeMetadata(path, { title: 'x' }), (e) => isProtocolError(e, 'ERR_UNSUPPORTED_MEDIA_TYPE'));
    assert.equal(await sha256File(path), before);
  });
});
