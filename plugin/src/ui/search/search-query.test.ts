import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ORIENTATIONS, RIGHTS_FILTERS, SEARCH_SORTS } from '../../../../shared/schemas/asset.ts';
import { EMPTY_FORM, ORIENTATION_CHOICES, RIGHTS_CHOICES, SORTS, activeFilterCount, sameSearch, toQuery, SORT_LABELS } from './search-query.ts';

test('the choice lists are the protocol lists', () => {
  assert.deepEqual([...SORTS], [...SEARCH_SORTS]);
  assert.deepEqual([...ORIENTATION_CHOICES], [...ORIENTATIONS]);
  assert.deepEqual([...RIGHTS_CHOICES], [...RIGHTS_FILTERS]);
  for (const sort of SEARCH_SORTS) assert.ok(SORT_LABELS[sort]);
});

test('empty fields are left out; text is trimmed; the cursor and page size go along', () => {
  assert.deepEqual(toQuery(EMPTY_FORM), { limit: 50 });
  const form = { ...EMPTY_FORM, q: '  red   dunes ', connection: 'studio', orientation: 'portrait' as const, keyword: ' sand ' };
  assert.deepEqual(toQuery(form, 'abc', 20), { limit: 20, q: 'red dunes', connection: 'studio', orientation: 'portrait', keyword: 'sand', cursor: 'abc' });
});

test('filter count and same-search check', () => {
  assert.equal(activeFilterCount(EMPTY_FORM), 0);
  assert.equal(activeFilterCount({ ...EMPTY_FORM, q: 'x', rights: 'expired', creator: ' ' }), 1);
  assert.ok(sameSearch({ ...EMPTY_FORM, q: 'a ' }, { ...EMPTY_FORM, q: 'a' }));
  assert.ok(!sameSearch({ ...EMPTY_FORM, q: 'a' }, { ...EMPTY_FORM, q: 'b' }));
});
