/**
 * Moving a file from one metadata profile to another (an import from a server that keeps, say,
 * the photographer in IPTC SpecialInstructions): the file is read with the origin's profile,
 * so every field keeps the origin's meaning, and written with ours, so each value ends up
 * where this server looks for it; a tag the origin used for one field and we use for another
 * is rewritten with our field's value (or cleared). Fields we have no place for are returned
 * as `unmapped` (the raw XMP packet, stored per version, keeps them as they were).
 */
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { mapMetadata, type MetadataProfile } from './profile.ts';
import { readMetadata } from './read.ts';
import { writeMetadata } from './write.ts';

export interface RemapResult {
  /** The metadata as read with the origin's profile, in this server's fields. */
  metadata: AssetMetadata;
  unmapped: AssetMetadata;
  /** The fields rewritten. */
  changed: string[];
  warnings: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Rewrites `path` (a copy) from profile `from` to profile `to`. */
export async function remapFileMetadata(path: string, from: MetadataProfile, to: MetadataProfile): Promise<RemapResult> {
  const origin = await readMetadata(path, { profile: from });
  const { metadata, unmapped } = mapMetadata(origin.metadata, from, to);
  const ours = await readMetadata(path, { profile: to });
  const change: AssetMetadata = {};
  for (const field of to.fields) {
    const wanted = metadata[field.field];
    if (!same(wanted, ours.metadata[field.field])) change[field.field] = wanted ?? null;
  }
  const warnings = [...origin.warnings];
  if (Object.keys(change).length) warnings.push(...(await writeMetadata(path, change, { profile: to })).warnings);
  return { metadata, unmapped, changed: Object.keys(change), warnings };
}
