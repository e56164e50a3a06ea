import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../shared/errors.ts';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import type { AssetRecord } from './records.ts';
import { newMiniSearch } from './full-text.ts';
import { parseSearchQuery, SearchIndex, type SearchOptions, type SearchQuery } from './search-index.ts';

interface AssetInput {
  id: string;
  filename?: string;
  created?: string;
  updated?: string;
  collections?: string[];
  mediaType?: string;
  width?: number;
  height?: number;
  metadata?: AssetMetadata;
  deleted?: string;
}

function makeAsset(input: AssetInput): AssetRecord {
  const created = input.created ?? '2024-01-01T00:00:00.000Z';
  return {
    id: input.id,
    filename: input.filename ?? `${input.id}.jpg`,
    created,
    updated: input.updated ?? created,
    collections: input.collections ?? [],
    versions: [
      {
        id: `${input.id}-v1`,
        number: 1,
        created,
        sha256: '0'.repeat(64),
        size: 1000,
        mediaType: input.mediaType ?? 'image/jpeg',
        width: input.width ?? 300,
        height: input.height ?? 200,
        metadata: input.metadata ?? {},
      },
    ],
    ...(input.deleted ? { deleted: input.deleted } : {}),
  };
}

const everyone: SearchOptions = { canSee: () => true, maxLimit: 100 };

function search(index: SearchIndex, query: SearchQuery, options: Partial<SearchOptions> = {}) {
  return index.search(query, { ...everyone, ...options });
}

function ids(index: SearchIndex, query: SearchQuery, options: Partial<SearchOptions> = {}): string[] {
  return search(index, query, options).ids;
}

function sorted(list: string[]): string[] {
  return [...list].sort();
}

function library(): SearchIndex {
  const index = new SearchIndex();
  index.rebuild([
    makeAsset({
      id: 'harbour',
      filename: 'IMG_2041.jpg',
      created: '2023-05-01T10:00:00Z',
      updated: '2024-03-01T10:00:00Z',
      collections: ['cities'],
      metadata: {
        title: 'Harbour at dusk',
        description: 'Fishing boats moored in the old port',
        keywords: ['harbour', 'boats', 'Dusk'],
        creator: ['Ada Moreau'],
        creditLine: 'Studio Nord',
        city: 'Marseille',
      },
    }),
    makeAsset({
      id: 'dunes',
      filename: 'dunes-final.tif',
      mediaType: 'image/tiff',
      created: '2023-08-15T00:00:00Z',
      updated: '2024-01-10T00:00:00Z',
      width: 200,
      height: 300,
      collections: ['landscapes'],
      metadata: {
        title: 'Dunes',
        description: 'Wind over the dunes near the harbour',
        keywords: ['desert', 'sand'],
        creator: ['Kenji Sato', 'Ada Moreau'],
        headline: 'Sahara morning',
        licenseEndDate: '2024-06-30',
      },
    }),
    makeAsset({
      id: 'tiles',
      filename: 'pattern_tiles.png',
      mediaType: 'image/png',
      created: '2024-02-01T00:00:00Z',
      updated: '2024-02-01T00:00:00Z',
      width: 500,
      height: 500,
      collections: ['patterns', 'landscapes'],
      metadata: {
        title: 'Éclat tiles',
        keywords: ['pattern', 'blue'],
        creator: ['Lena Fischer'],
        usageTerms: 'Editorial use only. Do NOT distribute.',
      },
    }),
    makeAsset({
      id: 'skyline',
      filename: 'skyline.webp',
      mediaType: 'image/webp',
      created: '2022-11-20T00:00:00Z',
      updated: '2024-04-01T00:00:00Z',
      collections: ['cities'],
      metadata: {
        title: 'Night skyline',
        keywords: ['city', 'night'],
        creator: ['Ada Moreaux'],
        description: 'A harbour city at night',
      },
    }),
    makeAsset({ id: 'gone', deleted: '2024-04-02T00:00:00Z', metadata: { title: 'Harbour deleted' } }),
  ]);
  return index;
}

function assertProtocolError(fn: () => unknown, code: 'ERR_BAD_REQUEST' | 'ERR_VALIDATION'): void {
  assert.throws(fn, (error: unknown) => isProtocolError(error, code));
}

describe('full text', () => {
  const index = library();

  test('matches title, keyword, creator, credit line, headline and file name', () => {
    assert.deepEqual(ids(index, { q: 'skyline' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'sand' }), ['dunes']);
    assert.deepEqual(ids(index, { q: 'fischer' }), ['tiles']);
    assert.deepEqual(ids(index, { q: 'studio nord' }), ['harbour']);
    assert.deepEqual(ids(index, { q: 'sahara' }), ['dunes']);
    assert.deepEqual(ids(index, { q: 'IMG_2041' }), ['harbour']);
    assert.deepEqual(ids(index, { q: 'img' }), ['harbour']);
  });

  test('all terms must match', () => {
    assert.deepEqual(sorted(ids(index, { q: 'harbour' })), ['dunes', 'harbour', 'skyline']);
    assert.deepEqual(ids(index, { q: 'harbour night' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'harbour zebra' }), []);
  });

  test('the last term is a prefix', () => {
    assert.deepEqual(ids(index, { q: 'skyl' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'fishing boa' }), ['harbour']);
    assert.deepEqual(ids(index, { q: 'skyl night' }), [], 'only the last term is a prefix');
    assert.deepEqual(ids(index, { q: 'sk' }), [], 'from three characters');
    assert.deepEqual(ids(index, { q: 'sky' }), ['skyline']);
  });

  test('terms of four letters or more are fuzzy, shorter ones are not', () => {
    assert.deepEqual(ids(index, { q: 'skylime' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'dunnes desert' }), ['dunes']);
    assert.deepEqual(ids(index, { q: 'snd' }), []);
  });

  test('function words are ignored', () => {
    assert.deepEqual(ids(index, { q: 'harbour at dusk' }), ['harbour']);
    assert.deepEqual(ids(index, { q: 'the' }), []);
  });

  test('a title match ranks above a description match', () => {
    assert.equal(ids(index, { q: 'harbour' })[0], 'harbour');
    assert.equal(ids(index, { q: 'dunes' })[0], 'dunes');
  });

  test('case and accents are ignored', () => {
    assert.deepEqual(ids(index, { q: 'ÉCLAT' }), ['tiles']);
    assert.deepEqual(ids(index, { q: 'eclat' }), ['tiles']);
    assert.deepEqual(ids(index, { q: 'DÛNES' }), ['dunes']);
  });

  test('an empty q lists everything', () => {
    assert.equal(search(index, { q: '   ' }).total, 4);
  });
});

describe('filters', () => {
  const index = library();
  const now = Date.parse('2025-01-01T00:00:00Z');

  test('collection, case-insensitive', () => {
    assert.deepEqual(sorted(ids(index, { collection: 'Cities' })), ['harbour', 'skyline']);
    assert.deepEqual(sorted(ids(index, { collection: 'landscapes' })), ['dunes', 'tiles']);
  });

  test('creator and keyword match whole list entries, case-insensitive', () => {
    assert.deepEqual(sorted(ids(index, { creator: 'ada moreau' })), ['dunes', 'harbour']);
    assert.deepEqual(ids(index, { creator: 'Ada' }), []);
    assert.deepEqual(ids(index, { keyword: 'DUSK' }), ['harbour']);
    assert.deepEqual(ids(index, { keyword: 'dus' }), []);
  });

  test('format by media subtype, with jpg and tif aliases', () => {
    assert.deepEqual(ids(index, { format: 'jpg' }), ['harbour']);
    assert.deepEqual(ids(index, { format: 'JPEG' }), ['harbour']);
    assert.deepEqual(ids(index, { format: 'tif' }), ['dunes']);
    assert.deepEqual(ids(index, { format: 'png' }), ['tiles']);
    assert.deepEqual(ids(index, { format: 'webp' }), ['skyline']);
  });

  test('created range: after is inclusive, before exclusive', () => {
    assert.deepEqual(sorted(ids(index, { createdAfter: '2023-05-01T10:00:00Z' })), ['dunes', 'harbour', 'tiles']);
    assert.deepEqual(sorted(ids(index, { createdBefore: '2023-05-01T10:00:00Z' })), ['skyline']);
    assert.deepEqual(ids(index, { createdAfter: '2023-01-01', createdBefore: '2023-06-01' }), ['harbour']);
  });

  test('orientation from the current version', () => {
    assert.deepEqual(sorted(ids(index, { orientation: 'landscape' })), ['harbour', 'skyline']);
    assert.deepEqual(ids(index, { orientation: 'portrait' }), ['dunes']);
    assert.deepEqual(ids(index, { orientation: 'square' }), ['tiles']);
  });

  test('rights: expired, restricted, unrestricted', () => {
    assert.deepEqual(ids(index, { rights: 'expired' }, { now }), ['dunes']);
    assert.deepEqual(sorted(ids(index, { rights: 'restricted' }, { now })), ['dunes', 'tiles']);
    assert.deepEqual(sorted(ids(index, { rights: 'unrestricted' }, { now })), ['harbour', 'skyline']);
  });

  test('a date-only licence end covers its whole day', () => {
    const lastDay = Date.parse('2024-06-30T23:00:00Z');
    assert.deepEqual(ids(index, { rights: 'expired' }, { now: lastDay }), []);
    assert.deepEqual(ids(index, { rights: 'expired' }, { now: lastDay + 3_600_000 }), ['dunes']);
  });

  test('filters combine with each other and with q', () => {
    assert.deepEqual(ids(index, { q: 'harbour', collection: 'cities', orientation: 'landscape', format: 'webp' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'harbour', creator: 'kenji sato' }), ['dunes']);
    assert.equal(search(index, { q: 'harbour', collection: 'patterns' }).total, 0);
  });
});

describe('sorting', () => {
  const index = library();

  test('without q the default is most recently updated first', () => {
    assert.deepEqual(ids(index, {}), ['skyline', 'harbour', 'tiles', 'dunes']);
    assert.deepEqual(ids(index, { sort: 'relevance' }), ['skyline', 'harbour', 'tiles', 'dunes']);
  });

  test('created, updated and title, both ways', () => {
    assert.deepEqual(ids(index, { sort: 'created' }), ['skyline', 'harbour', 'dunes', 'tiles']);
    assert.deepEqual(ids(index, { sort: '-created' }), ['tiles', 'dunes', 'harbour', 'skyline']);
    assert.deepEqual(ids(index, { sort: 'updated' }), ['dunes', 'tiles', 'harbour', 'skyline']);
    assert.deepEqual(ids(index, { sort: 'title' }), ['dunes', 'tiles', 'harbour', 'skyline']);
    assert.deepEqual(ids(index, { sort: '-title' }), ['skyline', 'harbour', 'tiles', 'dunes']);
  });

  test('text results sorted by another key when asked', () => {
    assert.deepEqual(ids(index, { q: 'harbour', sort: 'created' }), ['skyline', 'harbour', 'dunes']);
    assert.deepEqual(ids(index, { q: 'harbour', sort: '-title' }), ['skyline', 'harbour', 'dunes']);
  });

  test('filters keep the sort order', () => {
    assert.deepEqual(ids(index, { collection: 'landscapes', sort: 'created' }), ['dunes', 'tiles']);
  });
});

describe('pagination', () => {
  const index = new SearchIndex();
  const day = 86_400_000;
  const base = Date.parse('2024-01-01T00:00:00Z');
  index.rebuild(
    Array.from({ length: 53 }, (_, i) =>
      makeAsset({
        id: `a${String(i).padStart(2, '0')}`,
        created: new Date(base + (i % 7) * day).toISOString(),
        collections: [i % 2 ? 'odd' : 'even'],
        metadata: { title: `Lighthouse ${i}`, keywords: i % 3 ? ['coast'] : ['coast', 'storm'] },
      }),
    ),
  );

  function all(query: SearchQuery): { pages: string[][]; totals: number[] } {
    const pages: string[][] = [];
    const totals: number[] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 100; guard++) {
      const result = search(index, { ...query, ...(cursor ? { cursor } : {}) });
      pages.push(result.ids);
      totals.push(result.total);
      if (result.next === null) return { pages, totals };
      cursor = result.next;
    }
    throw new Error('pagination does not end');
  }

  for (const query of [
    { limit: 10 },
    { limit: 7, sort: 'created' },
    { limit: 4, sort: '-title', collection: 'odd' },
    { limit: 5, q: 'lighthouse' },
    { limit: 3, q: 'coast', keyword: 'storm', sort: '-created' },
  ] satisfies SearchQuery[]) {
    test(`walks every page once: ${JSON.stringify(query)}`, () => {
      const expected = search(index, { ...query, limit: 100 });
      const { pages, totals } = all(query);
      const seen = pages.flat();
      assert.deepEqual(seen, expected.ids, 'pages concatenate to the full ordered list');
      assert.equal(new Set(seen).size, seen.length, 'no duplicates');
      assert.ok(totals.every((t) => t === expected.total));
      assert.ok(pages.slice(0, -1).every((p) => p.length === query.limit));
      assert.equal(pages.length, Math.max(1, Math.ceil(expected.total / query.limit)));
    });
  }

  test('limit defaults to 50 and is clamped to [1, maxLimit]', () => {
    assert.equal(search(index, {}).ids.length, 50);
    assert.equal(search(index, { limit: 0 }).ids.length, 1);
    assert.equal(search(index, { limit: -3 }).ids.length, 1);
    assert.equal(search(index, { limit: 40 }, { maxLimit: 20 }).ids.length, 20);
    assert.equal(search(index, {}, { maxLimit: 20 }).ids.length, 20);
  });

  test('no next page when everything fits', () => {
    assert.deepEqual(search(index, { collection: 'even', limit: 100 }).next, null);
    assert.deepEqual(search(index, { q: 'nothing-like-this' }), { ids: [], next: null, total: 0 });
  });

  test('a cursor is bound to its query', () => {
    const first = search(index, { q: 'lighthouse', limit: 5 });
    assert.ok(first.next);
    const cursor = first.next;
    assertProtocolError(() => search(index, { q: 'coast', limit: 5, cursor }), 'ERR_BAD_REQUEST');
    assertProtocolError(() => search(index, { q: 'lighthouse', sort: 'title', cursor }), 'ERR_BAD_REQUEST');
    assertProtocolError(() => search(index, { q: 'lighthouse', collection: 'odd', cursor }), 'ERR_BAD_REQUEST');
    // Case and spacing of q do not make another query.
    assert.equal(search(index, { q: '  LightHouse ', limit: 5, cursor }).ids.length, 5);
    // The page size may change between pages; the query may not.
    assert.equal(search(index, { q: 'lighthouse', limit: 10, cursor }).ids.length, 10);
  });

  test('a malformed cursor is rejected', () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    for (const cursor of ['!!!', 'not a cursor', b64('{"o":'), b64('[]'), b64('{"o":-1,"h":"x"}'), b64('{"o":1.5,"h":"x"}'), 'A'.repeat(5000)]) {
      assertProtocolError(() => search(index, { cursor }), 'ERR_BAD_REQUEST');
    }
  });
});

describe('keeping in step with writes', () => {
  test('upsert replaces the old text and facets', () => {
    const index = library();
    assert.ok(ids(index, { q: 'harbour' }).includes('harbour'));
    assert.deepEqual(ids(index, { q: 'harbour', sort: '-updated' }), ['skyline', 'harbour', 'dunes']);
    const old = makeAsset({ id: 'harbour', filename: 'beacon.jpg', metadata: { title: 'Lighthouse', keywords: ['beacon'] } });
    index.upsert({ ...old, updated: '2030-01-01T00:00:00Z' });
    assert.deepEqual(ids(index, { q: 'moored' }), []);
    assert.equal(ids(index, { q: 'harbour' }).includes('harbour'), false);
    assert.deepEqual(ids(index, { q: 'lighthouse' }), ['harbour']);
    assert.deepEqual(ids(index, { keyword: 'boats' }), []);
    assert.deepEqual(ids(index, { keyword: 'beacon' }), ['harbour']);
    assert.equal(ids(index, {})[0], 'harbour', 'the sorted views see the new updated time');
    assert.deepEqual(ids(index, { q: 'harbour', sort: '-updated' }), ['skyline', 'dunes'], 'cached hits are dropped');
    assert.equal(index.size, 4);
  });

  test('upsert adds a new asset to every view', () => {
    const index = library();
    index.upsert(makeAsset({ id: 'new', created: '2030-01-01T00:00:00Z', metadata: { title: 'Aardvark' } }));
    assert.equal(ids(index, { sort: '-created' })[0], 'new');
    assert.equal(ids(index, { sort: 'title' })[0], 'new');
    assert.deepEqual(ids(index, { q: 'aardvark' }), ['new']);
    assert.equal(index.size, 5);
  });

  test('cached full-text results follow writes', () => {
    const index = library();
    assert.deepEqual(ids(index, { q: 'skyline' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'skyline', sort: 'created' }), ['skyline']);
    assert.deepEqual(ids(index, { q: 'sand' }), ['dunes']);
    index.upsert(makeAsset({ id: 'new', created: '2010-01-01T00:00:00Z', metadata: { title: 'Skyline at noon' } }));
    assert.deepEqual(sorted(ids(index, { q: 'skyline' })), ['new', 'skyline'], 'a new match appears');
    assert.deepEqual(ids(index, { q: 'skyline', sort: 'created' }), ['new', 'skyline']);
    assert.deepEqual(ids(index, { q: 'sand' }), ['dunes'], 'an unrelated list is unchanged');
    index.remove('skyline');
    assert.deepEqual(ids(index, { q: 'skyline' }), ['new'], 'a removed match disappears');
    index.upsert(makeAsset({ id: 'new', metadata: { title: 'Renamed' } }));
    assert.deepEqual(ids(index, { q: 'skyline' }), [], 'a changed match disappears');
  });

  test('remove and deleted tombstones drop the asset everywhere', () => {
    const index = library();
    assert.equal(index.size, 4);
    assert.deepEqual(ids(index, { q: 'deleted' }), [], 'tombstones are not indexed on rebuild');
    index.remove('skyline');
    index.upsert({ ...makeAsset({ id: 'dunes' }), deleted: '2024-05-01T00:00:00Z' });
    index.remove('unknown');
    assert.equal(index.size, 2);
    assert.deepEqual(sorted(ids(index, { q: 'harbour' })), ['harbour']);
    assert.deepEqual(sorted(ids(index, {})), ['harbour', 'tiles']);
    assert.equal(search(index, { sort: 'title' }).total, 2);
  });

  test('a view mended slot by slot keeps every asset once', () => {
    const index = new SearchIndex();
    const at = (day: number) => new Date(Date.UTC(2024, 0, day)).toISOString();
    index.rebuild(Array.from({ length: 10 }, (_, i) => makeAsset({ id: `s${i}`, created: at(i + 1) })));
    assert.equal(ids(index, { sort: 'created' }).length, 10);
    index.remove('s4');
    assert.deepEqual(ids(index, { sort: 'created' }), ['s0', 's1', 's2', 's3', 's5', 's6', 's7', 's8', 's9']);
    index.upsert(makeAsset({ id: 's9', created: at(0) }));
    index.upsert(makeAsset({ id: 's10', created: at(5) }));
    assert.deepEqual(ids(index, { sort: 'created' }), ['s9', 's0', 's1', 's2', 's3', 's10', 's5', 's6', 's7', 's8']);
    index.upsert(makeAsset({ id: 's0', created: at(30) }));
    assert.deepEqual(ids(index, { sort: '-created' }), ['s0', 's8', 's7', 's6', 's5', 's10', 's3', 's2', 's1', 's9']);
  });

  test('many writes between queries', () => {
    const index = library();
    for (let i = 0; i < 200; i++) {
      index.upsert(makeAsset({ id: `x${i % 50}`, created: new Date(Date.UTC(2020, 0, 1 + i)).toISOString() }));
    }
    const created = ids(index, { sort: 'created', limit: 100 });
    assert.equal(created.length, 54);
    assert.equal(new Set(created).size, 54);
    assert.equal(created.at(-1), 'tiles');
  });
});

describe('visibility', () => {
  const index = library();
  const canSee = (asset: AssetRecord) => !asset.collections.includes('cities');

  for (const byCollections of [false, true]) {
    test(`assets the caller cannot see are not returned nor counted (byCollections: ${byCollections})`, () => {
      const options = { canSee, byCollections };
      assert.deepEqual(search(index, { q: 'harbour' }, options), { ids: ['dunes'], next: null, total: 1 });
      assert.deepEqual(search(index, {}, options), { ids: ['tiles', 'dunes'], next: null, total: 2 });
      const first = search(index, { sort: 'title', limit: 1 }, options);
      assert.deepEqual([first.ids, first.total], [['dunes'], 2]);
      assert.deepEqual(search(index, { sort: 'title', limit: 1, cursor: first.next ?? '' }, options), { ids: ['tiles'], next: null, total: 2 });
      assert.equal(search(index, { keyword: 'night' }, options).total, 0);
    });
  }

  test('with byCollections, canSee is asked once per distinct set of collections', () => {
    let calls = 0;
    const counting = (asset: AssetRecord) => {
      calls++;
      return canSee(asset);
    };
    search(index, { sort: 'created' }, { canSee: counting, byCollections: true });
    assert.equal(calls, 3, 'cities, landscapes, landscapes+patterns');
  });
});

describe('building in the background', () => {
  test('filters work at once, a full-text search finishes the build, writes are kept', async () => {
    const index = new SearchIndex();
    const assets = Array.from({ length: 5000 }, (_, i) =>
      makeAsset({ id: `b${i}`, filename: `file${i}.jpg`, metadata: { title: i % 2 ? 'Odd lighthouse' : 'Even harbour' } }),
    );
    const done = index.rebuildInBackground(assets);
    assert.equal(index.size, 5000);
    assert.equal(search(index, { sort: 'title' }).total, 5000);
    index.upsert(makeAsset({ id: 'b1', filename: 'file1.jpg', metadata: { title: 'Renamed beacon' } }));
    index.remove('b3');
    index.upsert(makeAsset({ id: 'extra', metadata: { title: 'Extra lighthouse' } }));
    assert.equal(search(index, { q: 'lighthouse' }).total, 2500 - 2 + 1);
    assert.deepEqual(ids(index, { q: 'beacon' }), ['b1']);
    await done;
    assert.equal(search(index, { q: 'harbour' }).total, 2500);
    assert.equal(search(index, { q: 'lighthouse' }).total, 2499);
  });

  test('after the build, the common terms are warmed ahead of their first query; results unchanged', async () => {
    const index = new SearchIndex();
    const assets = Array.from({ length: 1200 }, (_, i) =>
      makeAsset({ id: `w${i}`, filename: `w${i}.jpg`, metadata: { title: i % 3 ? 'Harbour at dusk' : `Rare item ${i}` } }),
    );
    const cold = new SearchIndex();
    cold.rebuild(assets);
    await index.rebuildInBackground(assets);
    assert.equal(index.keptPostings, 0, 'nothing kept before warming');
    await index.warming;
    // 'harbour', 'dusk' (800 assets each) and 'w…'-prefixed file names are common; 'rare' (400) is not.
    assert.ok(index.keptPostings >= 1600, String(index.keptPostings));
    for (const q of ['harbour', 'dusk harbour', 'harb', 'rare', 'habour']) {
      assert.deepEqual(ids(index, { q, limit: 200 }), ids(cold, { q, limit: 200 }), q);
    }
    // A write after warming is seen at once.
    index.upsert(makeAsset({ id: 'w1', filename: 'w1.jpg', metadata: { title: 'Quiet lighthouse' } }));
    assert.equal(search(index, { q: 'harbour' }).total, 799);
  });

  test('a rebuild during warming stops it', async () => {
    const index = new SearchIndex();
    await index.rebuildInBackground(Array.from({ length: 2000 }, (_, i) => makeAsset({ id: `z${i}`, metadata: { title: 'common word' } })));
    const warming = index.warming;
    index.rebuild([makeAsset({ id: 'only', metadata: { title: 'common' } })]);
    await warming;
    assert.equal(index.keptPostings, 0);
    assert.deepEqual(ids(index, { q: 'common' }), ['only']);
  });

  test('a later rebuild wins', async () => {
    const index = new SearchIndex();
    const first = index.rebuildInBackground(Array.from({ length: 4000 }, (_, i) => makeAsset({ id: `x${i}`, metadata: { title: 'first' } })));
    index.rebuild([makeAsset({ id: 'y', metadata: { title: 'second' } })]);
    await first;
    assert.deepEqual(ids(index, { q: 'first' }), []);
    assert.deepEqual(ids(index, { q: 'second' }), ['y']);
  });
});

describe('against a brute-force model', () => {
  // Random assets and writes; every query is checked against filtering and sorting by hand.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const creators = ['Ada Moreau', 'Kenji Sato', 'Lena Fischer', 'Rare Person'];
  const keywords = ['sea', 'city', 'night', 'tree', 'rare'];
  const day = 86_400_000;
  const base = Date.parse('2020-01-01T00:00:00Z');
  let counter = 0;
  const randomAsset = (id: string): AssetRecord => {
    const created = base + Math.floor(random() * 400) * day;
    return makeAsset({
      id,
      created: new Date(created).toISOString(),
      updated: new Date(created + Math.floor(random() * 50) * day).toISOString(),
      collections: random() < 0.2 ? [] : [pick(['c1', 'c2', 'c3'])],
      mediaType: pick(['image/jpeg', 'image/png', 'image/tiff']),
      width: pick([100, 200, 300]),
      height: pick([100, 200, 300]),
      metadata: {
        title: `${pick(['Alpha', 'beta', 'Gamma', 'delta', 'Émile'])} ${counter++ % 7}`,
        creator: random() < 0.015 ? ['Rare Person'] : [pick(creators.slice(0, 3))],
        keywords: [pick(keywords.slice(0, 4)), ...(random() < 0.02 ? ['rare'] : [])],
        ...(random() < 0.2 ? { licenseEndDate: '2024-01-01' } : {}),
        ...(random() < 0.1 ? { usageTerms: 'Do not distribute' } : {}),
      },
    });
  };
  const now = Date.parse('2025-01-01T00:00:00Z');
  const canSee = (asset: AssetRecord) => asset.collections.includes('c1') || asset.collections.includes('c2');

  function expected(model: Map<string, AssetRecord>, query: SearchQuery, see: (a: AssetRecord) => boolean): string[] {
    const meta = (a: AssetRecord) => a.versions[0]?.metadata ?? {};
    const has = (list: unknown, value: string | undefined) =>
      value === undefined || (Array.isArray(list) && list.some((v) => String(v).toLowerCase() === value.toLowerCase()));
    const textMatches: Record<string, (a: AssetRecord) => boolean> = {
      gamma: (a) => String(meta(a).title).startsWith('Gamma'),
      beta: (a) => String(meta(a).title).startsWith('beta'),
      delta: (a) => String(meta(a).title).startsWith('delta'),
      rare: (a) => has(meta(a).keywords, 'rare') || has(meta(a).creator, 'rare person'),
    };
    const matches = [...model.values()].filter((a) => {
      const v = a.versions[0];
      if (!v || !see(a)) return false;
      if (query.q !== undefined && !textMatches[query.q]?.(a)) return false;
      if (!has(a.collections, query.collection) || !has(meta(a).creator, query.creator) || !has(meta(a).keywords, query.keyword)) return false;
      if (query.orientation) {
        const o = (v.width ?? 0) > (v.height ?? 0) ? 'landscape' : (v.width ?? 0) < (v.height ?? 0) ? 'portrait' : 'square';
        if (o !== query.orientation) return false;
      }
      if (query.createdAfter && Date.parse(a.created) < Date.parse(query.createdAfter)) return false;
      if (query.rights) {
        const expired = meta(a).licenseEndDate !== undefined;
        const restricted = expired || meta(a).usageTerms !== undefined;
        if (query.rights === 'expired' ? !expired : query.rights === 'restricted' ? !restricted : restricted) return false;
      }
      return true;
    });
    const sort = query.sort ?? '-updated';
    const key = sort.replace('-', '');
    const value = (a: AssetRecord): number | string =>
      key === 'title' ? String(meta(a).title).normalize('NFD').replace(/\p{M}/gu, '').toLowerCase() : Date.parse(key === 'created' ? a.created : a.updated);
    matches.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const c = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
      return sort.startsWith('-') ? -c : c;
    });
    return matches.map((a) => a.id);
  }

  const queries: SearchQuery[] = [
    {},
    { sort: 'created' },
    { sort: '-title' },
    { sort: 'updated', collection: 'c2' },
    { creator: 'rare person', sort: '-created' },
    { keyword: 'rare', sort: 'title' },
    { keyword: 'sea', creator: 'ada moreau', sort: 'created' },
    { orientation: 'square', rights: 'unrestricted', sort: '-updated' },
    { rights: 'restricted', createdAfter: '2020-06-01', sort: 'title' },
    { rights: 'expired', collection: 'c3' },
    // Full text with filters first: MiniSearch skips the rejected assets.
    { q: 'beta', collection: 'c2', sort: 'created' },
    { q: 'delta', orientation: 'portrait', createdAfter: '2020-03-01', rights: 'unrestricted', sort: '-title' },
    // Sorted full-text hits: many (picked out of the view) and few (sorted by rank).
    { q: 'gamma', sort: 'created' },
    { q: 'gamma', sort: '-title', orientation: 'landscape' },
    { q: 'rare', sort: '-updated' },
    { q: 'rare', sort: 'title', collection: 'c1' },
  ];

  test('queries agree after every round of writes', () => {
    const model = new Map<string, AssetRecord>();
    for (let i = 0; i < 400; i++) model.set(`m${i}`, randomAsset(`m${i}`));
    const index = new SearchIndex();
    index.rebuild(model.values());
    for (let round = 0; round < 12; round++) {
      // Views are mended slot by slot (up to 8 writes), by a merge (up to 1/32 of the
      // library), or sorted again (more).
      const writes = round === 6 ? 100 : round % 3 === 1 ? 10 : 1 + Math.floor(random() * 5);
      for (let w = 0; w < writes; w++) {
        const r = random();
        if (r < 0.2 && model.size > 0) {
          const id = pick([...model.keys()]);
          model.delete(id);
          index.remove(id);
        } else {
          const id = r < 0.6 ? pick([...model.keys()]) : `n${round}-${w}`;
          const asset = randomAsset(id);
          model.set(id, asset);
          index.upsert(asset);
        }
      }
      for (const query of queries) {
        for (const [see, byCollections] of [[() => true, true], [canSee, true], [canSee, false]] as const) {
          const result = index.search({ ...query, limit: 1000 }, { canSee: see, byCollections, maxLimit: 1000, now });
          const want = expected(model, query, see);
          assert.deepEqual(result.ids, want, `round ${round} ${JSON.stringify(query)}`);
          assert.equal(result.total, want.length);
        }
      }
    }
  });
});

describe('full text against plain MiniSearch', () => {
  // A generated library: skewed words, so there are common terms, rare ones and ties.
  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const skewed = <T>(list: readonly T[]): T => list[Math.floor(list.length * random() ** 2)] as T;
  const subjects = ['harbour', 'harbor', 'lighthouse', 'market', 'bridge', 'cathédrale', 'forest', 'river', 'fox', 'tower'];
  const words = ['quiet', 'golden', 'misty', 'old', 'dark', 'dusk', 'night', 'rain', 'travel', 'sky', 'Éclat', 'sea'];
  let n = 0;
  const generated = (id: string): AssetRecord =>
    makeAsset({
      id,
      filename: random() < 0.5 ? `IMG_${String(Math.floor(random() * 50)).padStart(4, '0')}.jpg` : `${pick(subjects)}-${n++}.jpg`,
      collections: [pick(['c1', 'c2', 'c3'])],
      metadata: {
        title: `${pick(words)} ${skewed(subjects)} at ${skewed(words)}`,
        description: `The ${pick(words)} ${pick(subjects)} near the ${pick(subjects)}.`,
        keywords: [skewed(subjects), skewed(words)],
        creator: [pick(['Ada Moreau', 'Kenji Sato'])],
      },
    });
  const queries = ['harbour', 'har', 'harb', 'lighthuose', 'cathedrale', 'eclat', 'quiet harbour', 'harbour quiet', 'old harbour at dusk', 'dusk dusk', 'img', 'fox tower sky', 'nothing'];

  /** What plain MiniSearch answers, as ids: the same documents added in the same order. */
  const plains = new WeakMap<AssetRecord[], ReturnType<typeof newMiniSearch>>();
  function plainIds(assets: AssetRecord[], q: string): string[] {
    let plain = plains.get(assets);
    if (!plain) {
      plain = newMiniSearch();
      plain.addAll(assets.map((a, slot) => ({ slot, filename: a.filename, metadata: a.versions.at(-1)?.metadata })));
      plains.set(assets, plain);
    }
    return plain.search(q).map((r) => (assets[r.id as number] as AssetRecord).id);
  }

  /** Every page of a query, through its cursors. */
  function allPages(index: SearchIndex, query: SearchQuery, options: Partial<SearchOptions> = {}): string[] {
    const found: string[] = [];
    let cursor: string | undefined;
    do {
      const result = search(index, { ...query, ...(cursor ? { cursor } : {}) }, options);
      found.push(...result.ids);
      cursor = result.next ?? undefined;
    } while (cursor);
    return found;
  }

  test("relevance order, page by page, is MiniSearch's order", () => {
    const assets = Array.from({ length: 600 }, (_, i) => generated(`g${i}`));
    const index = new SearchIndex();
    index.rebuild(assets);
    for (const pass of ['cold', 'kept']) {
      for (const q of queries) {
        const want = plainIds(assets, q);
        assert.deepEqual(ids(index, { q, limit: 1000 }, { maxLimit: 1000 }), want, `${pass}: ${q}`);
        assert.deepEqual(allPages(index, { q, limit: 7 }), want, `${pass}, pages of 7: ${q}`);
        // Visibility and filters only take assets out; the order stays.
        const c1 = new Set(assets.filter((a) => a.collections.includes('c1')).map((a) => a.id));
        const visible = (a: AssetRecord) => a.collections.includes('c1');
        assert.deepEqual(allPages(index, { q, limit: 9 }, { canSee: visible, byCollections: true }), want.filter((id) => c1.has(id)), `${pass}, c1 only: ${q}`);
        assert.deepEqual(allPages(index, { q, collection: 'c1', limit: 50 }), want.filter((id) => c1.has(id)), `${pass}, filter c1: ${q}`);
      }
    }
  });

  test('every write is reflected in the next search, kept values or not', () => {
    const assets = Array.from({ length: 300 }, (_, i) => generated(`w${i}`));
    const index = new SearchIndex();
    index.rebuild(assets);
    for (const q of queries) ids(index, { q }); // keep values for every term
    const first = assets[0] as AssetRecord;

    // Edit the text: it now matches 'zebra' and no longer what it matched.
    const edited = makeAsset({ id: first.id, metadata: { title: 'Zebra crossing' } });
    index.upsert(edited);
    assert.deepEqual(ids(index, { q: 'zebra' }), [first.id]);
    assert.deepEqual(ids(index, { q: 'zebra', sort: 'title' }), [first.id]);
    for (const q of ['harbour', 'quiet harbour', 'img']) assert.equal(ids(index, { q, limit: 100 }).includes(first.id), false, q);

    // A new asset with a common term is found at once, by relevance and by another order.
    const added = makeAsset({ id: 'new', created: '2031-01-01T00:00:00Z', metadata: { title: 'Harbour harbour harbour', keywords: ['harbour'] } });
    index.upsert(added);
    const fresh = plainIds([edited, ...assets.slice(1), added], 'harbour');
    assert.equal(ids(index, { q: 'harbour', limit: 100 }).indexOf('new'), fresh.indexOf('new'), 'its score is computed with the write in');
    assert.equal(ids(index, { q: 'harbour', sort: '-created' })[0], 'new');
    assert.equal(search(index, { q: 'harbour' }).total, plainIds([...assets.slice(1), added], 'harbour').length);

    // Delete, then add again under the same id with other text.
    index.remove('new');
    assert.equal(ids(index, { q: 'harbour', limit: 100 }).includes('new'), false);
    assert.equal(search(index, { q: 'harbour' }).total, plainIds(assets.slice(1), 'harbour').length);
    index.upsert(makeAsset({ id: 'new', metadata: { title: 'Zebra again' } }));
    assert.deepEqual(sorted(ids(index, { q: 'zebra' })), sorted([first.id, 'new']));

    // A write that leaves the text as it was changes nothing of the text order.
    const all = { maxLimit: 1000 };
    const before = ids(index, { q: 'harbour', limit: 1000 }, all);
    const second = assets[1] as AssetRecord;
    index.upsert({ ...second, updated: '2030-01-01T00:00:00Z', collections: ['c9'] });
    assert.deepEqual(ids(index, { q: 'harbour', limit: 1000 }, all), before);
    assert.deepEqual(ids(index, { q: 'harbour', collection: 'c9' }), before.includes(second.id) ? [second.id] : []);

    // After the writes, what a fresh MiniSearch matches (same documents).
    const current = [...assets.slice(2), { ...second, collections: ['c9'] }, edited, makeAsset({ id: 'new', metadata: { title: 'Zebra again' } })];
    for (const q of queries) {
      assert.deepEqual(sorted(ids(index, { q, limit: 1000 }, { maxLimit: 1000 })), sorted(plainIds(current, q)), `after writes: ${q}`);
    }
  });

  test('hostile queries are answered, and fast', () => {
    const assets = Array.from({ length: 2000 }, (_, i) => generated(`h${i}`));
    const index = new SearchIndex();
    index.rebuild(assets);
    const hostile = [
      'harbour'.repeat(71), // one 497-letter term: fuzzy up to 6 edits
      'a'.repeat(500),
      Array.from({ length: 120 }, (_, i) => subjects[i % subjects.length]).join(' ').slice(0, 500), // many terms
      Array.from({ length: 250 }, () => 'x').join(' ').slice(0, 500),
      'harbour '.repeat(62).trim(),
      '\u0000\u200b\u202e\ufeff harbour \ud83d\ude00 \u0301\u0301\u0301',
      'e\u0301'.repeat(200),
      '𝔥𝔞𝔯𝔟𝔬𝔲𝔯 Ⅻ ﬁ ǅ İstanbul ß',
      '%00 %s %n ${x} <script> \' OR 1=1 --',
    ];
    for (const q of hostile) {
      const t0 = performance.now();
      const result = search(index, { q: q.slice(0, 500), limit: 20 });
      const took = performance.now() - t0;
      assert.ok(Array.isArray(result.ids) && result.total >= result.ids.length, q.slice(0, 40));
      assert.ok(took < 1000, `${q.slice(0, 40)}: ${took} ms`);
      assert.deepEqual(result.ids, plainIds(assets, q.slice(0, 500)).slice(0, 20), q.slice(0, 40));
    }
  });
});

describe('parseSearchQuery', () => {
  test('reads query-string values', () => {
    assert.deepEqual(
      parseSearchQuery({
        q: 'harbour',
        collection: 'cities',
        creator: 'Ada Moreau',
        keyword: 'boats',
        format: 'jpg',
        createdAfter: '2024-01-01',
        createdBefore: '2024-02-01T12:00:00+01:00',
        orientation: 'landscape',
        rights: 'unrestricted',
        sort: '-created',
        limit: '20',
        cursor: 'abc',
        fields: 'ignored',
      }),
      {
        q: 'harbour',
        collection: 'cities',
        creator: 'Ada Moreau',
        keyword: 'boats',
        format: 'jpg',
        createdAfter: '2024-01-01',
        createdBefore: '2024-02-01T12:00:00+01:00',
        orientation: 'landscape',
        rights: 'unrestricted',
        sort: '-created',
        limit: 20,
        cursor: 'abc',
      },
    );
    assert.deepEqual(parseSearchQuery({ q: '', sort: '', limit: '' }), {});
    assert.deepEqual(parseSearchQuery({ limit: 7 }), { limit: 7 });
  });

  const bad: Array<[string, Record<string, unknown>]> = [
    ['unknown sort', { sort: 'size' }],
    ['bad orientation', { orientation: 'round' }],
    ['bad rights', { rights: 'free' }],
    ['not a date', { createdAfter: 'yesterday' }],
    ['impossible date', { createdBefore: '2024-02-30' }],
    ['month 13', { createdAfter: '2024-13-01' }],
    ['date-time without offset', { createdAfter: '2024-01-01T10:00:00' }],
    ['limit not a number', { limit: 'ten' }],
    ['limit not an integer', { limit: '1.5' }],
    ['limit a float number', { limit: 2.5 }],
    ['q too long', { q: 'x'.repeat(501) }],
    ['repeated parameter', { q: ['a', 'b'] }],
    ['format with a slash', { format: 'image/jpeg' }],
  ];
  for (const [name, raw] of bad) {
    test(`rejects ${name}`, () => assertProtocolError(() => parseSearchQuery(raw), 'ERR_VALIDATION'));
  }

  test('a q of exactly 500 characters is accepted', () => {
    assert.equal(parseSearchQuery({ q: 'x'.repeat(500) }).q?.length, 500);
  });

  test('search rejects bad values given directly', () => {
    assertProtocolError(() => library().search({ createdAfter: 'soon' }, everyone), 'ERR_VALIDATION');
    assertProtocolError(() => library().search({ sort: 'size' as 'title' }, everyone), 'ERR_VALIDATION');
  });
});
