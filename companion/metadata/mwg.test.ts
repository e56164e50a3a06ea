import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { iptcDigestState, isBlank, recoverTruncated, reconcile } from './mwg.ts';

describe('IPTC digest state', () => {
  test('no IIM, no digest, in sync, out of sync', () => {
    assert.equal(iptcDigestState(undefined, 'abc'), 'no-iim');
    assert.equal(iptcDigestState('abc', undefined), 'no-digest');
    assert.equal(iptcDigestState('ABC', 'abc'), 'in-sync');
    assert.equal(iptcDigestState('abc', 'def'), 'out-of-sync');
  });
});

describe('MWG reconciliation (MWG Guidelines 2.0 §5, as ExifTool implements them)', () => {
  const all = { exif: 'exif', iim: 'iim', xmp: 'xmp' };

  test('a non-blank EXIF value wins in every state', () => {
    for (const state of ['no-iim', 'no-digest', 'in-sync', 'out-of-sync'] as const) {
      assert.deepEqual(reconcile(all, state), { value: 'exif', source: 'exif' });
    }
    assert.deepEqual(reconcile({ ...all, exif: '   ' }, 'in-sync'), { value: 'xmp', source: 'xmp' });
    assert.deepEqual(reconcile({ ...all, exif: '    :  :     :  :  ' }, 'in-sync'), { value: 'xmp', source: 'xmp' });
  });

  test('XMP wins without IIM, without a digest, and with a matching digest', () => {
    for (const state of ['no-iim', 'no-digest', 'in-sync'] as const) {
      assert.deepEqual(reconcile({ iim: 'iim', xmp: 'xmp' }, state), { value: 'xmp', source: 'xmp' });
    }
  });

  test('IIM wins when the digest does not match', () => {
    assert.deepEqual(reconcile({ iim: 'iim', xmp: 'xmp' }, 'out-of-sync'), { value: 'iim', source: 'iim' });
  });

  test('IIM fills in where XMP has nothing; XMP where IIM has nothing (even out of sync)', () => {
    assert.deepEqual(reconcile({ iim: 'iim' }, 'in-sync'), { value: 'iim', source: 'iim' });
    assert.deepEqual(reconcile({ xmp: 'xmp' }, 'out-of-sync'), { value: 'xmp', source: 'xmp' });
    assert.equal(reconcile({}, 'in-sync'), undefined);
    assert.equal(reconcile({ iim: [], xmp: '' }, 'no-digest'), undefined);
  });

  test('an IIM value cut at its limit is restored from XMP', () => {
    const full = 'A'.repeat(40);
    assert.equal(recoverTruncated(full.slice(0, 32), full, 32), full);
    assert.equal(recoverTruncated('B'.repeat(32), full, 32), 'B'.repeat(32), 'not a prefix');
    assert.equal(recoverTruncated('A'.repeat(20), full, 32), 'A'.repeat(20), 'not at the limit');
    // Cut at a character boundary a few bytes short of the limit (UTF-8).
    const accents = 'é'.repeat(20);
    assert.equal(recoverTruncated('é'.repeat(15) + 'A', accents + 'A', 32), 'é'.repeat(15) + 'A');
    assert.equal(recoverTruncated('é'.repeat(15), 'é'.repeat(20), 32), 'é'.repeat(20));
    const long = 'K'.repeat(70);
    assert.deepEqual(recoverTruncated(['x', long.slice(0, 64)], ['x', long], 64), ['x', long]);
    assert.deepEqual(reconcile({ iim: full.slice(0, 32), xmp: full }, 'out-of-sync', 32), { value: full, source: 'iim' });
  });

  test('isBlank', () => {
    assert.ok(isBlank(undefined));
    assert.ok(isBlank('  '));
    assert.ok(isBlank([]));
    assert.ok(isBlank(['', ' ']));
    assert.ok(!isBlank(0));
    assert.ok(!isBlank(false));
    assert.ok(!isBlank(['a']));
  });
});
