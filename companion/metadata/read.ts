/**
 * Reads a file's embedded metadata into API fields, following a metadata profile (the core
 * field table unless told otherwise) and the Metadata Working Group rules (mwg.ts): one
 * exiftool call per file through the shared pool, asking only for the tags the profile
 * names, group-qualified, so a value is never taken from the wrong place.
 *
 * Reading is lenient: problems come back as `warnings`, never as a crash. A file exiftool
 * cannot parse gives empty metadata and a warning; IIM text that is not valid UTF-8 although
 * the file says so is read as Latin-1 with a warning; a file whose XMP would stall exiftool
 * (see xmp-packet.ts) is not given to it at all.
 */
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { groupsOf, readGroupedTags, tagName, type GroupedTags } from './exiftool.ts';
import { iptcDigestState, isBlank, reconcile, type Candidate, type IptcDigestState, type MetadataSource } from './mwg.ts';
import { CORE_PROFILE, fieldTags, type MetadataProfile, type ProfileField } from './profile.ts';
import { findXmpHazards, type XmpScan } from './xmp-packet.ts';

export interface ReadMetadataOptions {
  profile?: MetadataProfile;
  /** The file's `scanXmp` (xmp-packet.ts), when the caller has read it already for its packet. */
  xmpScan?: Promise<XmpScan>;
}

export interface IimState {
  /** The digest comparison that decides between XMP and IIM. */
  digest: IptcDigestState;
  /** `IPTC:CodedCharacterSet` as exiftool reports it (`UTF8` when declared). */
  charset?: string;
}

export interface ReadMetadataResult {
  metadata: AssetMetadata;
  warnings: string[];
  mimeType?: string;
  /** Where each field's value was taken from. */
  sources: Record<string, MetadataSource | 'custom'>;
  iim: IimState;
  /** The group-qualified tags read (what write.ts needs to know what the file has). */
  tags: GroupedTags;
  /** Set when the file's metadata could not be read at all (and must not be written either). */
  unreadable?: string;
}

const EXTRA_TAGS = [
  'File:MIMEType',
  'File:CurrentIPTCDigest',
  'Photoshop:IPTCDigest',
  'IPTC:CodedCharacterSet',
  // Parts of the EXIF date a write must keep in step with DateTimeOriginal.
  'EXIF:SubSecTimeOriginal',
  'EXIF:OffsetTimeOriginal',
];

/** Families asked for whole: exiftool looks up every tag named on its command line, which costs more than printing a family. */
const WHOLE_FAMILIES = ['XMP', 'IPTC', 'EXIF'];

const requestCache = new WeakMap<MetadataProfile, string[]>();

/** The exiftool arguments that read every tag a profile needs. */
export function readArguments(profile: MetadataProfile): string[] {
  let args = requestCache.get(profile);
  if (!args) {
    const tags = new Set<string>(WHOLE_FAMILIES.map((f) => `${f}:all`));
    const covered = (tag: string) => /^(XMP-[^:]+|IPTC|EXIF):/.test(tag);
    for (const tag of EXTRA_TAGS) if (!covered(tag)) tags.add(tag);
    for (const field of profile.fields) for (const tag of fieldTags(field)) if (!covered(tag)) tags.add(tag);
    args = [...tags].map((t) => `-${t}`);
    requestCache.set(profile, args);
  }
  return args;
}

/** Tags by lower-case name, for looking many up in one reading. */
type TagIndex = Map<string, Array<{ key: string; groups: string[]; value: unknown }>>;

function indexTags(tags: GroupedTags): TagIndex {
  const index: TagIndex = new Map();
  for (const [key, value] of Object.entries(tags)) {
    const name = tagName(key).toLowerCase();
    const list = index.get(name) ?? [];
    list.push({ key, groups: groupsOf(key).map((g) => g.toLowerCase()), value });
    index.set(name, list);
  }
  return index;
}

const latin1 = new TextDecoder('windows-1252');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** exiftool's `base64:` form of text that is not valid UTF-8, decoded as Latin-1. */
function decodeText(value: string, key: string, warnings: string[]): string {
  if (!value.startsWith('base64:')) return value;
  const bytes = Buffer.from(value.slice(7), 'base64');
  try {
    return strictUtf8.decode(bytes);
  } catch {
    warnings.push(`${key} is not valid UTF-8: read as Latin-1`);
    return latin1.decode(bytes);
  }
}

/** The value of the first key matching `tag` (`Group:Name`, family 0 or 1). */
function valueOf(tags: TagIndex, tag: string, warnings: string[]): Candidate {
  const colon = tag.lastIndexOf(':');
  const group = tag.slice(0, colon).toLowerCase();
  for (const { key, groups, value: raw } of tags.get(tag.slice(colon + 1).toLowerCase()) ?? []) {
    if (colon !== -1 && !groups.includes(group)) continue;
    if (raw === null || raw === undefined) continue;
    if (Array.isArray(raw)) {
      const list = raw.map((v) => (typeof v === 'string' ? decodeText(v, key, warnings) : typeof v === 'object' ? JSON.stringify(v) : String(v)));
      return list;
    }
    if (typeof raw === 'string') return decodeText(raw, key, warnings);
    if (typeof raw === 'number' || typeof raw === 'boolean') return raw;
    return JSON.stringify(raw);
  }
  return undefined;
}

function firstPresent(tags: TagIndex, list: readonly string[] | undefined, warnings: string[]): Candidate {
  for (const tag of list ?? []) {
    const value = valueOf(tags, tag, warnings);
    if (!isBlank(value)) return /DateTimeOriginal$/.test(tag) ? withSubSeconds(tags, tag, value as string) : value;
  }
  return undefined;
}

/** An EXIF date-time with its sub-seconds and offset tags, as ExifTool's SubSecDateTimeOriginal composes them. */
function withSubSeconds(tags: TagIndex, tag: string, value: string): string {
  const group = tag.slice(0, tag.lastIndexOf(':'));
  const subSec = valueOf(tags, `${group}:SubSecTimeOriginal`, []);
  const offset = valueOf(tags, `${group}:OffsetTimeOriginal`, []);
  let out = String(value).trim();
  if (subSec !== undefined && /^\d+$/.test(String(subSec).trim()) && !/\.\d/.test(out)) out += `.${String(subSec).trim()}`;
  if (typeof offset === 'string' && /^[+-]\d{2}:\d{2}$/.test(offset.trim()) && !/[+-]\d{2}:?\d{2}$|Z$/.test(out)) out += offset.trim();
  return out;
}

/** IIM date ("YYYY:MM:DD") and time ("hh:mm:ss+hh:mm") as one exiftool date-time. */
function iimDate(tags: TagIndex, list: readonly string[], warnings: string[]): Candidate {
  const date = valueOf(tags, list[0]!, warnings);
  if (typeof date !== 'string' || isBlank(date)) return undefined;
  const time = list[1] ? valueOf(tags, list[1], warnings) : undefined;
  return typeof time === 'string' && !isBlank(time) ? `${date} ${time}` : date;
}

const asText = (v: Candidate): string | undefined => {
  if (Array.isArray(v)) return v.find((x) => x.trim() !== '')?.trim();
  if (v === undefined) return undefined;
  const text = String(v).trim();
  return text === '' ? undefined : text;
};

/**
 * An exiftool date ("YYYY:MM:DD hh:mm:ss.sss+hh:mm", any tail missing) as ISO 8601 with the
 * precision it has ("2004", "2004-02", "2004-02-26", "2004-02-26T09:36:46+01:00").
 */
export function exifDateToIso(text: string): string {
  const m = /^(\d{4})(?:[:-](\d{2}))?(?:[:-](\d{2}))?(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return text.trim();
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (!mo || mo === '00') return y!;
  if (!d || d === '00') return `${y}-${mo}`;
  if (!h) return `${y}-${mo}-${d}`;
  const z = zone ? (zone === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`) : '';
  return `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${frac ?? ''}${z}`;
}

function convert(field: ProfileField, value: Candidate): AssetMetadata[string] | undefined {
  switch (field.type) {
    case 'list': {
      if (value === undefined) return undefined;
      const list = (Array.isArray(value) ? value : [String(value)]).map((v) => v.trim()).filter(Boolean);
      return list.length ? list : undefined;
    }
    case 'date': {
      const text = asText(value);
      return text ? exifDateToIso(text) : undefined;
    }
    case 'integer': {
      const n = typeof value === 'number' ? value : Number(asText(value));
      return Number.isFinite(n) ? Math.trunc(n) : undefined;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      const text = asText(value)?.toLowerCase();
      return text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : undefined;
    }
    default:
      return asText(value);
  }
}

/** Maps group-qualified tags (as `readGroupedTags` returns them) to API fields. */
export function tagsToMetadata(
  grouped: GroupedTags,
  profile: MetadataProfile = CORE_PROFILE,
): { metadata: AssetMetadata; sources: Record<string, MetadataSource | 'custom'>; iim: IimState; warnings: string[] } {
  const warnings: string[] = [];
  const tags = indexTags(grouped);
  const digest = iptcDigestState(valueOf(tags, 'File:CurrentIPTCDigest', warnings), valueOf(tags, 'Photoshop:IPTCDigest', warnings));
  const charset = asText(valueOf(tags, 'IPTC:CodedCharacterSet', warnings));
  const metadata: AssetMetadata = {};
  const sources: Record<string, MetadataSource | 'custom'> = {};
  for (const field of profile.fields) {
    let picked: { value: Candidate; source: MetadataSource | 'custom' } | undefined;
    if (field.custom) {
      const value = firstPresent(tags, fieldTags(field), warnings);
      if (!isBlank(value)) picked = { value, source: 'custom' };
    } else {
      const iim = field.read.iim
        ? field.type === 'date'
          ? iimDate(tags, field.read.iim, warnings)
          : firstPresent(tags, field.read.iim, warnings)
        : undefined;
      picked = reconcile(
        { exif: firstPresent(tags, field.read.exif, warnings), iim, xmp: firstPresent(tags, field.read.xmp, warnings) },
        digest,
        field.iimMaxLength,
      );
    }
    if (!picked) continue;
    const value = convert(field, picked.value);
    if (value === undefined) continue;
    metadata[field.field] = value;
    sources[field.field] = picked.source;
  }
  return { metadata, sources, iim: charset ? { digest, charset: normaliseCharset(charset) } : { digest }, warnings: [...new Set(warnings)] };
}

function normaliseCharset(value: string): string {
  return value === '\u001b%G' || /^utf-?8$/i.test(value) ? 'UTF8' : value;
}

/** Reads one file's metadata (see the module comment). */
export async function readMetadata(path: string, options: ReadMetadataOptions = {}): Promise<ReadMetadataResult> {
  const profile = options.profile ?? CORE_PROFILE;
  const empty = (why: string): ReadMetadataResult => ({
    metadata: {},
    warnings: [`metadata not read: ${why}`],
    sources: {},
    iim: { digest: 'no-iim' },
    tags: {},
    unreadable: why,
  });
  try {
    const { hazards, jpeg } = await findXmpHazards(path, options.xmpScan);
    if (hazards.length) return empty(hazards.join('; '));
    // -fast2 skips maker notes and trailers: safe for JPEG only (GIF keeps XMP after the pixels).
    const read = await readGroupedTags(path, [...(jpeg ? ['-fast2'] : []), '-use', 'MWG', ...readArguments(profile)]);
    const mapped = tagsToMetadata(read.tags, profile);
    const warnings = [...read.errors.map((e) => `exiftool: ${e}`), ...read.warnings, ...mapped.warnings];
    const mimeType = read.tags['File:MIMEType'];
    const result: ReadMetadataResult = { ...mapped, warnings, tags: read.tags };
    if (typeof mimeType === 'string') result.mimeType = mimeType;
    return result;
  } catch (error) {
    return empty((error as Error).message);
  }
}

/**
 * Reads many files through the shared pool, `concurrency` at a time (default: enough to keep
 * every exiftool process busy), results in the order of `paths`.
 */
export async function readMetadataMany(
  paths: readonly string[],
  options: ReadMetadataOptions & { concurrency?: number } = {},
): Promise<ReadMetadataResult[]> {
  const results: ReadMetadataResult[] = new Array(paths.length);
  const concurrency = Math.max(1, options.concurrency ?? 16);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const at = next++;
      results[at] = await readMetadata(paths[at]!, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
  return results;
}
