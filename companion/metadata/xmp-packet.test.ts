import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { fixture, makeJpeg, scratch, writeXmpBlock, xmpPacket } from '../../test/helpers/metadata.ts';
import { endExiftool, runExiftool } from './exiftool.ts';
import { parseXmpDocument, xmpProperties } from './xmp-merge.ts';
import { checkXmpPacket, decodeXmpText, extractXmpPacket, findXmpHazards, nestingDepth, readJpegXmp, scanXmp } from './xmp-packet.ts';

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

  const deepPacket = () => xmpPacket(`${'<dc:n rdf:parseType="Resource">'.repeat(300)}x${'</dc:n>'.repeat(300)}`);

  test('other files are scanned in pieces: a packet across a 1 MiB boundary, one in the tail of a big file', async () => {
    const deep = Buffer.from(deepPacket());
    const across = tmp.path('across.bin');
    const head = Buffer.alloc(1024 * 1024 - 100, 0x20);
    await writeFile(across, Buffer.concat([head, deep, Buffer.alloc(1000, 0x20)]));
    assert.match((await findXmpHazards(across)).hazards.join(), /nests 30\d levels/);
    // The opening tag itself split by the boundary.
    const split = tmp.path('split.bin');
    await writeFile(split, Buffer.concat([Buffer.alloc(1024 * 1024 - 4, 0x20), deep.subarray(deep.indexOf('<x:xmpmeta'))]));
    assert.equal((await findXmpHazards(split)).hazards.length, 1);
    // Beyond the first 16 MiB: found in the last 16 MiB; in between: not scanned (as before).
    const tail = tmp.path('tail.bin');
    await writeFile(tail, Buffer.concat([Buffer.alloc(40 * 1024 * 1024, 0x20), deep]));
    assert.equal((await findXmpHazards(tail)).hazards.length, 1);
    const middle = tmp.path('middle.bin');
    await writeFile(middle, Buffer.concat([Buffer.alloc(20 * 1024 * 1024, 0x20), deep, Buffer.alloc(20 * 1024 * 1024, 0x20)]));
    assert.equal((await findXmpHazards(middle)).hazards.length, 0);
    // A packet that never ends runs to the end of its region.
    const open = tmp.path('open.bin');
    await writeFile(open, deep.subarray(0, deep.indexOf('</x:xmpmeta>')));
    assert.equal((await findXmpHazards(open)).hazards.length, 1);
  });

  test('a JPEG is read up to its image data: segments beyond the first read are followed, the pixels are not scanned', async () => {
    const base = await readFile(await makeJpeg(tmp.path('plain.jpg')));
    // Five 60 KiB APP2 segments push the XMP segment past the first 64 KiB read.
    const filler = Buffer.alloc(60 * 1024, 0x41);
    const app2 = Buffer.concat([Buffer.from([0xff, 0xe2]), Buffer.from([(filler.length + 2) >> 8, (filler.length + 2) & 0xff]), filler]);
    const xmp = Buffer.concat([Buffer.from('http://ns.adobe.com/xap/1.0/\0', 'latin1'), Buffer.from(deepPacket())]);
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1]), Buffer.from([(xmp.length + 2) >> 8, (xmp.length + 2) & 0xff]), xmp]);
    const far = tmp.path('far.jpg');
    await writeFile(far, Buffer.concat([base.subarray(0, 2), app2, app2, app2, app2, app2, app1, base.subarray(2)]));
    const scan = await scanXmp(far);
    assert.ok(scan.jpeg?.standard);
    assert.match((await findXmpHazards(far, Promise.resolve(scan))).hazards.join(), /nests 30\d levels/);
    assert.match((await extractXmpPacket(far, { scan: Promise.resolve(scan) })).packet!.toString('utf8'), /dc:n/);
    // Packet-like bytes after the start of scan (in the pixels) are not XMP.
    const after = tmp.path('after.jpg');
    await writeFile(after, Buffer.concat([base, Buffer.from(deepPacket())]));
    assert.deepEqual(await findXmpHazards(after), { hazards: [], jpeg: true });
    assert.deepEqual(await extractXmpPacket(after), { warnings: [] });
  });

  test('scanXmp of a file that cannot be read rejects; its users report it their own way', async () => {
    const scan = scanXmp(tmp.path('nothing.jpg'));
    scan.catch(() => undefined);
    await assert.rejects(findXmpHazards(tmp.path('nothing.jpg'), scan));
    const extracted = await extractXmpPacket(tmp.path('nothing.jpg'), { scan });
    assert.match(extracted.warnings.join(), /could not be read/);
  });
});
