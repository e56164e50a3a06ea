/**
 * Large-document Photoshop files (PSB, version 2) through the metadata engine: read, write a
 * change, and preserve after an edit that dropped fields, the same as PSD. The file is made by
 * the test's own PSB writer (no PSB is in the corpus).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import { writePsd } from '../../test/helpers/psd.ts';
import { exiftool, scratch } from '../../test/helpers/metadata.ts';
import { endExiftool } from './exiftool.ts';
import { readMetadata } from './read.ts';
import { writeMetadata } from './write.ts';
import { preserve } from './preserve.ts';
import { diffKeys, diffTags, readAllTags } from './tag-diff.ts';

let tmp: Awaited<ReturnType<typeof scratch>>;
let psb = '';

before(async () => {
  tmp = await scratch('imagine-psb-');
  psb = tmp.path('poster.psb');
  const pixels = Buffer.alloc(40 * 30 * 3, 180);
  await writeFile(psb, writePsd({ width: 40, height: 30, mode: 3, psb: true, rle: true, pixels }));
  await exiftool('-overwrite_original', '-XMP-dc:Creator=Ines Costa', '-XMP-dc:Title=Poster', '-XMP-dc:Rights=(c) Ines', '-XMP-photoshop:Credit=Studio', psb);
  const kind = await exiftool('-s3', '-FileType', psb);
  assert.equal(kind.trim(), 'PSB', 'the writer made a real PSB');
});

after(async () => {
  await tmp?.remove();
  await endExiftool();
});

test('PSB: embedded metadata is read', async () => {
  const { metadata } = await readMetadata(psb);
  assert.deepEqual(metadata.creator, ['Ines Costa']);
  assert.equal(metadata.title, 'Poster');
});

test('PSB: a change is written, and nothing else changes', async () => {
  const target = tmp.path('changed.psb');
  await copyFile(psb, target);
  const before = (await readAllTags(target)).tags;
  await writeMetadata(target, { title: 'Poster, final' });
  assert.equal((await readMetadata(target)).metadata.title, 'Poster, final');
  const changed = diffKeys(diffTags(before, (await readAllTags(target)).tags));
  const bookkeeping = /^XMP-(dc:Title|xmp:(MetadataDate|ModifyDate)|xmpMM:|photoshop:History)|^Photoshop:IPTCDigest|^XMP-x:XMPToolkit/;
  assert.deepEqual(changed.filter((k) => !bookkeeping.test(k)), [], changed.join(', '));
});

test('PSB: preservation restores what an editor dropped', async () => {
  const edited = tmp.path('edited.psb');
  await copyFile(psb, edited);
  await exiftool('-overwrite_original', '-XMP-dc:Creator=', '-XMP-photoshop:Credit=', edited);
  assert.equal((await readMetadata(edited)).metadata.creator, undefined);
  const result = await preserve(psb, edited, { base: { versionId: 'v1', uri: 'imagine://images.example/images/a1@v1' } });
  const { metadata } = await readMetadata(edited);
  assert.deepEqual(metadata.creator, ['Ines Costa']);
  assert.equal(metadata.title, 'Poster');
  assert.ok(result.restored.length > 0);
});
