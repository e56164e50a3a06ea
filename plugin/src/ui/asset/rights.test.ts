import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needsConfirmation, rightsWarnings } from './rights.ts';

const now = new Date('2026-06-01T12:00:00Z');

test('unrestricted rights: nothing to say', () => {
  assert.deepEqual(rightsWarnings({ doNotDistribute: false, expired: false }, now), []);
  assert.deepEqual(rightsWarnings(undefined, now), []);
});

test('do-not-distribute and an expired licence need confirming', () => {
  const w = rightsWarnings({ doNotDistribute: true, expired: true, licenseEndDate: '2026-01-31' }, now);
  assert.deepEqual(w.map((x) => x.kind), ['do-not-distribute', 'expired']);
  assert.match(w[1]!.message, /2026-01-31/);
  assert.ok(needsConfirmation(w));
});

test('a licence that ended since the server said so is expired here too', () => {
  const w = rightsWarnings({ doNotDistribute: false, expired: false, licenseEndDate: '2026-05-31' }, now);
  assert.deepEqual(w.map((x) => x.kind), ['expired']);
  // The end date counts to the end of its day.
  assert.deepEqual(rightsWarnings({ doNotDistribute: false, expired: false, licenseEndDate: '2026-06-01' }, now).map((x) => x.kind), ['expires-soon']);
});

test('a licence ending soon and usage terms are information only', () => {
  const w = rightsWarnings({ doNotDistribute: false, expired: false, licenseEndDate: '2026-06-10', usageTerms: ' Editorial use only ' }, now);
  assert.deepEqual(w.map((x) => [x.kind, x.level]), [['expires-soon', 'info'], ['usage-terms', 'info']]);
  assert.match(w[0]!.message, /in 10 days/);
  assert.equal(w[1]!.message, 'Usage terms: Editorial use only');
  assert.equal(needsConfirmation(w), false);
  assert.deepEqual(rightsWarnings({ doNotDistribute: false, expired: false, licenseEndDate: '2027-01-01' }, now), []);
  assert.deepEqual(rightsWarnings({ doNotDistribute: false, expired: false, licenseEndDate: 'not a date' }, now), []);
});
