/**
 * Writes API metadata fields into a file, following a metadata profile:
 *
 * - XMP always (the field's `exiftool` tag, and its other XMP tags where the file has them);
 * - EXIF where the file already has the field's EXIF tag (MWG reads EXIF first, so a stale
 *   EXIF value would otherwise win the next read), and `mirrors` where present;
 * - IPTC IIM only where the file already has IIM: values cut to the IIM limits in bytes (at a
 *   character boundary; XMP keeps the full value and MWG readers restore it), dates into
 *   DateCreated + TimeCreated. IIM in Latin-1 is re-encoded as UTF-8 when a new value needs
 *   it (all datasets rewritten, CodedCharacterSet set). The IPTC digest is then set to the new
 *   IIM so MWG readers know XMP and IIM agree; when it was out of date (an IIM-only tool edited
 *   the file after the last MWG writer) the IIM values that were winning are first copied into
 *   XMP, so no field changes meaning.
 *
 * The file at `path` is changed in place, atomically (exiftool writes a new file and renames
 * it): callers write into a copy, never into a stored original. A file exiftool cannot write
 * fails with ERR_UNSUPPORTED_MEDIA_TYPE and is left as it was.
 */
import { ProtocolError } from '../../shared/errors.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { assignment, keyMatches, pickTag, readGroupedTags, runExiftool, WRITE_ARGS, type GroupedTags, type TagValue } from './exiftool.ts';
import { CORE_PROFILE, type MetadataProfile, type ProfileField } from './profile.ts';
import { exifDateToIso, readMetadata, type ReadMetadataResult } from './read.ts';

export interface WriteMetadataOptions {
  profile?: MetadataProfile;
}

export interface WriteMetadataResult {
  warnings: string[];
  /** The tags assigned, in order (deletions included). */
  tags: string[];
}

type Value = AssetMetadata[string];

/** `2004`, `2004-02`, `2004-02-26`, `2004-02-26T09:36`, `...:46`, `...:46.5`, `...Z` / `...+01:00`. */
const ISO_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

interface DateParts {
  y: string;
  mo?: string;
  d?: string;
  time?: { h: string; mi: string; s: string; frac?: string; zone?: string };
}

function parseIsoDate(text: string): DateParts | undefined {
  const m = ISO_DATE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (mo && (+mo < 1 || +mo > 12)) return undefined;
  if (d && (+d < 1 || +d > 31)) return undefined;
  if (h && (+h > 23 || +mi! > 59 || +(s ?? 0) > 59)) return undefined;
  const parts: DateParts = { y: y! };
  if (mo) parts.mo = mo;
  if (d) parts.d = d;
  if (h) parts.time = { h, mi: mi!, s: s ?? '00', ...(frac ? { frac } : {}), ...(zone ? { zone: zone === 'Z' ? '+00:00' : zone } : {}) };
  return parts;
}

function fail(field: ProfileField, what: string): never {
  throw new ProtocolError('ERR_VALIDATION', `metadata field "${field.field}" must be ${what}`);
}

/** The value to write, checked against the field's type; null deletes the field. */
function normalise(field: ProfileField, value: Value | undefined): string | string[] | number | boolean | null {
  if (value === null || value === undefined || value === '') return null;
  switch (field.type) {
    case 'list': {
      if (typeof value === 'string') return [value];
      if (!Array.isArray(value)) fail(field, 'a list of text');
      const list = value.filter((v) => v !== '');
      if (list.length > 1000) fail(field, 'a list of at most 1000 items');
      return list.length ? list : null;
    }
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) fail(field, 'an integer');
      if (field.field === 'rating' && (value < -1 || value > 5)) fail(field, 'an integer from -1 to 5');
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') fail(field, 'true or false');
      return value;
    case 'date':
      if (typeof value !== 'string' || !parseIsoDate(value)) fail(field, 'an ISO 8601 date (2024, 2024-05, 2024-05-01 or 2024-05-01T12:30:00+02:00)');
      return value;
    default:
      if (typeof value !== 'string') fail(field, 'text');
      if (value.length > 64_000) fail(field, 'at most 64,000 characters');
      return value;
  }
}

/** Checks a metadata change against a profile (unknown fields, wrong shapes). */
export function validateMetadataChange(change: AssetMetadata, profile: MetadataProfile = CORE_PROFILE): void {
  for (const [name, value] of Object.entries(change)) {
    const field = profile.field(name);
    if (!field) throw new ProtocolError('ERR_VALIDATION', `unknown metadata field "${name}"`);
    normalise(field, value);
  }
}

const CP1252_EXTRA = '€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ';

/** Whether exiftool can store `text` in IIM's default character set (Latin-1, cp1252). */
export function fitsLatin1(text: string): boolean {
  for (const c of text) {
    if (c <= '\u007f' || (c >= '\u00a0' && c <= '\u00ff') || CP1252_EXTRA.includes(c)) continue;
    return false;
  }
  return true;
}

/** Cuts `value` to at most `max` bytes (UTF-8) or characters (Latin-1), at a character boundary. */
export function truncateIim(value: string, max: number, utf8: boolean): string {
  if (!utf8) return [...value].slice(0, max).join('');
  const bytes = new TextEncoder().encode(value);
  if (bytes.length <= max) return value;
  let cut = new TextDecoder().decode(bytes.slice(0, max));
  while (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return cut;
}

const exifDate = (p: DateParts) => `${p.y}:${p.mo ?? '00'}:${p.d ?? '00'}`;
const clock = (t: NonNullable<DateParts['time']>) => `${t.h}:${t.mi}:${t.s}`;

/** The XMP form of an ISO date, with only the precision given. */
function xmpDate(p: DateParts): string {
  let out = p.y;
  if (p.mo) out += `:${p.mo}`;
  if (p.d) out += `:${p.d}`;
  if (p.time) out += ` ${clock(p.time)}${p.time.frac ? `.${p.time.frac}` : ''}${p.time.zone ?? ''}`;
  return out;
}

const has = (tags: GroupedTags, tag: string) => Object.keys(tags).some((k) => keyMatches(k, tag));

export interface WritePlan {
  /** Arguments that go before the assignments (the IIM re-encoding copy). */
  prefix: string[];
  assignments: Array<[string, TagValue | null]>;
  warnings: string[];
}

/**
 * Works out what to write for a change, given what the file has (`before`, from
 * `readMetadata`). Pure: `writeMetadata` runs the plan.
 */
export function planMetadataWrite(change: AssetMetadata, before: ReadMetadataResult, profile: MetadataProfile = CORE_PROFILE): WritePlan {
  const tags = before.tags;
  const hadIim = before.iim.digest !== 'no-iim';
  const assignments: Array<[string, TagValue | null]> = [];
  const iimValues: Array<[string, TagValue | null]> = [];
  const warnings: string[] = [];
  const set = (tag: string, value: TagValue | null) => assignments.push([tag, value]);
  let utf8 = before.iim.charset === 'UTF8';

  for (const [name, raw] of Object.entries(change)) {
    const field = profile.field(name)!;
    const value = normalise(field, raw);
    const date = field.type === 'date' && typeof value === 'string' ? parseIsoDate(value)! : undefined;
    const xmpValue: TagValue | null = date ? xmpDate(date) : value;
    if (field.custom) {
      if (field.exiftool.startsWith('IPTC:')) iimValues.push([field.exiftool, date ? exifDate(date) : value]);
      else if (field.exiftool.startsWith('XMP-')) set(field.type === 'langAlt' && value !== null ? `${field.exiftool}-x-default` : field.exiftool, xmpValue);
      else set(field.exiftool, exifValue(value, date));
      continue;
    }
    // lang-alt: the default language only, so the other languages stay.
    const xmpTag = (tag: string) => (field.type === 'langAlt' && value !== null ? `${tag}-x-default` : tag);
    set(xmpTag(field.exiftool), xmpValue);
    for (const tag of field.read.xmp) if (tag !== field.exiftool && has(tags, tag)) set(xmpTag(tag), xmpValue);
    for (const tag of field.mirrors ?? []) if (has(tags, tag)) set(tag, exifValue(value, date));
    for (const tag of field.read.exif ?? []) {
      if (tag.startsWith('Composite:') || !has(tags, tag)) continue;
      if (!date) {
        set(tag, exifValue(value, date));
        continue;
      }
      // EXIF needs a full date-time: a partial date removes the EXIF one (XMP and IIM keep it).
      const time = date.d ? date.time : undefined;
      set(tag, time ? `${exifDate(date)} ${clock(time)}` : null);
      const subSec = tag.replace('DateTimeOriginal', 'SubSecTimeOriginal');
      const offset = tag.replace('DateTimeOriginal', 'OffsetTimeOriginal');
      if (time?.frac || has(tags, subSec)) set(subSec, time?.frac ?? null);
      if (time?.zone || has(tags, offset)) set(offset, time?.zone ?? null);
    }
    if (hadIim && field.read.iim) {
      if (date) {
        iimValues.push([field.read.iim[0]!, exifDate(date)]);
        if (field.read.iim[1]) iimValues.push([field.read.iim[1], date.time ? `${clock(date.time)}${date.time.zone ?? ''}` : null]);
      } else if (value === null) {
        iimValues.push([field.read.iim[0]!, null]);
      } else if (field.type === 'list' || field.type === 'text' || field.type === 'langAlt') {
        iimValues.push([field.read.iim[0]!, value as string | string[]]);
      }
    }
  }

  const prefix: string[] = [];
  if (iimValues.length) {
    const texts = iimValues.flatMap(([, v]) => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : [])) as string[];
    if (!utf8 && hadIim && texts.some((t) => !fitsLatin1(t))) {
      // Every dataset is copied onto itself so exiftool re-encodes it; the ones assigned below
      // are left out of the copy (a list copied and then assigned would hold both).
      prefix.push('-tagsFromFile', '@', '-IPTC:all', ...[...new Set(iimValues.map(([t]) => t))].map((t) => `--${t}`));
      set('IPTC:CodedCharacterSet', 'UTF8');
      warnings.push('IIM re-encoded from Latin-1 to UTF-8 to hold the new values');
      utf8 = true;
    } else if (!hadIim) {
      // A custom field creates IIM: declare UTF-8 from the start.
      set('IPTC:CodedCharacterSet', 'UTF8');
      utf8 = true;
    }
    for (const [tag, v] of iimValues) {
      const field = profile.fields.find((f) => f.read.iim?.[0] === tag || f.exiftool === tag);
      const limit = field?.read.iim?.[0] === tag || field?.custom ? field?.iimMaxLength : undefined;
      const cut = (s: string) => (limit ? truncateIim(s, limit, utf8) : s);
      const truncated = Array.isArray(v) ? v.map((s) => cut(String(s))) : typeof v === 'string' ? cut(v) : v;
      if (JSON.stringify(truncated) !== JSON.stringify(v)) warnings.push(`${tag} cut to the IIM limit of ${limit} bytes (XMP keeps the full value)`);
      set(tag, truncated);
    }
    if (before.iim.digest === 'out-of-sync') {
      const synced: string[] = [];
      for (const field of profile.fields) {
        if (field.custom || field.field in change || before.sources[field.field] !== 'iim') continue;
        const current = before.metadata[field.field];
        if (current === undefined) continue;
        const date = field.type === 'date' && typeof current === 'string' ? parseIsoDate(current) : undefined;
        set(field.exiftool, date ? xmpDate(date) : (current as TagValue));
        synced.push(field.field);
      }
      if (synced.length) warnings.push(`IIM was newer than XMP (IPTC digest out of date): XMP brought in line for ${synced.join(', ')}`);
    }
    set('Photoshop:IPTCDigest', 'new');
  }
  return { prefix, assignments, warnings };
}

function exifValue(value: string | string[] | number | boolean | null, date: DateParts | undefined): TagValue | null {
  if (value === null) return null;
  if (date) return date.time && date.d ? `${exifDate(date)} ${clock(date.time)}` : null;
  // A list (EXIF:Artist) is written as one: with MWG loaded exiftool joins it the MWG way.
  return value;
}

/** What reading a field back should give after writing `raw` (read.ts trims and normalises). */
function expectedReadBack(field: ProfileField, raw: Value): Value | undefined {
  const value = normalise(field, raw);
  if (value === null) return undefined;
  if (field.type === 'date') return exifDateToIso(xmpDate(parseIsoDate(value as string)!));
  if (typeof value === 'string') return value.trim() || undefined;
  if (Array.isArray(value)) return value.map((v) => v.trim()).filter(Boolean);
  return value;
}

const sameValue = (a: Value | undefined, b: Value | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * Runs a write plan on `path` (in place). Throws ERR_UNSUPPORTED_MEDIA_TYPE when exiftool
 * refuses; `updated` is false when exiftool found nothing to change.
 */
export async function runWritePlan(path: string, plan: Pick<WritePlan, 'prefix' | 'assignments'>): Promise<{ warnings: string[]; updated: boolean }> {
  const args = [...WRITE_ARGS, '-m', ...plan.prefix, ...plan.assignments.map(([t, v]) => assignment(t, v)), path];
  const out = await runExiftool(args);
  if (out.errors.length || /weren't updated/.test(out.stdout)) {
    throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be written into this file: ${cleanMessage(out.errors[0] ?? out.stdout)}`);
  }
  return { warnings: out.warnings.map(cleanMessage), updated: /\b[1-9]\d* image files? updated/.test(out.stdout) };
}

/** An exiftool message without its "Error:"/"Warning:" label and the file path it ends with. */
export function cleanMessage(line: string): string {
  return line.trim().replace(/^(Error|Warning):\s*/i, '').replace(/ - \/.*$/, '');
}

/**
 * Makes the stored IPTC digest equal the digest of the IIM the file now has. exiftool's
 * `IPTCDigest=new` is right for JPEG but, in TIFF-based files, computed before the IIM block
 * is padded whenever its length is not a multiple of four; so the value it reads back is
 * written instead. Returns false when the file has no IIM.
 */
export async function syncIptcDigest(path: string): Promise<boolean> {
  const read = await readGroupedTags(path, ['-File:CurrentIPTCDigest', '-Photoshop:IPTCDigest']);
  const current = pickTag(read.tags, 'File:CurrentIPTCDigest');
  if (typeof current !== 'string' || !current) return false;
  if (pickTag(read.tags, 'Photoshop:IPTCDigest') !== current) {
    await runWritePlan(path, { prefix: [], assignments: [['Photoshop:IPTCDigest', current]] });
  }
  return true;
}

/** Writes `change` into the file at `path` (see the module comment). */
export async function writeMetadata(path: string, change: AssetMetadata, options: WriteMetadataOptions = {}): Promise<WriteMetadataResult> {
  const profile = options.profile ?? CORE_PROFILE;
  validateMetadataChange(change, profile);
  const before = await readMetadata(path, { profile });
  if (before.unreadable) throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be written into this file: ${before.unreadable}`);
  const plan = planMetadataWrite(change, before, profile);
  const run = await runWritePlan(path, plan);
  if (plan.assignments.some(([tag]) => tag === 'Photoshop:IPTCDigest')) await syncIptcDigest(path);
  const warnings = [...plan.warnings, ...run.warnings];
  const after = await readMetadata(path, { profile });
  const wrong: string[] = [];
  for (const [name, raw] of Object.entries(change)) {
    const got = after.metadata[name];
    if (!sameValue(got, expectedReadBack(profile.field(name)!, raw))) wrong.push(`"${name}" reads back as ${JSON.stringify(got ?? null)}`);
  }
  if (wrong.length && !run.updated) {
    throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be written into this file: ${[...run.warnings, ...wrong].join('; ')}`);
  }
  return { warnings: [...warnings, ...wrong], tags: plan.assignments.map(([t]) => t) };
}
