import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../shared/errors.ts';
import { fixture, scratch, sha256File } from '../../test/helpers/metadata.ts';
import { endExiftool } from './exiftool.ts';
import { DEFAULT_COLLECTION_PRIVACY, filterMetadata, isPrivateTag, privacyPolicyFor, writePrivateCopy } from './privacy.ts';
import { readMetadata } from './read.ts';
import { readAllTags } from './tag-diff.ts';

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

const located = { title: 'Harbour', city: 'Kingston', sublocation: 'Pier 4', state: 'Ontario', country: 'Canada', countryCode: 'CA', creator: ['Ann'] };
const GEO_OR_PLACE = /GPS|Latitude|Longitude|City|Sub-?location|Province|State$|Location/;

describe('privacy policy', () => {
  test('owners and members see everything; guests and the public what the collection allows (none by default)', () => {
    assert.equal(privacyPolicyFor('owner').location, 'full');
    assert.equal(privacyPolicyFor('member', { guests: { location: 'none' } }).location, 'full');
    assert.equal(privacyPolicyFor('guest').location, DEFAULT_COLLECTION_PRIVACY.guests.location);
    assert.equal(privacyPolicyFor('public').location, 'none');
    assert.equal(privacyPolicyFor('public', { public: { location: 'country' } }).location, 'country');
    assert.equal(privacyPolicyFor('guest', { public: { location: 'full' } }).location, 'none');
  });

  test('filterMetadata drops the location fields the policy hides, in a new object', () => {
    assert.equal(filterMetadata(located, { location: 'full' }), located);
    assert.deepEqual(filterMetadata(located, { location: 'none' }), { title: 'Harbour', creator: ['Ann'] });
    assert.deepEqual(filterMetadata(located, { location: 'country' }), { title: 'Harbour', country: 'Canada', countryCode: 'CA', creator: ['Ann'] });
    assert.equal(located.city, 'Kingston', 'the input is untouched');
  });

  test('isPrivateTag: GPS and place names anywhere, not look-alikes', () => {
    const none = { location: 'none' } as const;
    for (const key of ['GPS:GPSLatitude', 'XMP-exif:GPSLongitude', 'IPTC:City', 'XMP-iptcExt:LocationCreated', 'Pentax:HometownCity', 'XMP-photoshop:State', 'IPTC:Country-PrimaryLocationName', 'XMP-iptcCore:CountryCode', 'JSON:Location']) {
      assert.ok(isPrivateTag(key, none), key);
    }
    for (const key of ['ExifIFD:SubjectLocation', 'XMP-ph:TesterState', 'Photoshop:GlobalAltitude', 'XMP-dc:Title', 'Pentax:BodyBatteryState']) {
      assert.ok(!isPrivateTag(key, none), key);
    }
    assert.ok(!isPrivateTag('IPTC:Country-PrimaryLocationName', { location: 'country' }));
    assert.ok(!isPrivateTag('GPS:GPSLatitude', { location: 'full' }));
  });
});

describe('writePrivateCopy', () => {
  test('GPS and place names leave the copy; the original is never touched', async () => {
    for (const name of ['GPS.jpg', 'Apple.jpg', 'PhotoMechanic.jpg', 'XMP7.xmp', 'Pentax.jpg', 'ExifTool.jpg']) {
      const before = await sha256File(fixture(name));
      const target = tmp.path(name);
      const { removed } = await writePrivateCopy(fixture(name), target, { location: 'none' });
      assert.ok(removed.length > 0, name);
      assert.equal(await sha256File(fixture(name)), before, `${name}: original untouched`);
      const left = Object.keys((await readAllTags(target)).tags).filter((k) => GEO_OR_PLACE.test(k.split(':')[1]!) && isPrivateTag(k, { location: 'none' }));
      assert.deepEqual(left, [], name);
    }
  });

  test('everything else stays, and the IPTC digest stays in step', async () => {
    const target = tmp.path('gps.jpg');
    await writePrivateCopy(fixture('GPS.jpg'), target, { location: 'none' });
    const [before, after] = [await readMetadata(fixture('GPS.jpg')), await readMetadata(target)];
    assert.deepEqual(after.metadata, filterMetadata(before.metadata, { location: 'none' }));
    assert.equal(after.iim.digest, 'in-sync');
  });

  test("'country' keeps the country", async () => {
    const target = tmp.path('country.jpg');
    await writePrivateCopy(fixture('GPS.jpg'), target, { location: 'country' });
    const { metadata } = await readMetadata(target);
    assert.equal(metadata.city, undefined);
    assert.equal(metadata.country, 'United Kingdom');
    assert.ok(!Object.keys((await readAllTags(target)).tags).some((k) => k.startsWith('GPS:')));
  });

  test("'full' is a plain copy", async () => {
    const target = tmp.path('full.jpg');
    await writePrivateCopy(fixture('GPS.jpg'), target, { location: 'full' });
    assert.equal(await sha256File(target), await sha256File(fixture('GPS.jpg')));
  });

  test('a file whose location cannot be removed is refused, and no copy is left', async () => {
    const target = tmp.path('jp2.jp2');
    await assert.rejects(writePrivateCopy(fixture('Jpeg2000.jp2'), target, { location: 'none' }), (e) => isProtocolError(e, 'ERR_FORBIDDEN'));
    const { access } = await import('node:fs/promises');
    await assert.rejects(access(target));
  });
});
