/**
 * The rights summary of an asset, from its embedded metadata: copyright, usage terms, licence
 * end date, and the two flags policy acts on (do-not-distribute, licence expired).
 */
import type { AssetMetadata, Rights } from '../../shared/schemas/asset.ts';

const DO_NOT_DISTRIBUTE = /\bdo[\s-]+not[\s-]+distribute\b/i;

function text(value: AssetMetadata[string] | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.join('; ');
  return undefined;
}

export function isDoNotDistribute(metadata: AssetMetadata): boolean {
  return DO_NOT_DISTRIBUTE.test(text(metadata.usageTerms) ?? '');
}

/** End of the licence in ms since the epoch (end of that day, UTC), or undefined. */
export function licenseEndTime(metadata: AssetMetadata): number | undefined {
  const value = text(metadata.licenseEndDate);
  if (!value) return undefined;
  const day = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T23:59:59.999Z` : value;
  const time = Date.parse(day);
  return Number.isFinite(time) ? time : undefined;
}

export function rightsSummary(metadata: AssetMetadata, now = Date.now()): Rights {
  const rights: Rights = { doNotDistribute: isDoNotDistribute(metadata), expired: false };
  const copyright = text(metadata.copyrightNotice);
  const usage = text(metadata.usageTerms);
  const web = text(metadata.webStatement);
  const end = text(metadata.licenseEndDate);
  if (copyright) rights.copyrightNotice = copyright;
  if (usage) rights.usageTerms = usage;
  if (web) rights.webStatement = web;
  if (end) rights.licenseEndDate = end;
  const endTime = licenseEndTime(metadata);
  rights.expired = endTime !== undefined && endTime < now;
  return rights;
}
