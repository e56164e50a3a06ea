/**
 * Reads a file's embedded metadata into API fields, following the field table. exiftool runs
 * with the Metadata Working Group composites on (exiftool-vendored's default), so EXIF, IPTC
 * and XMP are reconciled the MWG way for the fields that have a composite; others take the
 * first non-empty tag of the field's `read` list (XMP before IIM). Problems come back as
 * warnings, never as a crash: a file exiftool cannot parse gives empty metadata and a warning.
 */
import type { Tags } from 'exiftool-vendored';
import { metadataFields, type MetadataField } from '../../shared/metadata-fields.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { getExiftool } from './exiftool.ts';

export interface ReadMetadataResult {
  metadata: AssetMetadata;
  warnings: string[];
  mimeType?: string;
}

type TagValue = unknown;

function asText(value: TagValue): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.length ? asText(value[0]) : undefined;
  if (typeof value === 'object') {
    const raw = (value as { rawValue?: unknown; toISOString?: () => string }).rawValue;
    if (typeof raw === 'string') return raw;
    return undefined;
  }
  const text = String(value).trim();
  return text === '' ? undefined : text;
}

function asList(value: TagValue): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const items = (Array.isArray(value) ? value : [value]).map(asText).filter((v): v is string => !!v);
  return items.length ? items : undefined;
}

/** ExifDateTime / ExifDate objects, or exiftool's "YYYY:MM:DD hh:mm:ss" text, as ISO 8601. */
function asDate(value: TagValue): string | undefined {
  if (value && typeof value === 'object' && 'toISOString' in value) {
    const iso = (value as { toISOString: () => string | undefined }).toISOString();
    if (iso) return iso;
  }
  const text = asText(value);
  if (!text) return undefined;
  const m = /^(\d{4})[:-](\d{2})[:-](\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(text);
  if (!m) return text;
  const [, y, mo, d, h, mi, s] = m;
  return h ? `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}` : `${y}-${mo}-${d}`;
}

function convert(field: MetadataField, value: TagValue): AssetMetadata[string] | undefined {
  switch (field.type) {
    case 'list':
      return asList(value);
    case 'date':
      return asDate(value);
    case 'integer': {
      const n = typeof value === 'number' ? value : Number(asText(value));
      return Number.isFinite(n) ? Math.trunc(n) : undefined;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      const text = asText(value)?.toLowerCase();
      return text === 'true' ? true : text === 'false' ? false : undefined;
    }
    default:
      return asText(value);
  }
}

/** Maps exiftool tags (as exiftool-vendored returns them, ungrouped) to API fields. */
export function tagsToMetadata(tags: Tags | Record<string, unknown>): AssetMetadata {
  const source = tags as Record<string, unknown>;
  const metadata: AssetMetadata = {};
  for (const field of metadataFields) {
    for (const tag of field.read) {
      const value = convert(field, source[tag]);
      if (value !== undefined) {
        metadata[field.field] = value;
        break;
      }
    }
  }
  return metadata;
}

export async function readMetadata(path: string): Promise<ReadMetadataResult> {
  try {
    const tags = await getExiftool().read(path);
    const warnings = [...(tags.errors ?? []), ...(tags.warnings ?? [])].map(String);
    return { metadata: tagsToMetadata(tags), warnings, mimeType: tags.MIMEType };
  } catch (error) {
    return { metadata: {}, warnings: [`metadata could not be read: ${(error as Error).message}`] };
  }
}
