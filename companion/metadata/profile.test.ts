import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProtocolError } from '../../shared/errors.ts';
import { metadataFields, METADATA_PROFILE_NAME } from '../../shared/metadata-fields.ts';
import { MetadataProfileDocument } from '../../shared/schemas/discovery.ts';
import { checkSchema } from '../../shared/validate.ts';
import { exiftool, scratch } from '../../test/helpers/metadata.ts';
import { endExiftool, pickTag, readGroupedTags } from './exiftool.ts';
import {
  buildMetadataProfile,
  buildProfileDocument,
  CORE_PROFILE,
  loadMetadataProfile,
  mapMetadata,
  METADATA_PROFILE_FILE,
  profileFromDocument,
} from './profile.ts';
import { readMetadata } from './read.ts';
import { remapFileMetadata } from './remap.ts';
import { writeMetadata } from './write.ts';

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

/** A newsroom that keeps the photographer in IIM SpecialInstructions, and an assignment of its own. */
const newsroom = buildMetadataProfile({
  profile: 'newsroom.example/1',
  custom: [
    { field: 'creator', label: 'Photographer', type: 'list', exiftool: 'IPTC:SpecialInstructions' },
    { field: 'assignment', label: 'Assignment', type: 'text', exiftool: 'XMP-xmpBJ:JobRefName' },
  ],
});

const isConfigError = (e: unknown) => isProtocolError(e, 'ERR_CONFIG_INVALID');

describe('the field table', () => {
  test('covers the fields the issue lists, each mapped to XMP and a group-qualified tag', () => {
    const names = metadataFields.map((f) => f.field);
    for (const name of [
      'creator', 'creatorJobTitle', 'title', 'description', 'descriptionWriter', 'keywords', 'headline', 'copyrightNotice',
      'creditLine', 'source', 'usageTerms', 'webStatement', 'rightsMarked', 'instructions', 'jobId', 'dateCreated', 'city',
      'sublocation', 'state', 'country', 'countryCode', 'rating', 'label', 'licensor', 'imageSupplier', 'licenseEndDate',
      'digitalSourceType', 'registryId',
    ]) {
      assert.ok(names.includes(name), name);
    }
    for (const field of metadataFields) {
      assert.ok(field.read.xmp.includes(field.exiftool), `${field.field}: its exiftool tag is one it reads`);
      assert.match(field.exiftool, /^XMP-[A-Za-z]+:[A-Za-z]+$/, field.field);
      if (field.iimMaxLength) assert.ok(field.read.iim?.length, `${field.field}: a limit needs a dataset`);
      for (const tag of [...(field.read.iim ?? []), ...(field.read.exif ?? [])]) assert.match(tag, /^(IPTC|EXIF|Composite):/, tag);
    }
  });

  test('the IIM limits are those of IIM 4.2', () => {
    const limit = (name: string) => metadataFields.find((f) => f.field === name)?.iimMaxLength;
    assert.deepEqual(
      ['creator', 'title', 'keywords', 'copyrightNotice', 'headline', 'description', 'city', 'country', 'countryCode'].map(limit),
      [32, 64, 64, 128, 256, 2000, 32, 64, 3],
    );
  });
});

describe('profiles', () => {
  test('the core profile document is valid and publishes no custom mappings', () => {
    const doc = buildProfileDocument(CORE_PROFILE);
    assert.equal(doc.profile, METADATA_PROFILE_NAME);
    assert.deepEqual(doc.custom, []);
    assert.equal(doc.fields.length, metadataFields.length);
    assert.ok(checkSchema(MetadataProfileDocument, doc).ok);
    assert.ok(!('read' in doc.fields[0]!), 'engine details stay private');
  });

  test('a custom mapping moves a field and takes its tag from the core field that had it', () => {
    const creator = newsroom.field('creator')!;
    assert.equal(creator.custom, true);
    assert.equal(creator.exiftool, 'IPTC:SpecialInstructions');
    assert.equal(creator.iim, '2:40 SpecialInstructions');
    const instructions = newsroom.field('instructions')!;
    assert.deepEqual(instructions.read.xmp, ['XMP-photoshop:Instructions']);
    assert.equal(instructions.read.iim, undefined);
    assert.equal(instructions.iim, undefined);
    assert.equal(newsroom.field('assignment')?.type, 'text');
    const doc = buildProfileDocument(newsroom);
    assert.equal(doc.profile, 'newsroom.example/1');
    assert.deepEqual(
      doc.custom.map((c) => [c.field, c.exiftool]),
      [
        ['creator', 'IPTC:SpecialInstructions'],
        ['assignment', 'XMP-xmpBJ:JobRefName'],
      ],
    );
    assert.ok(checkSchema(MetadataProfileDocument, doc).ok);
    // Another server rebuilds the same profile from the document.
    const rebuilt = profileFromDocument(doc);
    assert.deepEqual(buildProfileDocument(rebuilt), doc);
  });

  test('bad custom mappings are refused with ERR_CONFIG_INVALID', () => {
    const bad: unknown[] = [
      { custom: 'x' },
      { custom: [{ field: 'x y', exiftool: 'IPTC:City' }] },
      { custom: [{ field: 'x', exiftool: 'City' }] },
      { custom: [{ field: 'x', exiftool: 'IPTC:City -o /etc/passwd' }] },
      { custom: [{ field: 'x', exiftool: 'File:FileName' }] },
      { custom: [{ field: 'x', exiftool: 'IPTC:City', type: 'blob' }] },
      { custom: [{ field: 'x', exiftool: 'IPTC:City' }, { field: 'x', exiftool: 'IPTC:Source' }] },
      { custom: [{ field: 'x', exiftool: 'IPTC:City' }, { field: 'y', exiftool: 'iptc:city' }] },
      { profile: '', custom: [] },
    ];
    for (const config of bad) assert.throws(() => buildMetadataProfile(config as never), isConfigError, JSON.stringify(config));
  });

  test('loadMetadataProfile reads <data>/metadata-profile.json once, else the core profile', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imagine-profile-'));
    try {
      assert.equal(await loadMetadataProfile(join(dir, 'none')), CORE_PROFILE);
      await writeFile(join(dir, METADATA_PROFILE_FILE), JSON.stringify({ profile: 'p/1', custom: [{ field: 'creator', exiftool: 'IPTC:SpecialInstructions' }] }));
      const profile = await loadMetadataProfile(dir);
      assert.equal(profile.name, 'p/1');
      assert.equal(await loadMetadataProfile(dir), profile, 'cached');
      const broken = join(dir, 'broken');
      await (await import('node:fs/promises')).mkdir(broken);
      await writeFile(join(broken, METADATA_PROFILE_FILE), '{"profile": "x", "extra": 1}');
      await assert.rejects(loadMetadataProfile(broken), isConfigError);
      await writeFile(join(broken, METADATA_PROFILE_FILE), '{not json');
      await assert.rejects(loadMetadataProfile(broken), isConfigError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('mapMetadata keeps meaning by field name and hands back what the target cannot hold', () => {
    const { metadata, unmapped } = mapMetadata({ creator: ['Jane'], assignment: 'A-12', title: 'T' }, newsroom, CORE_PROFILE);
    assert.deepEqual(metadata, { creator: ['Jane'], title: 'T' });
    assert.deepEqual(unmapped, { assignment: 'A-12' });
    const text = buildMetadataProfile({ custom: [{ field: 'creator', type: 'text', exiftool: 'IPTC:SpecialInstructions' }] });
    assert.deepEqual(mapMetadata({ creator: ['A', 'B'] }, CORE_PROFILE, text).metadata, { creator: 'A; B' });
  });
});

describe('reading and writing follow the profile', () => {
  test('a custom field is read from and written to its own tag only', async () => {
    const path = await tmp.copy('IPTC.jpg'); // SpecialInstructions: "What instructions"
    assert.deepEqual((await readMetadata(path, { profile: newsroom })).metadata.creator, ['What instructions']);
    await writeMetadata(path, { creator: ['Jane Doe'], assignment: 'Budget 2024', instructions: 'Embargo until noon' }, { profile: newsroom });
    const read = await readGroupedTags(path, ['-IPTC:SpecialInstructions', '-IPTC:By-line', '-XMP-dc:Creator', '-XMP-photoshop:Instructions', '-XMP-xmpBJ:JobRefName']);
    assert.equal(pickTag(read.tags, 'IPTC:SpecialInstructions'), 'Jane Doe');
    assert.equal(pickTag(read.tags, 'IPTC:By-line'), 'Phil Harvey', 'the core creator tags are left alone');
    assert.equal(pickTag(read.tags, 'XMP-dc:Creator'), undefined);
    assert.equal(pickTag(read.tags, 'XMP-photoshop:Instructions'), 'Embargo until noon');
    const { metadata } = await readMetadata(path, { profile: newsroom });
    assert.deepEqual([metadata.creator, metadata.assignment, metadata.instructions], [['Jane Doe'], 'Budget 2024', 'Embargo until noon']);
  });

  test('a custom IIM field creates IIM (UTF-8, digest in step) in a file that had none', async () => {
    const { makeJpeg } = await import('../../test/helpers/metadata.ts');
    const path = await makeJpeg(tmp.path('plain.jpg'));
    await writeMetadata(path, { creator: ['Zoë'] }, { profile: newsroom });
    const read = await readGroupedTags(path, ['-IPTC:SpecialInstructions', '-IPTC:CodedCharacterSet']);
    assert.equal(pickTag(read.tags, 'IPTC:SpecialInstructions'), 'Zoë');
    assert.equal(pickTag(read.tags, 'IPTC:CodedCharacterSet'), '\u001b%G');
    const after = await readMetadata(path, { profile: newsroom });
    assert.deepEqual(after.metadata.creator, ['Zoë']);
    assert.equal(after.iim.digest, 'in-sync');
  });

  test("a file from a server with another profile keeps the origin's meaning", async () => {
    const path = await tmp.copy('IPTC.jpg');
    await exiftool('-overwrite_original', '-IPTC:SpecialInstructions=Jane Doe', '-XMP-xmpBJ:JobRefName=Budget 2024', path);
    const result = await remapFileMetadata(path, newsroom, CORE_PROFILE);
    assert.deepEqual(result.unmapped, { assignment: 'Budget 2024' });
    assert.ok(result.changed.includes('creator') && result.changed.includes('instructions'));
    const { metadata } = await readMetadata(path);
    assert.deepEqual(metadata.creator, ['Jane Doe'], 'the photographer, where this server keeps creators');
    assert.equal(metadata.instructions, undefined, 'the name is no longer read as instructions');
    assert.equal(metadata.title, 'Test IPTC picture', 'other fields as they were');
    const read = await readGroupedTags(path, ['-XMP-xmpBJ:JobRefName']);
    assert.equal(pickTag(read.tags, 'XMP-xmpBJ:JobRefName'), 'Budget 2024', 'the origin tag itself is kept');
  });
});
