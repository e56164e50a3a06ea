import { test } from 'node:test';
import assert from 'node:assert/strict';
import { presentAsset, type PresentContext } from './present.ts';
import type { AssetRecord } from './records.ts';
import { privacyPolicyFor } from '../metadata/privacy.ts';

const asset: AssetRecord = {
  id: 'a1',
  filename: 'harbour.jpg',
  created: '2026-01-01T00:00:00.000Z',
  updated: '2026-01-01T00:00:00.000Z',
  collections: [],
  versions: [
    {
      id: 'v1',
      number: 1,
      created: '2026-01-01T00:00:00.000Z',
      sha256: 'a'.repeat(64),
      size: 10,
      mediaType: 'image/jpeg',
      metadata: { title: 'Harbour', city: 'Marseille', sublocation: 'Vieux-Port', country: 'France', countryCode: 'FRA' },
    },
  ],
};
const base: PresentContext = { origin: 'http://127.0.0.1:7420', apiBase: 'http://127.0.0.1:7420/api/v1', iiifBase: 'http://127.0.0.1:7420/iiif' };

test('members see where a picture was taken', () => {
  const out = presentAsset(asset, base);
  assert.equal(out.metadata.city, 'Marseille');
  assert.equal(out.metadata.sublocation, 'Vieux-Port');
});

test('public callers get the public privacy policy: no place names, the stored record untouched', () => {
  const out = presentAsset(asset, { ...base, privacy: privacyPolicyFor('public') });
  assert.equal(out.metadata.title, 'Harbour');
  assert.equal(out.metadata.city, undefined);
  assert.equal(out.metadata.sublocation, undefined);
  assert.equal(asset.versions[0]!.metadata.city, 'Marseille');
});
