/**
 * Rights warnings shown on an asset and before placing or opening it: "do not distribute" and
 * an expired licence need the user to confirm; a licence ending soon and usage terms are
 * shown for information. The server computes `doNotDistribute` and `expired` from the embedded
 * XMP (DESIGN.md §4); the licence end date is checked here too, so a panel left open past
 * midnight still warns.
 */
import type { Rights } from '../../../../shared/schemas/asset.ts';

export type RightsWarningKind = 'do-not-distribute' | 'expired' | 'expires-soon' | 'usage-terms';

export interface RightsWarning {
  kind: RightsWarningKind;
  /** `confirm`: placing needs an explicit "place anyway". */
  level: 'confirm' | 'info';
  message: string;
}

/** A licence ending within this many days is flagged. */
export const EXPIRES_SOON_DAYS = 30;
const DAY_MS = 86_400_000;

export function rightsWarnings(rights: Partial<Rights> | undefined, now: Date = new Date()): RightsWarning[] {
  if (!rights) return [];
  const out: RightsWarning[] = [];
  if (rights.doNotDistribute) {
    out.push({ kind: 'do-not-distribute', level: 'confirm', message: 'Do not distribute: this image must not leave the studio.' });
  }
  const end = parseLicenceEnd(rights.licenseEndDate);
  const expired = rights.expired === true || (end !== undefined && end.getTime() <= now.getTime());
  if (expired) {
    out.push({ kind: 'expired', level: 'confirm', message: `Licence expired${end ? ` on ${formatDay(end)}` : ''}.` });
  } else if (end !== undefined && end.getTime() - now.getTime() <= EXPIRES_SOON_DAYS * DAY_MS) {
    const days = Math.max(0, Math.ceil((end.getTime() - now.getTime()) / DAY_MS));
    out.push({ kind: 'expires-soon', level: 'info', message: `Licence ends on ${formatDay(end)} (in ${days} day${days === 1 ? '' : 's'}).` });
  }
  if (rights.usageTerms?.trim()) {
    out.push({ kind: 'usage-terms', level: 'info', message: `Usage terms: ${rights.usageTerms.trim()}` });
  }
  return out;
}

/** Whether placing or opening needs the user to confirm first. */
export function needsConfirmation(warnings: readonly RightsWarning[]): boolean {
  return warnings.some((w) => w.level === 'confirm');
}

/** A licence end: an ISO date (the end of that day, UTC) or date-time. */
function parseLicenceEnd(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const text = value.trim();
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T23:59:59.999Z` : text;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function formatDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
