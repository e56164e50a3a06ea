/**
 * Metadata profiles: which API field lives in which tag on this server. The core profile is
 * the field table of shared/metadata-fields.ts; a server may declare custom mappings in
 * `<data>/metadata-profile.json`, either moving a core field (a newsroom that keeps the
 * photographer in IPTC SpecialInstructions) or adding a field:
 *
 *   {
 *     "profile": "newsroom.example/1",
 *     "custom": [
 *       { "field": "creator", "label": "Photographer", "type": "list", "exiftool": "IPTC:SpecialInstructions" },
 *       { "field": "assignment", "label": "Assignment", "type": "text", "exiftool": "XMP-xmpBJ:JobRefName" }
 *     ]
 *   }
 *
 * A custom field is read from and written to exactly its `exiftool` tag (no MWG reconciling,
 * no IIM mirror). A tag a custom field claims is taken away from the core field that used it
 * (above, `instructions` keeps only XMP photoshop:Instructions); a core field left without a
 * tag leaves the profile. The profile document publishes the effective `fields` and the
 * declared `custom` list, so another server can read this server's files with this server's
 * meaning (`profileFromDocument`, `mapMetadata`, and remap.ts for files).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import {
  METADATA_PROFILE_NAME,
  metadataFields,
  toFieldMapping,
  type MetadataField,
} from '../../shared/metadata-fields.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import type { MetadataFieldMapping, MetadataProfileDocument } from '../../shared/schemas/discovery.ts';

export const METADATA_PROFILE_FILE = 'metadata-profile.json';

/** A field as a profile uses it; `custom` marks the single-tag fields of a custom mapping. */
export interface ProfileField extends MetadataField {
  custom?: boolean;
}

export interface MetadataProfile {
  name: string;
  fields: readonly ProfileField[];
  /** The custom mappings as declared (published in the profile document). */
  custom: readonly MetadataFieldMapping[];
  field(name: string): ProfileField | undefined;
}

const FIELD_NAME = /^[A-Za-z][A-Za-z0-9]{0,99}$/;
/** `Group:Name` with an exiftool family 0/1 group that can be written. */
const TAG = /^(XMP-[A-Za-z0-9_-]+|IPTC|EXIF|IFD0|ExifIFD|Photoshop):[A-Za-z][A-Za-z0-9_-]*$/;
const TYPES = new Set(['text', 'list', 'langAlt', 'date', 'integer', 'boolean']);

function makeProfile(name: string, fields: ProfileField[], custom: MetadataFieldMapping[]): MetadataProfile {
  const byName = new Map(fields.map((f) => [f.field, f]));
  return Object.freeze({
    name,
    fields: Object.freeze(fields),
    custom: Object.freeze(custom),
    field: (n: string) => byName.get(n),
  });
}

export const CORE_PROFILE: MetadataProfile = makeProfile(METADATA_PROFILE_NAME, [...metadataFields], []);

/** Every tag a field reads or writes, group-qualified. */
export function fieldTags(field: MetadataField): string[] {
  return [...(field.read.exif ?? []), ...(field.read.iim ?? []), ...field.read.xmp, ...(field.mirrors ?? [])];
}

const sameTag = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** The IIM dataset label ("2:40 SpecialInstructions") the core table gives an IPTC tag. */
function iimLabel(tag: string): { iim?: string; iimMaxLength?: number } {
  for (const field of metadataFields) {
    const at = field.read.iim?.findIndex((t) => sameTag(t, tag)) ?? -1;
    if (at === 0 && field.iim) return { iim: field.iim.split(' + ')[0], iimMaxLength: field.iimMaxLength };
  }
  return {};
}

function invalid(where: string, why: string): ProtocolError {
  return new ProtocolError('ERR_CONFIG_INVALID', `metadata profile ${where}: ${why}`);
}

function checkMapping(raw: unknown, where: string): MetadataFieldMapping {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(where, 'must be an object');
  const m = raw as Record<string, unknown>;
  if (typeof m.field !== 'string' || !FIELD_NAME.test(m.field)) throw invalid(where, '"field" must be a name of letters and digits');
  if (typeof m.exiftool !== 'string' || !TAG.test(m.exiftool)) {
    throw invalid(where, '"exiftool" must be a group-qualified writable tag such as "IPTC:SpecialInstructions" or "XMP-dc:Creator"');
  }
  if (m.type !== undefined && (typeof m.type !== 'string' || !TYPES.has(m.type))) {
    throw invalid(where, `"type" must be one of ${[...TYPES].join(', ')}`);
  }
  if (m.label !== undefined && (typeof m.label !== 'string' || m.label.length > 200)) throw invalid(where, '"label" must be text');
  for (const key of ['xmp', 'iim', 'exif'] as const) {
    if (m[key] !== undefined && (typeof m[key] !== 'string' || (m[key] as string).length > 200)) throw invalid(where, `"${key}" must be text`);
  }
  if (m.iimMaxLength !== undefined && (!Number.isInteger(m.iimMaxLength) || (m.iimMaxLength as number) < 1)) {
    throw invalid(where, '"iimMaxLength" must be a positive integer');
  }
  const core = metadataFields.find((f) => f.field === m.field);
  const isIptc = m.exiftool.startsWith('IPTC:');
  const mapping: MetadataFieldMapping = {
    field: m.field,
    label: (m.label as string | undefined) ?? core?.label ?? m.field,
    type: (m.type as MetadataFieldMapping['type'] | undefined) ?? core?.type ?? 'text',
    xmp: (m.xmp as string | undefined) ?? '',
    exiftool: m.exiftool,
    ...(isIptc ? iimLabel(m.exiftool) : {}),
  };
  if (typeof m.iim === 'string') mapping.iim = m.iim;
  if (typeof m.iimMaxLength === 'number') mapping.iimMaxLength = m.iimMaxLength;
  if (typeof m.exif === 'string') mapping.exif = m.exif;
  return mapping;
}

/** Builds a profile from a name and custom mappings (as found in the profile file or a profile document). */
export function buildMetadataProfile(config: { profile?: unknown; custom?: unknown }, where = METADATA_PROFILE_FILE): MetadataProfile {
  const custom = config.custom ?? [];
  if (!Array.isArray(custom)) throw invalid(where, '"custom" must be a list');
  if (custom.length > 200) throw invalid(where, 'at most 200 custom mappings');
  const mappings = custom.map((raw, i) => checkMapping(raw, `${where} custom[${i}]`));
  const name = config.profile ?? (mappings.length ? `${METADATA_PROFILE_NAME}+custom` : METADATA_PROFILE_NAME);
  if (typeof name !== 'string' || !name || name.length > 300) throw invalid(where, '"profile" must be a name of 1-300 characters');
  if (!mappings.length) return makeProfile(name, [...metadataFields], []);

  const seen = new Set<string>();
  for (const m of mappings) {
    if (seen.has(m.field)) throw invalid(where, `field "${m.field}" is mapped twice`);
    if (mappings.some((o) => o !== m && sameTag(o.exiftool, m.exiftool))) {
      throw invalid(where, `tag ${m.exiftool} is claimed by two custom fields`);
    }
    seen.add(m.field);
  }
  const claimed = mappings.map((m) => m.exiftool);
  const isClaimed = (tag: string) => claimed.some((c) => sameTag(c, tag));
  const fields: ProfileField[] = [];
  for (const core of metadataFields) {
    if (seen.has(core.field)) continue;
    if (!fieldTags(core).some(isClaimed)) {
      fields.push(core);
      continue;
    }
    const read = {
      exif: core.read.exif?.filter((t) => !isClaimed(t)),
      iim: core.read.iim && core.read.iim.some(isClaimed) ? undefined : core.read.iim,
      xmp: core.read.xmp.filter((t) => !isClaimed(t)),
    };
    const primary = read.xmp[0] ?? read.iim?.[0];
    if (!primary) continue;
    const narrowed: ProfileField = { ...core, exiftool: read.xmp.includes(core.exiftool) ? core.exiftool : primary, read };
    if (!read.iim) {
      delete narrowed.iim;
      delete narrowed.iimMaxLength;
    }
    if (!read.exif?.length) delete narrowed.exif;
    if (core.mirrors) narrowed.mirrors = core.mirrors.filter((t) => !isClaimed(t));
    fields.push(Object.freeze(narrowed));
  }
  for (const m of mappings) {
    const core = metadataFields.find((f) => f.field === m.field);
    const field: ProfileField = {
      ...m,
      read: m.exiftool.startsWith('XMP-') ? { xmp: [m.exiftool] } : m.exiftool.startsWith('IPTC:') ? { iim: [m.exiftool], xmp: [] } : { exif: [m.exiftool], xmp: [] },
      custom: true,
    };
    if (core?.rights) field.rights = true;
    if (core?.location) field.location = core.location;
    fields.push(Object.freeze(field));
  }
  return makeProfile(name, fields, mappings);
}

/** The profile another server publishes, for reading its files with its meaning. */
export function profileFromDocument(document: MetadataProfileDocument): MetadataProfile {
  return buildMetadataProfile({ profile: document.profile, custom: document.custom }, `of ${document.profile}`);
}

/** The document served at `/.well-known/imagine/metadata-profile`. */
export function buildProfileDocument(profile: MetadataProfile): MetadataProfileDocument {
  return {
    profile: profile.name,
    fields: profile.fields.map(toFieldMapping),
    custom: profile.custom.map((m) => ({ ...m })),
  };
}

const loaded = new Map<string, Promise<MetadataProfile>>();

/**
 * The profile of a data folder: `<data>/metadata-profile.json` when present, else the core
 * profile. Loaded once per folder; a bad file fails with ERR_CONFIG_INVALID.
 */
export function loadMetadataProfile(dataDir: string): Promise<MetadataProfile> {
  const path = join(resolve(dataDir), METADATA_PROFILE_FILE);
  let profile = loaded.get(path);
  if (!profile) {
    profile = readProfileFile(path);
    loaded.set(path, profile);
    profile.catch(() => loaded.delete(path));
  }
  return profile;
}

async function readProfileFile(path: string): Promise<MetadataProfile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return CORE_PROFILE;
    throw new ProtocolError('ERR_CONFIG_INVALID', `cannot read ${path}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError('ERR_CONFIG_INVALID', `${path} is not JSON`, { cause: error });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ProtocolError('ERR_CONFIG_INVALID', `${path} is not a JSON object`);
  const unknown = Object.keys(json).filter((k) => k !== 'profile' && k !== 'custom');
  if (unknown.length) throw new ProtocolError('ERR_CONFIG_INVALID', `${path}: unknown key "${unknown[0]}"`);
  return buildMetadataProfile(json as Record<string, unknown>, path);
}

function convertValue(value: AssetMetadata[string], to: MetadataField): AssetMetadata[string] | undefined {
  if (value === null) return null;
  if (to.type === 'list') return Array.isArray(value) ? value : [String(value)];
  if (Array.isArray(value)) return to.type === 'integer' || to.type === 'boolean' ? undefined : value.join('; ');
  if (to.type === 'integer') return typeof value === 'number' ? value : undefined;
  if (to.type === 'boolean') return typeof value === 'boolean' ? value : undefined;
  return String(value);
}

/**
 * API metadata from a server using `from`, as fields of `to`. API field names carry meaning,
 * so a field both profiles know keeps its value (converted between text and list where the
 * types differ); the rest comes back in `unmapped` for the caller to keep (the raw XMP packet
 * keeps them anyway).
 */
export function mapMetadata(
  metadata: AssetMetadata,
  from: MetadataProfile,
  to: MetadataProfile,
): { metadata: AssetMetadata; unmapped: AssetMetadata } {
  const out: AssetMetadata = {};
  const unmapped: AssetMetadata = {};
  for (const [name, value] of Object.entries(metadata)) {
    const target = to.field(name);
    const converted = target && from.field(name) ? convertValue(value, target) : undefined;
    if (converted === undefined) unmapped[name] = value;
    else out[name] = converted;
  }
  return { metadata: out, unmapped };
}
