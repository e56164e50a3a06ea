/**
 * Which placed links are out of date: a link is one of ours when its file is a checkout the
 * agent made (same path); it is out of date when the checkout's base version is no longer the
 * asset's current version on its server. Paths are compared the way the host's file system
 * does: Windows paths without regard to case or slash direction.
 */
import type { Checkout } from '../../../../shared/schemas/agent.ts';
import type { LinkStatus, PlacedLink } from '../../../host/types.ts';

export type LinkState = 'current' | 'out-of-date' | 'deleted' | 'unknown' | 'missing' | 'not-imagine';

export interface LinkReport {
  link: PlacedLink;
  /** The checkout this link's file came from. */
  checkout?: Checkout;
  state: LinkState;
  /** The server's current version when known. */
  currentVersion?: string;
}

/** What is known of an asset's current version: an id, `deleted`, or absent when not fetched/failed. */
export type CurrentVersions = ReadonlyMap<string, string | 'deleted'>;

export function normalisePath(path: string): string {
  const windows = /^[A-Za-z]:[\\/]/.test(path) || path.startsWith('\\\\');
  const slashes = path.replace(/\\/g, '/');
  return windows ? slashes.toLowerCase() : slashes;
}

export function assetKeyOf(checkout: Pick<Checkout, 'connection' | 'assetId'>): string {
  return `${checkout.connection}/${checkout.assetId}`;
}

/** The newest checkout for each path. */
export function checkoutsByPath(checkouts: readonly Checkout[]): Map<string, Checkout> {
  const out = new Map<string, Checkout>();
  for (const checkout of checkouts) {
    const key = normalisePath(checkout.path);
    const known = out.get(key);
    if (!known || known.updated < checkout.updated) out.set(key, checkout);
  }
  return out;
}

/** The assets whose current version is needed to judge these links. */
export function assetsToCheck(links: readonly PlacedLink[], checkouts: readonly Checkout[]): Checkout[] {
  const byPath = checkoutsByPath(checkouts);
  const seen = new Set<string>();
  const out: Checkout[] = [];
  for (const link of links) {
    const checkout = byPath.get(normalisePath(link.path));
    if (checkout && !seen.has(assetKeyOf(checkout))) {
      seen.add(assetKeyOf(checkout));
      out.push(checkout);
    }
  }
  return out;
}

export function reportLinks(links: readonly PlacedLink[], checkouts: readonly Checkout[], current: CurrentVersions): LinkReport[] {
  const byPath = checkoutsByPath(checkouts);
  return links.map((link) => {
    const checkout = byPath.get(normalisePath(link.path));
    if (!checkout) return { link, state: 'not-imagine' };
    const known = current.get(assetKeyOf(checkout));
    const missing: readonly LinkStatus[] = ['missing', 'inaccessible'];
    if (missing.includes(link.status)) return { link, checkout, state: 'missing', currentVersion: known === 'deleted' ? undefined : known };
    if (known === undefined) return { link, checkout, state: 'unknown' };
    if (known === 'deleted') return { link, checkout, state: 'deleted' };
    return { link, checkout, state: known === checkout.baseVersion ? 'current' : 'out-of-date', currentVersion: known };
  });
}

/** Whether "update" can run on this link: ours, out of date (or missing) with a current version known. */
export function canUpdate(report: LinkReport): boolean {
  return (report.state === 'out-of-date' || (report.state === 'missing' && report.currentVersion !== undefined)) && report.checkout !== undefined;
}

export function countOutOfDate(reports: readonly LinkReport[]): number {
  return reports.filter((r) => r.state === 'out-of-date').length;
}
