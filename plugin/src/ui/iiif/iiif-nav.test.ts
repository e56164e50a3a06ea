import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IiifSource } from '../../../../shared/schemas/agent.ts';
import { back, breadcrumb, canBrowse, current, isBrowsable, kindLabel, push } from './iiif-nav.ts';

const collection: IiifSource = { url: 'https://x.example/c', kind: 'collection', label: 'Maps', items: [{ kind: 'manifest', label: 'Map 1', id: 'https://x.example/m1', thumbnailUrl: null }] };
const manifest: IiifSource = { url: 'https://x.example/m1', kind: 'manifest', label: 'Map 1', items: [{ kind: 'image', label: 'p. 1', id: 'https://x.example/iiif/1', thumbnailUrl: '/agent/v1/iiif/image?url=x', width: 4000, height: 3000 }] };

test('only http(s) URLs are browsed', () => {
  assert.equal(canBrowse('').ok, false);
  assert.equal(canBrowse('not a url').ok, false);
  assert.equal(canBrowse('file:///etc/passwd').ok, false);
  assert.equal(canBrowse(' https://iiif.example/manifest.json ').ok, true);
});

test('a trail through a collection into a manifest and back', () => {
  let trail = push({ stack: [] }, collection);
  assert.ok(isBrowsable(collection.items[0]!));
  trail = push(trail, manifest);
  assert.equal(breadcrumb(trail), 'Maps › Map 1');
  assert.equal(current(trail)?.kind, 'manifest');
  assert.equal(kindLabel(manifest.items[0]!), '4000 × 3000');
  assert.equal(isBrowsable(manifest.items[0]!), false);
  trail = back(trail);
  assert.equal(current(trail)?.label, 'Maps');
  assert.equal(current(back(trail)), undefined);
});
