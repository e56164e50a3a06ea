/**
 * Cursor paging of search results, as plain state transitions the search screen drives:
 * a new search starts a new generation (answers of older ones are dropped, so fast typing never
 * shows stale results); pages are appended without duplicates; at most one page is in flight;
 * and a huge result set stops growing at `cap` items with a hint to refine the search, so the
 * panel stays fast.
 */
import type { AgentAsset, AgentSearchPage } from '../../../../shared/schemas/agent.ts';

export type SourceStatus = AgentSearchPage['sources'][number];

export interface PagingState {
  generation: number;
  items: AgentAsset[];
  /** The cursor of the next page; null when every source is exhausted. */
  next: string | null;
  /** A page is being fetched (the first one when `items` is empty). */
  loading: boolean;
  /** How each connection answered the last page. */
  sources: SourceStatus[];
  /** The last failure, kept until the next page arrives. */
  error: unknown;
  /** The list stopped at the cap although more results exist. */
  capped: boolean;
  /** Number of pages received in this generation. */
  pages: number;
}

export const DEFAULT_CAP = 1000;

export function initialPaging(): PagingState {
  return { generation: 0, items: [], next: null, loading: false, sources: [], error: undefined, capped: false, pages: 0 };
}

/** A new search: everything is cleared and the first page is awaited. */
export function startSearch(state: PagingState): PagingState {
  return { ...initialPaging(), generation: state.generation + 1, loading: true };
}

/** Whether another page may be asked for now. */
export function canLoadMore(state: PagingState): boolean {
  return !state.loading && state.next !== null && !state.capped && state.pages > 0 && state.error === undefined;
}

/** Marks the next page as being fetched; the caller checks `canLoadMore` first. */
export function startNextPage(state: PagingState): PagingState {
  return { ...state, loading: true, error: undefined };
}

export function assetKey(asset: Pick<AgentAsset, 'connection' | 'id'>): string {
  return `${asset.connection}/${asset.id}`;
}

/** A page arrived for `generation`; ignored when a newer search started since. */
export function pageArrived(state: PagingState, generation: number, page: AgentSearchPage, cap = DEFAULT_CAP): PagingState {
  if (generation !== state.generation) return state;
  const seen = new Set(state.items.map(assetKey));
  const fresh = page.items.filter((item) => {
    const key = assetKey(item);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const items = [...state.items, ...fresh].slice(0, cap);
  // A cursor that yields nothing new would page forever: treat it as the end.
  const stuck = state.pages > 0 && fresh.length === 0;
  const next = stuck ? null : page.next;
  const capped = items.length >= cap && (next !== null || state.items.length + fresh.length > cap);
  return { ...state, items, next, loading: false, sources: page.sources, error: undefined, capped, pages: state.pages + 1 };
}

export function pageFailed(state: PagingState, generation: number, error: unknown): PagingState {
  if (generation !== state.generation) return state;
  return { ...state, loading: false, error };
}

/** Lets a failed page be asked for again. */
export function clearError(state: PagingState): PagingState {
  return { ...state, error: undefined };
}

/** Replaces one asset (e.g. after its detail was fetched with a newer version). */
export function replaceAsset(state: PagingState, asset: AgentAsset): PagingState {
  const key = assetKey(asset);
  return { ...state, items: state.items.map((item) => (assetKey(item) === key ? asset : item)) };
}

/** Removes an asset that turned out to be deleted. */
export function dropAsset(state: PagingState, asset: Pick<AgentAsset, 'connection' | 'id'>): PagingState {
  const key = assetKey(asset);
  return { ...state, items: state.items.filter((item) => assetKey(item) !== key) };
}

/** One line about where the results came from: offline servers, mirrored results, failures. */
export function describeSources(sources: SourceStatus[], names: Record<string, string> = {}): string[] {
  const name = (id: string) => names[id] ?? id;
  const lines: string[] = [];
  for (const source of sources) {
    if (source.state === 'offline') {
      lines.push(`${name(source.connection)} is offline: ${source.local ? 'showing images kept on this computer' : 'nothing kept on this computer yet'}.`);
    } else if (source.state === 'failed') {
      lines.push(`${name(source.connection)} failed: ${source.error?.message ?? 'unknown error'}.`);
    } else if (source.state === 'slow') {
      lines.push(`${name(source.connection)} is slow to answer${source.local ? ': showing images kept on this computer' : ''}.`);
    } else if (source.local) {
      lines.push(`${name(source.connection)}: showing images kept on this computer.`);
    }
  }
  return lines;
}

/** "50 of 1,234" / "12": how many results are shown, out of the known total. */
export function countLabel(state: PagingState): string {
  const totals = state.sources.map((s) => s.total);
  const total = totals.length > 0 && totals.every((t) => typeof t === 'number') ? totals.reduce<number>((a, t) => a + (t as number), 0) : undefined;
  const shown = state.items.length.toLocaleString('en');
  if (total !== undefined && total > state.items.length) return `${shown} of ${total.toLocaleString('en')}`;
  if (state.next !== null) return `${shown}+`;
  return shown;
}
