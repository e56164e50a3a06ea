/**
 * Every metadata tag of a file, and the difference between two such readings: how tests
 * prove that a write changed only what it meant to, and how preserve.ts reports what it
 * restored. Tags are keyed `Group1:Name` (`IFD0:Artist`, `XMP-dc:Title`, `IPTC:By-line`), a tag
 * found twice in one group as `Name#2`; structures as JSON (`-struct`), values not
 * print-converted (`-n`). Binary values compare by exiftool's "(Binary data N bytes ...)"
 * summary. Unknown tags (`-u`) are left out: exiftool decodes some of them (Google HDR+ maker
 * notes) differently when the same file is read twice by one process.
 */
import { resolve } from 'node:path';
import { groupsOf, parseExiftoolJson, runExiftool, tagName } from './exiftool.ts';

/** Groups (family 0 or 1) that describe the file on disk or exiftool itself, not the picture's metadata. */
export const NON_METADATA_GROUPS: readonly string[] = Object.freeze(['ExifTool', 'System', 'File', 'Composite']);

/** Tags that locate data inside the file: they move whenever anything before them grows. */
export function isLayoutTag(key: string): boolean {
  return /(Offsets?|Start|ByteCounts)(#\d+)?$/.test(key);
}

export type TagMap = Record<string, unknown>;

export interface ReadAllTagsResult {
  tags: TagMap;
  /** The family 0 group of each key (`MakerNotes` for `Canon:...`). */
  family0: Record<string, string>;
  /** Whether the file has a comment (a JPEG COM segment: exiftool's `File:Comment`, left out of `tags`). */
  comment: boolean;
  errors: string[];
}

/**
 * All tags of a file (maker notes included), minus `NON_METADATA_GROUPS`. Read with `-use MWG`
 * like every other read: once a pool process has loaded the MWG module it ignores metadata in
 * non-standard places for good, so reading without it would depend on the process's history.
 */
export async function readAllTags(path: string, extraArgs: readonly string[] = []): Promise<ReadAllTagsResult> {
  const out = await runExiftool(['-j', '-G0:1', '-a', '-n', '-struct', '-use', 'MWG', ...extraArgs, resolve(path)]);
  const tags: TagMap = {};
  const family0: Record<string, string> = {};
  let members: Array<[string, unknown]>;
  try {
    members = parseExiftoolJson(out.stdout)[0] ?? [];
  } catch {
    return { tags: {}, family0: {}, comment: false, errors: out.errors.length ? out.errors : ['no exiftool output'] };
  }
  let comment = false;
  for (const [grouped, value] of members) {
    if (grouped === 'File:Comment') comment = true;
    const groups = groupsOf(grouped);
    if (grouped === 'SourceFile' || groups.some((g) => NON_METADATA_GROUPS.includes(g))) continue;
    const base = `${groups[groups.length - 1]}:${tagName(grouped)}`;
    let key = base;
    for (let n = 2; key in tags; n++) key = `${base}#${n}`;
    tags[key] = value;
    family0[key] = groups[0]!;
  }
  return { tags, family0, comment, errors: out.errors };
}

export interface TagDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

/** Tags only in `after`, only in `before`, and in both with different values. */
export function diffTags(before: TagMap, after: TagMap): TagDiff {
  const diff: TagDiff = { added: [], removed: [], changed: [] };
  for (const key of Object.keys(before)) {
    if (!(key in after)) diff.removed.push(key);
    else if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) diff.changed.push(key);
  }
  for (const key of Object.keys(after)) if (!(key in before)) diff.added.push(key);
  return diff;
}

/** Every tag name the diff mentions. */
export function diffKeys(diff: TagDiff): string[] {
  return [...diff.added, ...diff.removed, ...diff.changed].sort();
}
