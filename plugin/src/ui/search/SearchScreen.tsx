/**
 * Search: a text field (searching as the user types, after a pause), filters, where each
 * server's results came from, and the thumbnail grid with cursor paging.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { AgentAsset } from '../../../../shared/schemas/agent.ts';
import { useDebounced } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { connectionNames, usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { TextField } from '../spectrum/TextField.tsx';
import { FilterBar } from './FilterBar.tsx';
import {
  canLoadMore,
  clearError,
  countLabel,
  describeSources,
  dropAsset,
  initialPaging,
  pageArrived,
  pageFailed,
  startNextPage,
  startSearch,
  type PagingState,
} from './paging.ts';
import { firstPage } from './prefetch.ts';
import { activeFilterCount, EMPTY_FORM, sameSearch, toQuery, type SearchForm } from './search-query.ts';
import { ThumbGrid } from './ThumbGrid.tsx';

export interface SearchScreenProps {
  /** Set when the detail view reports an asset as deleted, so it leaves the results. */
  removed?: AgentAsset;
}

export function SearchScreen(props: SearchScreenProps) {
  const panel = usePanel();
  const [form, setForm] = useState<SearchForm>(EMPTY_FORM);
  const [text, setText] = useState('');
  const [showFilters, setShowFilters] = useState(false);
  const [paging, setPaging] = useState<PagingState>(initialPaging);
  const state = useRef(paging);
  state.current = paging;
  const typed = useDebounced(text, 300);

  const fetchPage = useCallback(
    async (generation: number, query: SearchForm, cursor?: string) => {
      try {
        const page =
          cursor === undefined && generation === 1 && sameSearch(query, EMPTY_FORM) ? await firstPage(panel.client) : await panel.client.search(toQuery(query, cursor));
        setPaging((s) => pageArrived(s, generation, page));
      } catch (error) {
        setPaging((s) => pageFailed(s, generation, error));
      }
    },
    [panel.client],
  );

  const search = useCallback(
    (query: SearchForm) => {
      const next = startSearch(state.current);
      state.current = next;
      setPaging(next);
      void fetchPage(next.generation, query);
    },
    [fetchPage],
  );

  const loadMore = useCallback(() => {
    const s = state.current;
    if (!canLoadMore(s)) return;
    const next = startNextPage(s);
    state.current = next;
    setPaging(next);
    void fetchPage(next.generation, form, s.next ?? undefined);
  }, [fetchPage, form]);

  // Typing searches after a pause; filters and Enter search at once.
  useEffect(() => {
    if (typed !== form.q) setForm((f) => ({ ...f, q: typed }));
  }, [typed]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    search(form);
  }, [form, search, panel.connections.length]);

  useEffect(() => {
    if (props.removed) setPaging((s) => dropAsset(s, props.removed!));
  }, [props.removed]);

  const retry = () => {
    if (paging.pages === 0) search(form);
    else {
      setPaging(clearError(state.current));
      state.current = clearError(state.current);
      loadMore();
    }
  };
  const filters = activeFilterCount(form);
  const sourceLines = describeSources(paging.sources, connectionNames(panel.connections));
  const noConnections = panel.connections.length === 0;

  return (
    <div className="screen search" data-testid="search-screen">
      <div className="row search-bar">
        <div className="grow">
          <TextField
            type="search"
            placeholder="Search images"
            value={text}
            onChange={setText}
            onSubmit={() => (text === form.q ? search(form) : setForm({ ...form, q: text }))}
            testId="search-field"
          />
        </div>
        <Button action onClick={() => setShowFilters(!showFilters)} testId="toggle-filters">
          {filters > 0 ? `Filters (${filters})` : 'Filters'}
        </Button>
      </div>
      {showFilters ? <FilterBar form={form} connections={panel.connections} onChange={setForm} /> : null}
      {noConnections ? (
        <Notice testId="no-connections">
          No server connected yet.{' '}
          <Button action quiet onClick={() => panel.go('connections')}>
            Add a server
          </Button>
        </Notice>
      ) : null}
      {sourceLines.map((line) => (
        <Notice kind="warning" key={line} testId="source-status">
          {line}
        </Notice>
      ))}
      <div className="row spread status-line">
        <span data-testid="result-count">{paging.pages > 0 ? `${countLabel(paging)} images` : paging.loading ? 'Searching…' : ''}</span>
      </div>
      {paging.error ? <ErrorMessage error={paging.error} actions={{ retry, connections: () => panel.go('connections'), 'sign-in': () => panel.go('connections') }} testId="search-error" /> : null}
      {paging.pages > 0 && paging.items.length === 0 && !paging.error ? (
        <Notice testId="no-results">No images match{filters > 0 ? ': try fewer filters' : ''}.</Notice>
      ) : null}
      <ThumbGrid
        items={paging.items}
        thumbUrl={(u) => panel.client.url(u)}
        onOpen={panel.showAsset}
        onNearEnd={loadMore}
        canLoadMore={canLoadMore(paging)}
        loading={paging.loading}
        footer={
          paging.capped ? (
            <Notice testId="capped">
              Showing the first {paging.items.length.toLocaleString('en')} results: add words or filters to find the rest.
            </Notice>
          ) : null
        }
      />
    </div>
  );
}
