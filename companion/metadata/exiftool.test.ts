import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../../test/helpers/metadata.ts';
import {
  assignment,
  encodeValue,
  endExiftool,
  exifDateTime,
  exiftoolPoolSize,
  getExiftool,
  keyMatches,
  parseExiftoolJson,
  pickTag,
  readGroupedTags,
  runExiftool,
} from './exiftool.ts';

after(endExiftool);

describe('the shared exiftool pool', () => {
  test('is sized to the machine: one process per CPU, bounded by memory and by 16', () => {
    const GiB = 1024 ** 3;
    assert.equal(exiftoolPoolSize({ cpus: 2, memoryBytes: 24 * GiB }), 2);
    assert.equal(exiftoolPoolSize({ cpus: 64, memoryBytes: 256 * GiB }), 16);
    assert.equal(exiftoolPoolSize({ cpus: 8, memoryBytes: 1 * GiB }), 2);
    assert.equal(exiftoolPoolSize({ cpus: 4, memoryBytes: 128 * 1024 * 1024 }), 1);
  });

  test('is one instance, and a new one after endExiftool()', async () => {
    const first = getExiftool();
    assert.equal(getExiftool(), first);
    await endExiftool();
    assert.ok(first.ended);
    assert.notEqual(getExiftool(), first);
  });

  test('runs any command line; errors come back as data', async () => {
    const out = await runExiftool(['-ver']);
    assert.match(out.stdout.trim(), /^\d+\.\d+$/);
    const missing = await runExiftool(['-j', '/nonexistent/file.jpg']);
    assert.ok(missing.errors.some((e) => /not found/i.test(e)));
  });

  test('refuses arguments with line breaks (argument injection)', async () => {
    await assert.rejects(runExiftool(['-XMP-dc:Title=a\n-execute']));
  });
});

describe('values and tags', () => {
  test('encodeValue escapes entities and line breaks for -E', () => {
    assert.equal(encodeValue('a & b <c>\nd'), 'a &amp; b &lt;c&gt;&#10;d');
  });

  test('assignment: text, lists, numbers, flags, structures, deletions', () => {
    assert.equal(assignment('XMP-dc:Title', 'x'), '-XMP-dc:Title=x');
    assert.equal(assignment('XMP-dc:Subject', ['a', 'b']), '-XMP-dc:Subject=a\u001fb');
    assert.equal(assignment('XMP-xmp:Rating', 3), '-XMP-xmp:Rating=3');
    assert.equal(assignment('XMP-xmpRights:Marked', true), '-XMP-xmpRights:Marked=True');
    assert.equal(assignment('XMP-xmpMM:History+', { Action: 'saved', When: 'a,b' }), '-XMP-xmpMM:History+={Action=saved,When=a|,b}');
    assert.equal(assignment('IPTC:City', null), '-IPTC:City=');
    assert.throws(() => assignment('-IPTC:City', 'x'));
    assert.throws(() => assignment('IPTC:City -o /tmp/x', 'x'));
  });

  test('exifDateTime is UTC to the second', () => {
    assert.equal(exifDateTime(new Date('2024-05-01T12:30:45.678Z')), '2024:05:01 12:30:45+00:00');
  });

  test('parseExiftoolJson keeps keys that repeat', () => {
    const parsed = parseExiftoolJson('[{"SourceFile":"a","IPTC:Keywords":["x","y"],"IPTC:Keywords":"z","N":1.5,"O":{"a":[1,{"b":"]}"}]}}]');
    assert.deepEqual(parsed, [
      [
        ['SourceFile', 'a'],
        ['IPTC:Keywords', ['x', 'y']],
        ['IPTC:Keywords', 'z'],
        ['N', 1.5],
        ['O', { a: [1, { b: ']}' }] }],
      ],
    ]);
    assert.deepEqual(parseExiftoolJson('[]'), []);
  });

  test('keyMatches: family 0 or 1 groups, case-insensitive, never language variants', () => {
    assert.ok(keyMatches('EXIF:IFD0:Artist', 'EXIF:Artist'));
    assert.ok(keyMatches('EXIF:IFD0:Artist', 'IFD0:Artist'));
    assert.ok(keyMatches('XMP:XMP-dc:Title', 'xmp-dc:title'));
    assert.ok(!keyMatches('XMP:XMP-dc:Title-de', 'XMP-dc:Title'));
    assert.ok(!keyMatches('XMP:XMP-dc:Title', 'IPTC:Title'));
  });

  test('readGroupedTags: group-qualified keys, warnings apart', async () => {
    const read = await readGroupedTags(fixture('MWG.jpg'), ['-XMP-dc:Creator', '-IPTC:By-line', '-EXIF:Artist']);
    assert.deepEqual(pickTag(read.tags, 'IPTC:By-line'), ['WRONG1of2-IPTC-Creator', 'WRONG2of2-IPTC-Creator']);
    assert.deepEqual(pickTag(read.tags, 'XMP-dc:Creator'), ['WRONG1of2-XMP-Creator', 'WRONG2of2-XMP-Creator']);
    assert.equal(pickTag(read.tags, 'EXIF:Artist'), 'RIGHT1of2-EXIF-Creator; RIGHT2of2-EXIF-Creator');
    assert.deepEqual(read.errors, []);
  });
});
