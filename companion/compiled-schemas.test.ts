import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from 'typebox/value';
import { Asset, SearchPage } from '../shared/schemas/asset.ts';
import { DiscoveryDocument } from '../shared/schemas/discovery.ts';
import { checkSchema, useSchemaChecker } from '../shared/validate.ts';
import { installCompiledSchemaChecks } from './compiled-schemas.ts';

after(() => useSchemaChecker((schema, value) => Value.Check(schema, value)));

const asset = {
  id: 'a1',
  uri: 'imagine://images.example/images/a1',
  filename: 'a.jpg',
  mediaType: 'image/jpeg',
  created: '2026-01-02T03:04:05.000Z',
  updated: '2026-01-02T03:04:05.000Z',
  currentVersion: 'v1',
  metadata: { title: 'Harbour', keywords: ['sea'] },
  versions: [{ id: 'v1', number: 1, created: '2026-01-02T03:04:05.000Z', sha256: 'a'.repeat(64), size: 10, mediaType: 'image/jpeg' }],
  rights: { doNotDistribute: false, expired: false },
  collections: [],
  thumbnail: null,
  iiif: null,
};

test('the compiled checker agrees with the interpreter, valid and invalid alike; issues still come back', () => {
  installCompiledSchemaChecks();
  const cases: Array<[Parameters<typeof checkSchema>[0], unknown]> = [
    [Asset, asset],
    [Asset, { ...asset, created: 'yesterday' }],
    [Asset, { ...asset, uri: 'https://images.example/a1' }],
    [Asset, { ...asset, versions: [{ ...asset.versions[0], sha256: 'xyz' }] }],
    [Asset, { ...asset, metadata: { title: { nested: true } } }],
    [SearchPage, { items: [asset, asset], next: null }],
    [SearchPage, { items: [asset], next: 42 }],
    [SearchPage, 'not an object'],
    [DiscoveryDocument, { protocol: 'imagine' }],
  ];
  for (const [schema, value] of cases) {
    const compiled = checkSchema(schema, value);
    assert.equal(compiled.ok, Value.Check(schema, value), JSON.stringify(value).slice(0, 80));
    if (!compiled.ok) assert.ok(compiled.issues.length > 0);
  }
});
