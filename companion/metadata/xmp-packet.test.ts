import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { fixture, makeJpeg, scratch, writeXmpBlock, xmpPacket } from '../../test/helpers/metadata.ts';
import { endExiftool, runExiftool } from './exiftool.ts';
import { parseXmpDocument, xmpProperties } from './xmp-merge.ts';
import { checkXmpPacket, decodeXmpText, extractXmpPacket, findXmpHazards, nestingDepth, readJpegXmp } from './xmp-packet.ts';

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

const keys = (packet: Buffer) => xmpProperties(parseXmpDocument(packet.toString('utf8'))).map((p) => p.key);

describe('extractXmpPacket', () => {
  test('JPEG: the standard packet, byte for byte what exiftool sees', async () => {
    const { packet, warnings } = await extractXmpPacket(fixture('MWG.jpg'));
    assert.deepEqual(warnings, []);
    const out = await runExiftool(['-b', '-XMP', fixture('MWG.jpg')]);
    assert.equal(packet!.toString('utf8'), out.stdout.replace(/\n$/, ''));
  });

  test('JPEG with extended XMP: both parts joined into one packet', async () => {
    const { packet, warnings } = await extractXmpPacket(fixture('ExtendedXMP.jpg'));
    assert.deepEqual(warnings, []);
    const k = keys(packet!);
    assert.ok(k.includes('http://ns.adobe.com/pdf/1.3/Author'), 'a property of the extended part');
    assert.ok(!k.some((key) => key.endsWith('HasExtendedXMP')));
    assert.match(packet!.toString('utf8'), /PhilToo/);
  });

  test('UTF-16 packets come back as UTF-8', async () => {
    const { packet } = await extractXmpPacket(fixture('XMP.jpg'));
    assert.match(packet!.toString('utf8'), /UTF-16 \(big-endian\) encoded XMP/);
    assert.equal(decodeXmpText(Buffer.from('\ufeff<a/>', 'utf16le')), '<a/>');
    assert.equal(decodeXmpText(Buffer.from('<a/>', 'utf16le')), '<a/>');
  });

  test('other formats through exiftool; an XMP sidecar is its own packet', async () => {
    for (const name of ['Photoshop.psd', 'RIFF.webp', 'DNG.dng', 'PDF.pdf', 'PNG.png', 'GIF.gif']) {
      const { packet } = await extractXmpPacket(fixture(name));
      assert.ok(packet && checkXmpPacket(packet.toString('utf8')) === undefined, name);
    }
    const sidecar = await extractXmpPacket(fixture('XMP.xmp'));
    assert.equal(sidecar.packet!.toString('utf8'), (await readFile(fixture('XMP.xmp'), 'utf8')).replace(/^\ufeff/, ''));
  });

  test('no packet: nothing, and no warning', async () => {
    const result = await extractXmpPacket(fixture('Canon.jpg'));
    assert.deepEqual(result, { warnings: [] });
  });

  test('a missing or corrupt file: a warning, never a throw', async () => {
    const missing = await extractXmpPacket(tmp.path('missing.jpg'));
    assert.equal(missing.packet, undefined);
    assert.equal(missing.warnings.length, 1);
  });

  test('extended XMP with a missing part keeps the standard packet, with a warning', async () => {
    const path = tmp.path('partial.jpg');
    const bytes = await readFile(fixture('ExtendedXMP.jpg'));
    const jpeg = readJpegXmp(bytes)!;
    assert.equal(jpeg.extended.size, 1);
    // Drop the last extended segment: find APP1 segments and cut the final extension one.
    const marker = Buffer.from('http://ns.adobe.com/xmp/extension/\0', 'latin1');
    const at = bytes.lastIndexOf(marker) - 4;
    const length = bytes.readUInt16BE(at + 2);
    await writeFile(path, Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 2 + length)]));
    const { packet, warnings } = await extractXmpPacket(path);
    assert.ok(packet);
    assert.match(warnings.join(), /missing or incomplete/);
  });
});

describe('checks', () => {
  test('checkXmpPacket: well-formed XMP passes; entities, depth and broken markup do not', () => {
    assert.equal(checkXmpPacket(xmpPacket('<dc:format>image/jpeg</dc:format>')), undefined);
    assert.match(checkXmpPacket(`<!DOCTYPE x [<!ENTITY a "b">]>${xmpPacket('')}`) ?? '', /DOCTYPE/);
    assert.match(checkXmpPacket(xmpPacket('<dc:a>'.repeat(120) + '</dc:a>'.repeat(120))) ?? '', /deeper/);
    assert.match(checkXmpPacket('<x:xmpmeta xmlns:x="adobe:ns:meta/"><a></x:xmpmeta>') ?? '', /close/);
    assert.match(checkXmpPacket('<x:xmpmeta xmlns:x="adobe:ns:meta/"/>') ?? '', /rdf:RDF/);
  });

  test('nestingDepth counts without parsing', () => {
    assert.equal(nestingDepth('<a><b/><c><d>x</d></c></a>'), 3);
    assert.equal(nestingDepth('<?xpacket?><!-- c --><a></a>'), 1);
  });

  test('findXmpHazards finds deep XMP in a JPEG and in other files', async () => {
    const deep = xmpPacket(`${'<dc:n rdf:parseType="Resource">'.repeat(300)}x${'</dc:n>'.repeat(300)}`);
    const jpeg = await makeJpeg(tmp.path('deep.jpg'));
    await writeXmpBlock(jpeg, deep);
    assert.match((await findXmpHazards(jpeg)).hazards.join(), /nests 30\d levels/);
    const tiff = tmp.path('deep.tif');
    await writeFile(tiff, Buffer.concat([await readFile(fixture('ExifTool.tif')), Buffer.from(deep)]));
    assert.equal((await findXmpHazards(tiff)).hazards.length, 1);
    assert.deepEqual(await findXmpHazards(fixture('ExtendedXMP.jpg')), { hazards: [], jpeg: true });
    assert.deepEqual(await findXmpHazards(fixture('PNG.png')), { hazards: [], jpeg: false });
  });
});
