/**
 * The Metadata Working Group reconciliation rules (MWG Guidelines 2.0, §5), as ExifTool's
 * MWG module implements them, for any field that may be stored in EXIF, IPTC IIM and XMP:
 *
 *   1. a non-blank EXIF value wins (only for the fields MWG reads from EXIF);
 *   2. otherwise XMP wins when the file has no IIM, or when it has XMP and the IPTC digest
 *      stored by the last MWG-aware writer is missing or equals the digest of the current IIM;
 *   3. otherwise IIM wins, except that an IIM value cut at the IIM length limit is replaced by
 *      the XMP value it is the start of.
 *
 * One deliberate difference: when the digest does not match and the file has no IIM value
 * for a field, ExifTool yields nothing while this yields the XMP value (the MWG text's "use
 * XMP when IIM lacks the property").
 */

export type IptcDigestState =
  /** The file has no IIM. */
  | 'no-iim'
  /** IIM without a stored digest: no MWG writer touched it; XMP is trusted where present. */
  | 'no-digest'
  /** The stored digest matches the IIM: XMP and IIM were written together. */
  | 'in-sync'
  /** IIM changed after the digest was stored (an IIM-only tool edited it): IIM wins. */
  | 'out-of-sync';

export type MetadataSource = 'exif' | 'iim' | 'xmp';

/** The digest state from exiftool's `File:CurrentIPTCDigest` and `Photoshop:IPTCDigest`. */
export function iptcDigestState(current: unknown, stored: unknown): IptcDigestState {
  if (typeof current !== 'string' || !current) return 'no-iim';
  if (typeof stored !== 'string' || !stored) return 'no-digest';
  return current.toLowerCase() === stored.toLowerCase() ? 'in-sync' : 'out-of-sync';
}

/** A value as read: text, a list of text, or another scalar; undefined when absent. */
export type Candidate = string | number | boolean | string[] | undefined;

export interface Candidates {
  exif?: Candidate;
  iim?: Candidate;
  xmp?: Candidate;
}

/** Whether a value counts as absent: missing, blank text (or blank date parts), an empty list. */
export function isBlank(value: Candidate): boolean {
  if (value === undefined) return true;
  if (typeof value === 'string') return /^[\s:]*$/.test(value);
  if (Array.isArray(value)) return value.length === 0 || value.every((v) => /^\s*$/.test(v));
  return false;
}

const byteLength = (s: string) => new TextEncoder().encode(s).length;

/**
 * The XMP value when `iim` is it cut at `limit` bytes (ExifTool compares at exactly the limit;
 * writers that cut at a character boundary stop up to three bytes short, so those count too).
 */
export function recoverTruncated(iim: Candidate, xmp: Candidate, limit: number | undefined): Candidate {
  if (!limit || iim === undefined || xmp === undefined) return iim;
  if (Array.isArray(iim)) {
    const x = Array.isArray(xmp) ? xmp : [String(xmp)];
    return iim.map((v, i) => recoverTruncated(v, x[i], limit) as string);
  }
  if (typeof iim !== 'string') return iim;
  const full = Array.isArray(xmp) ? xmp[0] : xmp;
  if (typeof full !== 'string') return iim;
  const length = byteLength(iim);
  if (length <= limit && length >= limit - 3 && full.length > iim.length && full.startsWith(iim)) return full;
  return iim;
}

/** Picks a field's value by the MWG rules; undefined when no source has one. */
export function reconcile(
  candidates: Candidates,
  state: IptcDigestState,
  iimMaxLength?: number,
): { value: Candidate; source: MetadataSource } | undefined {
  const { exif, iim, xmp } = candidates;
  if (!isBlank(exif)) return { value: exif, source: 'exif' };
  const hasXmp = !isBlank(xmp);
  const hasIim = !isBlank(iim);
  if (hasXmp && (state === 'no-iim' || state === 'no-digest' || state === 'in-sync' || !hasIim)) {
    return { value: xmp, source: 'xmp' };
  }
  if (hasIim) return { value: recoverTruncated(iim, xmp, iimMaxLength), source: 'iim' };
  return undefined;
}
