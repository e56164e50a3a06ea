/**
 * The first page of results is asked for as soon as the agent client exists, alongside the
 * agent's status, instead of after it: the first thumbnails come one round trip sooner. The
 * search screen takes it (once) for its first, empty search.
 */
import type { AgentSearchPage } from '../../../../shared/schemas/agent.ts';
import type { AgentClient } from '../../agent-client.ts';
import { EMPTY_FORM, toQuery } from './search-query.ts';

const prefetched = new WeakMap<AgentClient, Promise<AgentSearchPage>>();

export function prefetchFirstPage(client: AgentClient): void {
  if (prefetched.has(client)) return;
  const page = client.search(toQuery(EMPTY_FORM));
  page.catch(() => undefined); // the search screen asks again when this failed
  prefetched.set(client, page);
}

/** The prefetched first page (once), or a fresh search when there is none or it failed. */
export async function firstPage(client: AgentClient): Promise<AgentSearchPage> {
  const page = prefetched.get(client);
  prefetched.delete(client);
  if (page) {
    try {
      return await page;
    } catch {
      // stale failure (the companion was away, or not paired yet): ask again
    }
  }
  return client.search(toQuery(EMPTY_FORM));
}
