/**
 * "Update" on an out-of-date link: the agent checks out the asset's current version (same
 * rendition as before), and the host relinks the placed item to the new file.
 */
import type { Checkout } from '../../../../shared/schemas/agent.ts';
import type { HostAdapter } from '../../../host/types.ts';
import type { AgentClient } from '../../agent-client.ts';
import { waitUntilReady } from '../asset/checkout-actions.ts';
import { describeError } from '../messages.ts';
import { assetKeyOf, assetsToCheck, canUpdate, reportLinks, type LinkReport } from './out-of-date.ts';

/** `imagine://a/images/x@v2` → `imagine://a/images/x`: the current version is wanted. */
export function currentUri(uri: string): string {
  return uri.replace(/@[^/@]*$/, '');
}

export async function runUpdateLink(client: AgentClient, host: HostAdapter, report: LinkReport): Promise<Checkout> {
  if (!canUpdate(report) || !report.checkout) throw new Error('This link is up to date.');
  const first = await client.checkout({ uri: currentUri(report.checkout.uri), rendition: report.checkout.rendition });
  const ready = await waitUntilReady(client, first);
  await host.relink(report.link.id, ready.path);
  return ready;
}

const GONE = new Set(['ERR_ASSET_GONE', 'ERR_ASSET_NOT_FOUND']);

/** Reads the document's links, the agent's checkouts and each asset's current version. */
export async function checkLinks(client: AgentClient, host: HostAdapter): Promise<LinkReport[]> {
  const [links, checkouts] = await Promise.all([host.listLinks(), client.checkouts()]);
  const current = new Map<string, string | 'deleted'>();
  await Promise.all(
    assetsToCheck(links, checkouts).map(async (checkout) => {
      try {
        const asset = await client.asset(checkout.connection, checkout.assetId);
        current.set(assetKeyOf(checkout), asset.deleted ? 'deleted' : asset.currentVersion);
      } catch (error) {
        if (GONE.has(describeError(error).code)) current.set(assetKeyOf(checkout), 'deleted');
        // unreachable servers leave the link "unknown"
      }
    }),
  );
  return reportLinks(links, checkouts, current);
}
