/**
 * Writes API metadata fields into a file: XMP always, IPTC IIM only where the file already
 * has IIM (values cut to the IIM length limits; XMP keeps the full value), EXIF for the few
 * fields MWG reconciles from EXIF first (so a stale EXIF value cannot win on the next read).
 * The file is changed in place: callers write into a copy, never into a stored original.
 */
import type { WriteTags } from 'exiftool-vendored';
import { ProtocolError } from '../../shared/errors.ts';
import { getMetadataField, type MetadataField } from '../../shared/metadata-fields.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { getExiftool } from './exiftool.ts';

/** IIM tag name of a field, from the table's "2:80 By-line" form. */
function iimTag(field: MetadataField): string | undefined {
  const match = field.iim ? /^\d+:\d+ ([A-Za-z-]+)$/.exec(field.iim) : null;
  return match ? `IPTC:${match[1]}` : undefined;
}

function truncateBytes(value: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(value);
  if (bytes.length <= maxBytes) return value;
  let cut = new TextDecoder().decode(bytes.slice(0, maxBytes));
  // A multi-byte character cut in half decodes as U+FFFD: drop it.
  while (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return cut;
}

function normalise(field: MetadataField, value: AssetMetadata[string]): unknown {
  if (value === null || value === undefined || value === '') return null; // deletes the tag
  switch (field.type) {
    case 'list':
      if (!Array.isArray(value) && typeof value !== 'string') break;
      return (Array.isArray(value) ? value : [value]).map(String);
    case 'integer':
      if (typeof value === 'number' && Number.isInteger(value)) return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    default:
      if (typeof value === 'string') return value;
  }
  throw new ProtocolError('ERR_VALIDATION', `metadata field "${field.field}" must be a ${field.type}`);
}

/** Checks a metadata change against the field table (unknown fields, wrong shapes). */
export function validateMetadataChange(change: AssetMetadata): void {
  for (const [name, value] of Object.entries(change)) {
    const field = getMetadataField(name);
    if (!field) throw new ProtocolError('ERR_VALIDATION', `unknown metadata field "${name}"`);
    normalise(field, value);
  }
}

export async function writeMetadata(path: string, change: AssetMetadata): Promise<void> {
  validateMetadataChange(change);
  const exiftool = getExiftool();
  const iptc = await exiftool.readRaw(path, { readArgs: ['-IPTC:All', '-G'] });
  const hasIim = Object.keys(iptc).some((k) => k.startsWith('IPTC:'));
  const tags: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(change)) {
    const field = getMetadataField(name)!;
    const value = normalise(field, raw);
    tags[field.exiftool] = value;
    if (field.exif) tags[`EXIF:${field.exif}`] = Array.isArray(value) ? value.join('; ') : value;
    const iim = iimTag(field);
    if (hasIim && iim && field.iimMaxLength) {
      const limit = field.iimMaxLength;
      tags[iim] = Array.isArray(value)
        ? value.map((v) => truncateBytes(String(v), limit))
        : typeof value === 'string'
          ? truncateBytes(value, limit)
          : value;
    }
  }
  if (hasIim) tags['IPTC:CodedCharacterSet'] = 'UTF8';
  await exiftool.write(path, tags as WriteTags);
}
