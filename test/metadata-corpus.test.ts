// Every file of the ExifTool corpus (test/fixtures/exiftool: JPEG, TIFF, PNG, WebP, GIF, PSD, HEIC,
// DNG and camera raw, JPEG 2000, JPEG XL, PDF, SVG, XMP sidecars) goes through
// read → write a change → preserve, and a save by an editor that drops IPTC, XMP properties and
// EXIF → preserve. Full tag diffs (every group exiftool reads, maker notes included) prove that
// nothing but the intended fields, and the document bookkeeping that goes with a new version,
// changed; field-level reads prove the values mean what they meant.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { isProtocolError } from '../shared/errors.ts';
import { endExiftool, runExiftool } from '../companion/metadata/exiftool.ts';
import { preserve } from '../companion/metadata/preserve.ts';
import { readMetadata } from '../companion/metadata/read.ts';
import { diffKeys, diffTags, isLayoutTag, readAllTags, type TagMap } from '../companion/metadata/tag-diff.ts';
import { writeMetadata } from '../companion/metadata/write.ts';
import { corpusFiles, fixture, scratch, sha256File } from './helpers/metadata.ts';

/** Files exiftool cannot write: SVG, and JPEG XL with Brotli-compressed metadata (no Brotli module here). */
const UNWRITABLE = new Set(['XMP.svg', 'JXL2.jxl']);
const CHANGE = { title: 'Corpus title ✓ — ünïcödé', keywords: ['imagine', 'corpus ✓'] };
const BASE = { versionId: 'v1', uri: 'imagine://library.example.org/images/corpus@v1' };
const EXIF_GROUPS = new Set(['IFD0', 'ExifIFD', 'GPS', 'InteropIFD', 'IFD1', 'SubIFD']);

/** What a new version may change besides the fields: document bookkeeping, derived values. */
function isBookkeeping(key: string): boolean {
  return (
    isLayoutTag(key) ||
    key.startsWith('XMP-xmpMM:') ||
    ['XMP-xmp:MetadataDate', 'XMP-x:XMPToolkit', 'XMP-xmpNote:HasExtendedXMP', 'XMP-photoshop:DocumentAncestors', 'Photoshop:IPTCDigest'].includes(key) ||
    // Re-encoding Latin-1 IIM as UTF-8 declares it in the envelope record.
    key === 'IPTC:CodedCharacterSet' ||
    key === 'IPTC:EnvelopeRecordVersion' ||
    // A bare JPEG XL codestream is wrapped in an ISO BMFF container to hold XMP.
    /^Jpeg2000:(MajorBrand|MinorVersion|CompatibleBrands)$/.test(key)
  );
}

/** Whether `key` (Group1:Name) is one of the tags a write assigned (`XMP-dc:Title-x-default`, `EXIF:Artist`...). */
function assigned(key: string, tags: readonly string[]): boolean {
  const [group, name] = key.replace(/#\d+$/, '').split(':') as [string, string];
  return tags.some((tag) => {
    const [g, n] = tag.replace(/\+$/, '').replace(/-x-default$/, '').split(':') as [string, string];
    return n === name && (g === group || (g === 'EXIF' && EXIF_GROUPS.has(group)));
  });
}

function unexpected(before: TagMap, after: TagMap, allowed: readonly string[]): string[] {
  return diffKeys(diffTags(before, after)).filter((k) => !isBookkeeping(k) && !assigned(k, allowed));
}

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch('imagine-corpus-');
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

describe('the corpus: read → write a change → preserve', async () => {
  const names = await corpusFiles();

  test('has the 67 files of ExifTool t/images', () => {
    assert.equal(names.length, 67);
  });

  for (const name of names) {
    test(name, async () => {
      const sourceHash = await sha256File(fixture(name));
      const original = await tmp.copy(name);
      const read = await readMetadata(original);
      assert.ok(Array.isArray(read.warnings));
      assert.equal(read.unreadable, undefined, `${name}: ${read.unreadable}`);
      const tagsO = (await readAllTags(original)).tags;

      // Write a change into a copy.
      const edited = tmp.path(name);
      await copyFile(original, edited);
      let written;
      try {
        written = await writeMetadata(edited, CHANGE);
      } catch (error) {
        assert.ok(UNWRITABLE.has(name), `${name}: ${(error as Error).message}`);
        assert.ok(isProtocolError(error, 'ERR_UNSUPPORTED_MEDIA_TYPE'));
        assert.equal(await sha256File(edited), sourceHash, 'a refused write leaves the file as it was');
        return;
      }
      assert.ok(!UNWRITABLE.has(name), `${name} was expected to be refused`);
      assert.deepEqual(written.warnings.filter((w) => /reads back/.test(w)), [], name);
      const tagsE = (await readAllTags(edited)).tags;
      assert.deepEqual(unexpected(tagsO, tagsE, written.tags), [], `${name}: the write changed only its fields`);
      const readE = await readMetadata(edited);
      assert.deepEqual(readE.metadata, { ...read.metadata, ...CHANGE }, `${name}: field values after the write`);
      assert.ok(readE.iim.digest !== 'out-of-sync', `${name}: IPTC digest left out of date`);

      // An editor drops IPTC, XMP properties and EXIF on save, and makes a new instance.
      const saved = tmp.path(name);
      await copyFile(edited, saved);
      const drop = await runExiftool([
        '-overwrite_original',
        '-m',
        '-IPTC:all=',
        '-XMP-dc:Creator=',
        '-XMP-dc:Rights=',
        '-XMP-photoshop:Headline=',
        '-EXIF:Artist=',
        '-EXIF:Copyright=',
        '-XMP-xmpMM:InstanceID=xmp.iid:editor-save',
        saved,
      ]);
      assert.deepEqual(drop.errors, [], name);

      // preserve() on the write, then on the editor's save.
      await preserve(original, edited, { intended: ['title', 'keywords'], base: BASE });
      const tagsP = (await readAllTags(edited)).tags;
      assert.deepEqual(unexpected(tagsE, tagsP, []), [], `${name}: preserve on an intact file changes bookkeeping only`);
      assert.deepEqual((await readMetadata(edited)).metadata, readE.metadata, `${name}: field values after preserve`);

      await preserve(original, saved, { intended: ['title', 'keywords'], base: BASE });
      const tagsS = (await readAllTags(saved)).tags;
      assert.deepEqual(unexpected(tagsO, tagsS, written.tags), [], `${name}: after the editor's save, only the intended fields differ from the original`);
      assert.deepEqual((await readMetadata(saved)).metadata, readE.metadata, `${name}: field values restored`);
      assert.equal(tagsS['XMP-xmpMM:InstanceID'], 'xmp.iid:editor-save');
      assert.equal((tagsS['XMP-xmpMM:DerivedFrom'] as Record<string, string>).FilePath, BASE.uri);

      assert.equal(await sha256File(fixture(name)), sourceHash, 'the corpus file itself is never modified');
    });
  }
});
