import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { exiftool, fixture, makeJpeg, scratch, writeXmpBlock, xmpPacket } from '../../test/helpers/metadata.ts';
import { endExiftool, pickTag, readGroupedTags } from './exiftool.ts';
import { preserve } from './preserve.ts';
import { NS } from './xmp-namespaces.ts';
import { readMetadata } from './read.ts';
import { diffKeys, diffTags, readAllTags } from './tag-diff.ts';
import { writeMetadata } from './write.ts';
import { parseXmpDocument, removeProperty, serializeXmpDocument, xmpProperties } from './xmp-merge.ts';
import { extractXmpPacket } from './xmp-packet.ts';

const MY = 'http://example.com/ns/newsroom/1.0/';
const BASE = { versionId: 'v3', uri: 'imagine://photos.example.org/images/a1b2c3@v3' };

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

/** The packet of a file with every property of namespace `ns` taken out. */
async function withoutNamespace(path: string, ns: string): Promise<string> {
  const { packet } = await extractXmpPacket(path);
  const doc = parseXmpDocument(packet!.toString('utf8'));
  for (const prop of xmpProperties(doc)) if (prop.ns === ns) removeProperty(prop);
  return serializeXmpDocument(doc);
}

/**
 * An original as a newsroom keeps it: IIM and XMP in sync (digest), a custom namespace,
 * document ids and history, a bloated DocumentAncestors, an ICC profile, EXIF.
 */
async function makeOriginal(): Promise<string> {
  const path = await tmp.copy('IPTC.jpg');
  const ancestors = Array.from({ length: 300 }, (_, i) => `<rdf:li>xmp.did:ancestor-${i}</rdf:li>`).join('');
  await writeXmpBlock(
    path,
    xmpPacket(
      `<xmpMM:DocumentID>xmp.did:original</xmpMM:DocumentID>
<xmpMM:OriginalDocumentID>xmp.did:first</xmpMM:OriginalDocumentID>
<xmpMM:InstanceID>xmp.iid:original-1</xmpMM:InstanceID>
<xmpMM:History><rdf:Seq><rdf:li rdf:parseType="Resource"><stEvt:action>created</stEvt:action><stEvt:instanceID>xmp.iid:first</stEvt:instanceID><stEvt:when>2020-01-01T10:00:00Z</stEvt:when></rdf:li></rdf:Seq></xmpMM:History>
<photoshop:DocumentAncestors><rdf:Bag>${ancestors}</rdf:Bag></photoshop:DocumentAncestors>
<my:desk>Foreign desk</my:desk>
<my:assignment rdf:parseType="Resource"><my:id>A-17</my:id><my:editor>Rosa</my:editor></my:assignment>`,
      { my: MY },
    ),
  );
  await exiftool('-overwrite_original', '-tagsFromFile', fixture('XMP.jpg'), '-ICC_Profile', '-EXIF:Artist', '-EXIF:Copyright', path);
  await writeMetadata(path, { headline: 'Harbour at dawn' }); // brings XMP in line with IIM, digest in sync
  return path;
}

/** What Photoshop does on "Save As" over a file: new ids, a History event, IPTC and unknown namespaces gone. */
async function simulatePhotoshopSave(original: string): Promise<string> {
  const edited = tmp.path('edited.jpg');
  await (await import('node:fs/promises')).copyFile(original, edited);
  await writeXmpBlock(edited, await withoutNamespace(edited, MY));
  await exiftool(
    '-overwrite_original',
    '-IPTC:all=',
    '-XMP-xmpMM:DocumentID=xmp.did:photoshop-save-as',
    '-XMP-xmpMM:InstanceID=xmp.iid:photoshop-2',
    '-XMP-xmpMM:History+={Action=saved,InstanceID=xmp.iid:photoshop-2,When=2024-05-01T10:00:00Z,SoftwareAgent=Adobe Photoshop 25.0,Changed=/}',
    '-XMP-xmp:CreatorTool=Adobe Photoshop 25.0',
    '-XMP-xmp:ModifyDate=2024:05:01 10:00:00Z',
    edited,
  );
  return edited;
}

describe('preserve: a simulated Photoshop save', () => {
  let original: string;
  let edited: string;
  let before: Awaited<ReturnType<typeof readAllTags>>;
  let result: Awaited<ReturnType<typeof preserve>>;

  test('the simulation really loses things', async () => {
    original = await makeOriginal();
    edited = await simulatePhotoshopSave(original);
    before = await readAllTags(original);
    const lost = diffTags(before.tags, (await readAllTags(edited)).tags);
    assert.ok(lost.removed.some((k) => k.startsWith('IPTC:')), 'IPTC dropped');
    assert.ok(lost.removed.some((k) => k.startsWith('XMP-my:')), 'custom namespace dropped');
    result = await preserve(original, edited, { base: BASE, now: new Date('2024-05-02T08:00:00Z') });
  });

  test('is fully restored: a full tag diff shows only document bookkeeping', async () => {
    const after = await readAllTags(edited);
    const changed = diffKeys(diffTags(before.tags, after.tags));
    const bookkeeping = new Set([
      'XMP-xmpMM:InstanceID',
      'XMP-xmpMM:History',
      'XMP-xmpMM:DerivedFrom',
      'XMP-xmp:MetadataDate',
      'XMP-xmp:ModifyDate',
      'XMP-xmp:CreatorTool',
      'XMP-photoshop:DocumentAncestors',
      // The IIM datasets come back in exiftool's order: same values, another digest (still in sync, below).
      'Photoshop:IPTCDigest',
    ]);
    assert.deepEqual(changed.filter((k) => !bookkeeping.has(k)), []);
    assert.deepEqual((await readMetadata(edited)).metadata, (await readMetadata(original)).metadata);
  });

  test('custom namespace, IIM, digest and ICC profile are back', async () => {
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-my:Desk'], 'Foreign desk');
    assert.deepEqual(t['XMP-my:Assignment'], { Id: 'A-17', Editor: 'Rosa' });
    assert.equal(t['IPTC:By-line'], 'Phil Harvey');
    assert.equal((await readMetadata(original)).iim.digest, 'in-sync');
    assert.equal((await readMetadata(edited)).iim.digest, 'in-sync');
    assert.equal(t['ICC_Profile:ProfileDescription'], 'sRGB IEC61966-2.1');
    assert.ok(result.restored.some((k) => k.startsWith('IPTC:')));
  });

  test('document identity: ids kept, a new instance, DerivedFrom the base version, History appended', async () => {
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-xmpMM:DocumentID'], 'xmp.did:original', 'Save As undone');
    assert.equal(t['XMP-xmpMM:OriginalDocumentID'], 'xmp.did:first');
    assert.equal(t['XMP-xmpMM:InstanceID'], 'xmp.iid:photoshop-2', "the editor's new instance");
    assert.deepEqual(t['XMP-xmpMM:DerivedFrom'], {
      DocumentID: 'xmp.did:original',
      InstanceID: 'xmp.iid:original-1',
      OriginalDocumentID: 'xmp.did:first',
      VersionID: 'v3',
      FilePath: BASE.uri,
    });
    const history = t['XMP-xmpMM:History'] as Array<Record<string, string>>;
    assert.deepEqual(
      history.map((e) => e.Action),
      ['created', 'saved', 'saved'],
    );
    assert.equal(history[2]!.Changed, '/metadata');
    assert.equal(history[2]!.When, '2024:05:02 08:00:00+00:00');
    assert.equal(t['XMP-photoshop:DocumentAncestors'], undefined, 'bloat stripped');
  });
});

describe('preserve: what the user meant, what describes pixels', () => {
  test('with `intended`, a field changed on purpose stays and one changed behind the user is set back', async () => {
    const original = await tmp.copy('XMP.jpg');
    const edited = tmp.path('edited.jpg');
    await (await import('node:fs/promises')).copyFile(original, edited);
    await writeMetadata(edited, { title: 'New title', description: 'Tool rewrote this', creator: ['Tool'] });
    await preserve(original, edited, { intended: ['title'] });
    const [o, e] = [await readMetadata(original), await readMetadata(edited)];
    assert.equal(e.metadata.title, 'New title');
    assert.equal(e.metadata.description, o.metadata.description);
    assert.deepEqual(e.metadata.creator, o.metadata.creator);
    const t = await readGroupedTags(edited, ['-EXIF:ImageDescription', '-XMP-dc:Description']);
    assert.equal(pickTag(t.tags, 'EXIF:ImageDescription'), 'A witty caption');
    assert.equal(pickTag(t.tags, 'XMP-dc:Description'), 'UTF-16 (big-endian) encoded XMP');
  });

  test('without `intended`, changed values stay and only what was dropped comes back', async () => {
    const original = await tmp.copy('XMP.jpg');
    const edited = tmp.path('edited.jpg');
    await (await import('node:fs/promises')).copyFile(original, edited);
    await exiftool('-overwrite_original', '-XMP-dc:Description=Changed', '-XMP-photoshop:Headline=', edited);
    await preserve(original, edited);
    const { metadata } = await readMetadata(edited);
    assert.equal(metadata.headline, 'No headline');
    const t = await readGroupedTags(edited, ['-XMP-dc:Description']);
    assert.equal(pickTag(t.tags, 'XMP-dc:Description'), 'Changed');
  });

  test('orientation, pixel size and Camera Raw settings are not put back', async () => {
    const original = await makeJpeg(tmp.path('o.jpg'));
    await writeXmpBlock(
      original,
      xmpPacket('<tiff:Orientation>6</tiff:Orientation><exif:PixelXDimension>64</exif:PixelXDimension><crs:Exposure2012>+1.00</crs:Exposure2012><dc:format>image/jpeg</dc:format>', {
        tiff: NS.tiff,
        exif: NS.exif,
        crs: NS.crs,
      }),
    );
    await exiftool('-overwrite_original', '-EXIF:Orientation=6', '-n', original);
    const edited = await makeJpeg(tmp.path('e.jpg')); // the editor baked the rotation in and wrote nothing
    await preserve(original, edited);
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-dc:Format'], 'image/jpeg');
    for (const key of ['XMP-tiff:Orientation', 'XMP-exif:ExifImageWidth', 'XMP-crs:Exposure2012', 'IFD0:Orientation']) assert.equal(t[key], undefined, key);
  });

  test('a dropped ICC profile comes back only when the image data is the same', async () => {
    const original = await tmp.copy('XMP.jpg');
    const same = tmp.path('same.jpg');
    await (await import('node:fs/promises')).copyFile(original, same);
    await exiftool('-overwrite_original', '-ICC_Profile:all=', same);
    await preserve(original, same);
    assert.equal((await readAllTags(same)).tags['ICC_Profile:ProfileDescription'], 'sRGB IEC61966-2.1');

    const reencoded = tmp.path('reencoded.jpg');
    await sharp(original).jpeg({ quality: 50 }).toFile(reencoded);
    const { warnings } = await preserve(original, reencoded);
    assert.equal((await readAllTags(reencoded)).tags['ICC_Profile:ProfileDescription'], undefined);
    assert.ok(warnings.some((w) => /ICC profile/.test(w)));
  });
});

describe('preserve: large packets', () => {
  test('a JPEG whose merged XMP needs extended XMP keeps the custom namespace', async () => {
    const original = await makeJpeg(tmp.path('big-o.jpg'));
    await writeXmpBlock(original, xmpPacket(`<my:notes>${'n'.repeat(30_000)}</my:notes>`, { my: MY }));
    await exiftool('-overwrite_original', `-XMP-dc:Description=${'d'.repeat(40_000)}`, original);
    const edited = tmp.path('big-e.jpg');
    await (await import('node:fs/promises')).copyFile(original, edited);
    await exiftool('-overwrite_original', '-XMP:all=', `-XMP-dc:Description=${'d'.repeat(40_000)}`, '-XMP-dc:Title=Edited', edited);
    await preserve(original, edited);
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-my:Notes'], 'n'.repeat(30_000));
    assert.equal(t['XMP-dc:Description'], 'd'.repeat(40_000));
    assert.equal(t['XMP-dc:Title'], 'Edited');
  });
});
