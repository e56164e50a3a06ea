import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
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
    const { instanceId } = await preserve(original, edited, { base: BASE });
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-xmpMM:InstanceID'], instanceId, 'identity recorded with the copied namespaces');
    assert.equal((t['XMP-xmpMM:DerivedFrom'] as { VersionID?: string } | undefined)?.VersionID, 'v3');
    assert.equal(t['XMP-my:Notes'], 'n'.repeat(30_000));
    assert.equal(t['XMP-dc:Description'], 'd'.repeat(40_000));
    assert.equal(t['XMP-dc:Title'], 'Edited');
  });
});

describe('preserve: into a new file, comments, a broken packet', () => {
  test('with `output`, the edited file is only read and the result is a new file', async () => {
    const original = await makeOriginal();
    const edited = await simulatePhotoshopSave(original);
    const bytes = await readFile(edited);
    const output = tmp.path('preserved-output.jpg');
    const result = await preserve(original, edited, { base: BASE, output });
    assert.deepEqual(await readFile(edited), bytes, 'the edited file is untouched');
    const t = (await readAllTags(output)).tags;
    assert.equal(t['XMP-my:Desk'], 'Foreign desk');
    assert.equal(t['IPTC:Headline'], 'Harbour at dawn');
    assert.equal(t['XMP-xmpMM:DocumentID'], 'xmp.did:original');
    assert.equal(t['XMP-xmpMM:InstanceID'], result.instanceId);
    assert.ok(result.restored.includes('IPTC:Headline'), result.restored.join(', '));
  });

  test('an `output` that exists is refused and left alone; a failed write leaves no output', async () => {
    const original = await makeOriginal();
    const edited = await simulatePhotoshopSave(original);
    const output = tmp.path('taken.jpg');
    await writeFile(output, 'somebody else’s file');
    await assert.rejects(preserve(original, edited, { output }), { code: 'ERR_CONFLICT' });
    assert.equal(await readFile(output, 'utf8'), 'somebody else’s file');

    // Image data cut short: exiftool refuses to rewrite it.
    const whole = await readFile(edited);
    const truncated = tmp.path('truncated.jpg');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const into = tmp.path('never.jpg');
    await assert.rejects(preserve(original, truncated, { output: into }), { code: 'ERR_UNSUPPORTED_MEDIA_TYPE' });
    await assert.rejects(readFile(into), { code: 'ENOENT' });
  });

  test('a JPEG comment the editor dropped comes back; one it changed stays', async () => {
    const original = await makeJpeg(tmp.path('comment-o.jpg'));
    await exiftool('-overwrite_original', '-Comment=From the archive', original);
    const dropped = tmp.path('comment-dropped.jpg');
    await copyFile(original, dropped);
    await exiftool('-overwrite_original', '-Comment=', dropped);
    const changed = tmp.path('comment-changed.jpg');
    await copyFile(original, changed);
    await exiftool('-overwrite_original', '-Comment=Retouched', changed);
    const comment = async (path: string) => pickTag((await readGroupedTags(path, ['-File:Comment'])).tags, 'File:Comment');
    assert.equal(await comment(dropped), undefined);
    const { restored } = await preserve(original, dropped);
    await preserve(original, changed);
    assert.equal(await comment(dropped), 'From the archive');
    assert.equal(await comment(changed), 'Retouched');
    assert.ok(restored.includes('File:Comment'), restored.join(', '));
  });

  const BROKEN_PACKET =
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>image/jpeg</rdf:Description></rdf:RDF></x:xmpmeta>';

  test("an edited packet that cannot be parsed is replaced by the original's, identity recorded, with a warning", async () => {
    const original = await makeOriginal();
    const edited = await simulatePhotoshopSave(original);
    await writeXmpBlock(edited, BROKEN_PACKET);
    const result = await preserve(original, edited, { base: BASE });
    assert.ok(result.warnings.some((w) => /edited file's XMP packet cannot be parsed/.test(w)), result.warnings.join('; '));
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-my:Desk'], 'Foreign desk');
    assert.equal(t['IPTC:Headline'], 'Harbour at dawn');
    assert.equal(t['XMP-xmpMM:InstanceID'], result.instanceId);
    assert.equal(t['XMP-xmpMM:DocumentID'], 'xmp.did:original');
  });

  test('an original packet that cannot be parsed: the edited XMP stays, the rest is restored, identity recorded', async () => {
    const original = await makeOriginal();
    const edited = await simulatePhotoshopSave(original);
    await writeXmpBlock(original, BROKEN_PACKET);
    const result = await preserve(original, edited, { base: BASE });
    assert.ok(result.warnings.some((w) => /original file's XMP packet cannot be parsed/.test(w)), result.warnings.join('; '));
    const t = (await readAllTags(edited)).tags;
    assert.equal(t['XMP-xmp:CreatorTool'], 'Adobe Photoshop 25.0');
    assert.equal(t['IPTC:Headline'], 'Harbour at dawn');
    assert.equal(t['XMP-xmpMM:InstanceID'], result.instanceId);
  });
});
