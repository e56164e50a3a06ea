/** The search filters: server, sort, orientation, rights, format, creator, keyword. */
import { useState } from 'react';
import type { Connection } from '../../../../shared/schemas/agent.ts';
import { Button } from '../spectrum/Button.tsx';
import { Dropdown } from '../spectrum/Dropdown.tsx';
import { TextField } from '../spectrum/TextField.tsx';
import { EMPTY_FORM, FORMAT_CHOICES, FORMAT_LABELS, ORIENTATION_CHOICES, RIGHTS_CHOICES, SORTS, SORT_LABELS, type SearchForm } from './search-query.ts';

export interface FilterBarProps {
  form: SearchForm;
  connections: readonly Connection[];
  onChange: (form: SearchForm) => void;
}

const ORIENTATION_LABELS = { '': 'Any orientation', landscape: 'Landscape', portrait: 'Portrait', square: 'Square' } as const;
const RIGHTS_LABELS = { '': 'Any rights', unrestricted: 'Free to use', restricted: 'Restricted', expired: 'Licence expired' } as const;

export function FilterBar({ form, connections, onChange }: FilterBarProps) {
  // Text filters apply on Enter or when leaving the field, not at every key.
  const [creator, setCreator] = useState(form.creator);
  const [keyword, setKeyword] = useState(form.keyword);
  const set = (patch: Partial<SearchForm>) => onChange({ ...form, ...patch });
  return (
    <div className="filters" data-testid="filters">
      <Dropdown
        label="Server"
        testId="filter-connection"
        value={form.connection}
        options={[{ value: '', label: 'All servers' }, ...connections.map((c) => ({ value: c.id, label: c.name }))]}
        onChange={(connection) => set({ connection })}
      />
      <Dropdown label="Sort" testId="filter-sort" value={form.sort} options={(['', ...SORTS] as const).map((v) => ({ value: v, label: SORT_LABELS[v] }))} onChange={(sort) => set({ sort })} />
      <Dropdown
        label="Orientation"
        testId="filter-orientation"
        value={form.orientation}
        options={(['', ...ORIENTATION_CHOICES] as const).map((v) => ({ value: v, label: ORIENTATION_LABELS[v] }))}
        onChange={(orientation) => set({ orientation })}
      />
      <Dropdown
        label="Rights"
        testId="filter-rights"
        value={form.rights}
        options={(['', ...RIGHTS_CHOICES] as const).map((v) => ({ value: v, label: RIGHTS_LABELS[v] }))}
        onChange={(rights) => set({ rights })}
      />
      <Dropdown
        label="Format"
        testId="filter-format"
        value={form.format}
        options={(['', ...FORMAT_CHOICES] as const).map((v) => ({ value: v, label: FORMAT_LABELS[v] }))}
        onChange={(format) => set({ format })}
      />
      <TextField label="Creator" value={creator} onChange={setCreator} onSubmit={() => set({ creator })} testId="filter-creator" />
      <TextField label="Keyword" value={keyword} onChange={setKeyword} onSubmit={() => set({ keyword })} testId="filter-keyword" />
      <div className="row">
        <Button action onClick={() => set({ creator, keyword })} testId="apply-filters">
          Apply
        </Button>
        <Button
          action
          quiet
          onClick={() => {
            setCreator('');
            setKeyword('');
            onChange({ ...EMPTY_FORM, q: form.q });
          }}
          testId="clear-filters"
        >
          Clear filters
        </Button>
      </div>
    </div>
  );
}
