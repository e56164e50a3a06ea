/**
 * The privacy filter: what guests and public clients may learn about where a picture was
 * taken. Owners and members see everything; guests and the public get the location their
 * collection allows (`full`, `country`, or `none`: the default), and never GPS unless `full`.
 *
 * Two forms, both leaving the stored original alone:
 * - `filterMetadata` over API metadata (the location fields of the profile);
 * - `writePrivateCopy(source, target)` over a file: copies it, deletes GPS and location tags
 *   wherever exiftool finds them (EXIF GPS, XMP in any namespace, IIM, QuickTime, PNG text;
 *   maker notes, C2PA manifests and other blocks that hold one go whole), then reads the copy
 *   back and refuses (ERR_FORBIDDEN, the copy removed) if GPS or a place name is still there:
 *   a file exiftool cannot clean is never served as clean.
 */
import { copyFile, rm } from 'node:fs/promises';
import { ProtocolError } from '../../shared/errors.ts';
import type { LocationPrecision } from '../../shared/metadata-fields.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { assignment, runExiftool, WRITE_ARGS, type TagValue } from './exiftool.ts';
import { CORE_PROFILE, type MetadataProfile } from './profile.ts';
import { readMetadata } from './read.ts';
import { readAllTags, type TagMap } from './tag-diff.ts';
import { cleanMessage, syncIptcDigest } from './write.ts';

/** How much location an audience may see. */
export type LocationDisclosure = 'full' | 'country' | 'none';

export interface PrivacyPolicy {
  location: LocationDisclosure;
}

/** Who is asking, as far as privacy goes. */
export type Audience = 'owner' | 'member' | 'guest' | 'public';

/** A collection's privacy settings: what guests (signed in, not members) and the public see. */
export interface CollectionPrivacy {
  guests: PrivacyPolicy;
  public: PrivacyPolicy;
}

export const FULL_DISCLOSURE: PrivacyPolicy = Object.freeze({ location: 'full' });

/** Default for every collection: guests and the public see no location at all. */
export const DEFAULT_COLLECTION_PRIVACY: CollectionPrivacy = Object.freeze({
  guests: Object.freeze({ location: 'none' }),
  public: Object.freeze({ location: 'none' }),
}) as CollectionPrivacy;

/** The policy for an audience under a collection's settings (defaults filled in). */
export function privacyPolicyFor(audience: Audience, settings: Partial<CollectionPrivacy> = {}): PrivacyPolicy {
  if (audience === 'owner' || audience === 'member') return FULL_DISCLOSURE;
  const merged = { ...DEFAULT_COLLECTION_PRIVACY, ...settings };
  return audience === 'guest' ? merged.guests : merged.public;
}

const RANK: Record<LocationDisclosure, number> = { none: 0, country: 1, full: 2 };

/**
 * The policy for an asset in several collections: the most restrictive of theirs (a picture in
 * a collection that hides location never shows it through another). No collection: the default.
 */
export function assetPrivacyPolicy(audience: Audience, collections: Array<Partial<CollectionPrivacy> | undefined>): PrivacyPolicy {
  if (audience === 'owner' || audience === 'member') return FULL_DISCLOSURE;
  if (collections.length === 0) return privacyPolicyFor(audience);
  return collections
    .map((settings) => privacyPolicyFor(audience, settings ?? {}))
    .reduce((a, b) => (RANK[b.location] < RANK[a.location] ? b : a));
}

const hidden = (precision: LocationPrecision, policy: PrivacyPolicy) =>
  policy.location === 'none' || (policy.location === 'country' && precision !== 'country');

/** API metadata without the location fields the policy hides (a new object). */
export function filterMetadata(metadata: AssetMetadata, policy: PrivacyPolicy, profile: MetadataProfile = CORE_PROFILE): AssetMetadata {
  if (policy.location === 'full') return metadata;
  const out: AssetMetadata = {};
  for (const [name, value] of Object.entries(metadata)) {
    const precision = profile.field(name)?.location;
    if (precision && hidden(precision, policy)) continue;
    out[name] = value;
  }
  return out;
}

const GEO = /GPS|Latitude|Longitude|GeoLocation|Geotag/i;
const PLACE = /^(City|\w+City|Sub-?location|Location|Location(Created|Shown)\w*|\w*Address\w*|Province-?State|State)$/;
const COUNTRY = /^(Country\w*|\w*CountryCode|\w*CountryName|Country-Primary\w*)$/;
/** Families whose tags are deleted one by one; elsewhere the whole group goes. */
const TAG_BY_TAG = new Set(['EXIF', 'XMP', 'IPTC', 'QuickTime', 'PNG']);

/** Whether a tag (`Group1:Name`) tells more location than the policy allows. */
export function isPrivateTag(key: string, policy: PrivacyPolicy): boolean {
  if (policy.location === 'full') return false;
  const name = key.slice(key.indexOf(':') + 1).replace(/#\d+$/, '');
  if (GEO.test(name) || PLACE.test(name)) return true;
  return policy.location === 'none' && COUNTRY.test(name);
}

function privateKeys(tags: TagMap, policy: PrivacyPolicy): string[] {
  return Object.keys(tags).filter((key) => isPrivateTag(key, policy));
}

export interface PrivateCopyResult {
  /** Tags removed from the copy. */
  removed: string[];
  warnings: string[];
}

/**
 * Copies `source` to `target` without the location the policy hides (see the module
 * comment). `source` is only read.
 */
export async function writePrivateCopy(source: string, target: string, policy: PrivacyPolicy): Promise<PrivateCopyResult> {
  await copyFile(source, target);
  if (policy.location === 'full') return { removed: [], warnings: [] };
  try {
    const before = await readAllTags(target);
    const keys = privateKeys(before.tags, policy);
    if (!keys.length) return { removed: [], warnings: [] };
    const iimBefore = await readMetadata(target);
    const deletions: Array<[string, TagValue | null]> = [];
    const blocks = new Set<string>();
    for (const key of keys) {
      const family = before.family0[key]!;
      const group = key.slice(0, key.indexOf(':'));
      if (family === 'MakerNotes' || family === 'JUMBF') blocks.add(`${family}:all`);
      else if (family === 'EXIF' && group === 'GPS') blocks.add('GPS:all');
      else if (!TAG_BY_TAG.has(family)) blocks.add(`${group}:all`);
      else deletions.push([key.replace(/#\d+$/, ''), null]);
    }
    const iimTouched = keys.some((k) => k.startsWith('IPTC:'));
    if (iimTouched && (iimBefore.iim.digest === 'in-sync' || iimBefore.iim.digest === 'no-digest')) {
      deletions.push(['Photoshop:IPTCDigest', 'new']);
    }
    const args = [...WRITE_ARGS, '-m', ...[...blocks].map((b) => `-${b}=`), ...deletions.map(([t, v]) => assignment(t, v)), target];
    const out = await runExiftool(args);
    if (out.errors.length) throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `location cannot be removed: ${cleanMessage(out.errors[0]!)}`);
    if (deletions.some(([tag]) => tag === 'Photoshop:IPTCDigest')) await syncIptcDigest(target);
    const after = await readAllTags(target);
    const left = privateKeys(after.tags, policy);
    if (left.length) throw new ProtocolError('ERR_FORBIDDEN', `location cannot be removed from this file (${left.slice(0, 5).join(', ')})`);
    return { removed: keys, warnings: out.warnings.map(cleanMessage) };
  } catch (error) {
    await rm(target, { force: true });
    throw error;
  }
}
