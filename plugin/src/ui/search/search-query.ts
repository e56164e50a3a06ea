/**
 * The search form's state and the agent query it becomes. The choice lists mirror
 * shared/schemas/asset.ts (search-query.test.ts keeps them equal) without importing the
 * schemas, which would pull TypeBox into the panel bundle.
 */
import type { AgentSearchQuery } from '../../agent-client.ts';
import type { Orientation, RightsFilter, SearchSort } from '../../../../shared/schemas/asset.ts';

export const SORTS = ['relevance', 'created', '-created', 'updated', '-updated', 'title', '-title'] as const satisfies readonly SearchSort[];
export const ORIENTATION_CHOICES = ['landscape', 'portrait', 'square'] as const satisfies readonly Orientation[];
export const RIGHTS_CHOICES = ['unrestricted', 'restricted', 'expired'] as const satisfies readonly RightsFilter[];
/** Media subtypes the protocol's `format` filter takes (PSD is `vnd.adobe.photoshop`). */
export const FORMAT_CHOICES = ['jpeg', 'png', 'tiff', 'webp', 'vnd.adobe.photoshop'] as const;
export const FORMAT_LABELS: Record<(typeof FORMAT_CHOICES)[number] | '', string> = {
  '': 'Any format',
  jpeg: 'JPEG',
  png: 'PNG',
  tiff: 'TIFF',
  webp: 'WebP',
  'vnd.adobe.photoshop': 'Photoshop (PSD)',
};

export const PAGE_SIZE = 50;

export interface SearchForm {
  q: string;
  /** A connection id, or '' for every connection. */
  connection: string;
  sort: SearchSort | '';
  orientation: Orientation | '';
  rights: RightsFilter | '';
  format: (typeof FORMAT_CHOICES)[number] | '';
  creator: string;
  keyword: string;
}

export const EMPTY_FORM: SearchForm = Object.freeze({ q: '', connection: '', sort: '', orientation: '', rights: '', format: '', creator: '', keyword: '' });

/** The query sent to the agent: empty fields left out, text trimmed. */
export function toQuery(form: SearchForm, cursor?: string, limit = PAGE_SIZE): AgentSearchQuery {
  const query: AgentSearchQuery = { limit };
  const text = (value: string) => value.trim().replace(/\s+/g, ' ');
  if (text(form.q)) query.q = text(form.q);
  if (form.connection) query.connection = form.connection;
  if (form.sort) query.sort = form.sort;
  if (form.orientation) query.orientation = form.orientation;
  if (form.rights) query.rights = form.rights;
  if (form.format) query.format = form.format;
  if (text(form.creator)) query.creator = text(form.creator);
  if (text(form.keyword)) query.keyword = text(form.keyword);
  if (cursor) query.cursor = cursor;
  return query;
}

/** How many filters (besides the text and the server) are set: shown on the filter toggle. */
export function activeFilterCount(form: SearchForm): number {
  return [form.sort, form.orientation, form.rights, form.format, form.creator.trim(), form.keyword.trim()].filter(Boolean).length;
}

/** Two forms ask for the same results (so a repeated Enter does not search again). */
export function sameSearch(a: SearchForm, b: SearchForm): boolean {
  return JSON.stringify(toQuery(a)) === JSON.stringify(toQuery(b));
}

export const SORT_LABELS: Record<SearchSort | '', string> = {
  '': 'Best first',
  relevance: 'Relevance',
  created: 'Oldest first',
  '-created': 'Newest first',
  updated: 'Least recently changed',
  '-updated': 'Recently changed',
  title: 'Title A–Z',
  '-title': 'Title Z–A',
};
