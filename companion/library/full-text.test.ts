import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AssetMetadata } from '../../shared/schemas/asset.ts';
import { seededRandom } from '../../shared/seeded-random.ts';
import { FullText, newMiniSearch, type TextDocument, type TextMatches } from './full-text.ts';

// A seeded library with skewed word frequencies (common and rare terms, accents, ties).

const SUBJECTS = 'harbour harbor lighthouse market bridge alley cathédrale mountain lake forest meadow river beach dune canyon village station ferry boat baker dancer garden tower castle fox deer'.split(' ');
const WORDS = 'quiet golden misty early old new bright dark wet frozen crowded empty narrow wide rusty painted dawn dusk night rain fog snow travel nature people light shadow sky sea Éclat Valparaíso'.split(' ');

function makeDocs(count: number, seed = 1): TextDocument[] {
  const random = seededRandom(seed);
  const skewed = <T>(list: readonly T[]): T => list[Math.floor(list.length * random() ** 2)] as T;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(list.length * random())] as T;
  return Array.from({ length: count }, (_, slot) => makeDoc(slot, random, skewed, pick));
}

function makeDoc(slot: number, random: () => number, skewed: <T>(l: readonly T[]) => T, pick: <T>(l: readonly T[]) => T): TextDocument {
  const metadata: AssetMetadata = {
    title: `${pick(WORDS)} ${skewed(SUBJECTS)} at ${skewed(WORDS)}`,
    description: `The ${pick(WORDS)} ${pick(SUBJECTS)} near the ${pick(SUBJECTS)} with ${pick(WORDS)} ${pick(WORDS)}.`,
    keywords: [skewed(SUBJECTS), skewed(WORDS), ...(random() < 0.5 ? [skewed(WORDS)] : [])],
    creator: [pick(['Ada Moreau', 'Kenji Sato', 'Émile Zola'])],
    ...(random() < 0.3 ? { headline: `${pick(WORDS)} ${pick(SUBJECTS)}` } : {}),
  };
  return { slot, filename: random() < 0.5 ? `IMG_${String(Math.floor(random() * 100)).padStart(4, '0')}.jpg` : `${pick(SUBJECTS)}-${slot}.jpg`, metadata };
}

/** `MiniSearch#search`'s order: descending score, stably. */
function ranked(matches: TextMatches): Array<[number, number]> {
  const positions = Array.from(matches.slots.keys());
  positions.sort((a, b) => (matches.scores[b] as number) - (matches.scores[a] as number));
  return positions.map((k) => [matches.slots[k] as number, matches.scores[k] as number]);
}

const QUERIES = [
  'harbour', // common, prefix of nothing else, fuzzy to 'harbor'
  'harbor',
  'har', // prefix
  'harb',
  'lig', // prefix of one term
  'lighthuose', // typo: fuzzy
  'cathedrale', // accents folded
  'CATHÉDRALE',
  'eclat',
  'valparaiso dusk',
  'quiet harbour', // two terms, the last a prefix
  'harbour quiet',
  'old harbour at dusk', // stop word dropped
  'the', // only a stop word
  'dusk dusk', // repeated term
  'ada moreau',
  'emile',
  'img', // file names
  'img_0042',
  '0042',
  'nothing-matches-this',
  'ha', // too short for prefix
  'fo',
  'fox',
  'golden misty rain fog harbour',
];

describe('FullText against plain MiniSearch', () => {
  const docs = makeDocs(2500);
  const text = new FullText<TextDocument>();
  text.addAll(docs);
  const plain = newMiniSearch<TextDocument>();
  plain.addAll(docs);

  test('every kind of query: same matches, same scores bit for bit, same order', () => {
    for (const pass of ['cold', 'kept']) {
      for (const q of QUERIES) {
        const mine = ranked(text.matches(q, docs.length));
        const theirs = plain.search(q).map((r): [number, number] => [r.id as number, r.score]);
        assert.deepEqual(mine, theirs, `${pass}: ${q}`);
      }
    }
    assert.ok(text.keptPostings > 0);
  });

  test('many terms, repeated terms, rare terms after common ones: still what MiniSearch gives', () => {
    const fresh = new FullText<TextDocument>();
    fresh.addAll(docs);
    for (const q of [
      'harbour harbour harbour harbour harbour harbour harbour harbour harbour harbour',
      'harbour lighthouse dusk harbour lighthouse dusk quiet',
      'dusk fox', // the second term scored for the few assets left
      'fox dusk',
      'img harbour dusk quiet old golden misty rain fog snow',
      Array.from({ length: 60 }, (_, i) => SUBJECTS[i % SUBJECTS.length]).join(' '),
    ]) {
      const mine = ranked(fresh.matches(q, docs.length));
      const theirs = plain.search(q).map((r): [number, number] => [r.id as number, r.score]);
      assert.deepEqual(mine, theirs, q);
    }
    assert.deepEqual(fresh.matches('', docs.length).slots.length, 0);
  });
});

describe('FullText after writes', () => {
  test('add, edit, delete and re-add are reflected at once, with exact matches', () => {
    const random = seededRandom(9);
    const skewed = <T>(list: readonly T[]): T => list[Math.floor(list.length * random() ** 2)] as T;
    const pick = <T>(list: readonly T[]): T => list[Math.floor(list.length * random())] as T;
    const docs = makeDocs(1500, 3);
    const current = new Map<number, TextDocument>(docs.map((d) => [d.slot, d]));
    const text = new FullText<TextDocument>();
    text.addAll(docs);
    const queries = ['harbour', 'harb', 'lighthuose', 'quiet harbour', 'fox', 'zebra', 'zebra crossing', 'dusk', 'img'];
    const check = (label: string) => {
      // Matches must be those of a fresh MiniSearch over the same documents. Scores are
      // compared with the MiniSearch that was written to: those of terms the writes touched are
      // exact, the others may have drifted by the change in document count and field lengths.
      const fresh = newMiniSearch<TextDocument>();
      fresh.addAll([...current.values()]);
      for (const q of queries) {
        const mine = ranked(text.matches(q, 2000));
        assert.deepEqual(
          mine.map(([slot]) => slot).sort((a, b) => a - b),
          fresh.search(q).map((r) => r.id as number).sort((a, b) => a - b),
          `${label}: matches of ${q}`,
        );
        const score = new Map(text.search(q).map((r) => [r.id as number, r.score]));
        for (const [slot, value] of mine) {
          const want = score.get(slot) as number;
          assert.ok(Math.abs(value - want) <= 0.02 * want, `${label}: score of ${slot} for ${q}: ${value} vs ${want}`);
        }
      }
    };
    for (const q of queries) text.matches(q, 2000); // keep values for all of them
    check('kept');

    // Add a document with a new term, and one with a common one.
    const zebra: TextDocument = { slot: 1500, filename: 'z.jpg', metadata: { title: 'Zebra crossing', keywords: ['harbour'] } };
    text.add(zebra);
    text.forget(zebra);
    current.set(1500, zebra);
    assert.deepEqual(ranked(text.matches('zebra', 2000)).map(([s]) => s), [1500]);
    check('after add');

    // Edit: its text changes entirely.
    const edited: TextDocument = { slot: 1500, filename: 'z.jpg', metadata: { title: 'Fox at dusk' } };
    text.discard(zebra);
    text.add(edited);
    text.forget(edited);
    current.set(1500, edited);
    assert.deepEqual(text.matches('zebra', 2000)?.slots.length, 0, 'the old text no longer matches');
    assert.ok(text.matches('fox', 2000)?.slots.includes(1500), 'the new text matches');
    check('after edit');

    // Delete, then re-add the same slot with other text.
    text.discard(edited);
    current.delete(1500);
    assert.equal(text.matches('fox dusk', 2000)?.slots.includes(1500), false);
    check('after delete');
    const again: TextDocument = { slot: 1500, filename: 'again.jpg', metadata: { title: 'Zebra again' } };
    text.add(again);
    text.forget(again);
    current.set(1500, again);
    assert.deepEqual(ranked(text.matches('zebra', 2000)).map(([s]) => s), [1500]);
    check('after re-add');

    // Many random edits.
    for (let i = 0; i < 200; i++) {
      const slot = Math.floor(random() * 1500);
      const old = current.get(slot);
      if (old) text.discard(old);
      if (random() < 0.2) {
        current.delete(slot);
        continue;
      }
      const doc = makeDoc(slot, random, skewed, pick);
      text.add(doc);
      text.forget(doc);
      current.set(slot, doc);
    }
    check('after 200 random writes');
  });

  test('a query after writes to the terms it uses gives exactly what MiniSearch gives', () => {
    const docs = makeDocs(800, 5);
    const text = new FullText<TextDocument>();
    text.addAll(docs);
    assert.ok((text.matches('harbour', 1000)?.slots.length ?? 0) > 0);
    // Every document with 'harbour' rewritten: every kept value of 'harbour' goes.
    for (const doc of docs) {
      if (!JSON.stringify(doc).includes('harbour')) continue;
      text.discard(doc);
      const next = { ...doc, metadata: { ...doc.metadata, title: `harbour ${String(doc.metadata?.title)}` } };
      text.add(next);
      text.forget(next);
    }
    const mine = ranked(text.matches('harbour', 1000));
    const theirs = text.search('harbour').map((r): [number, number] => [r.id as number, r.score]);
    assert.deepEqual(mine, theirs);
  });
});
