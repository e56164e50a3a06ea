// Working file names of checkouts, and what counts as a settled checkout.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSettled, workingFilename } from './checkouts.ts';

describe('workingFilename', () => {
  test('title, start of the id, version, extension of the server file', () => {
    assert.equal(workingFilename({ title: 'Harbour at dawn', filename: 'IMG_01.JPG', assetId: 'a1b2c3d4', version: 'v3' }), 'harbour-at-dawn_a1b2_v3.jpg');
  });
  test('language alternatives, accents and punctuation', () => {
    assert.equal(
      workingFilename({ title: { 'x-default': 'Café — Nuit / Été!' }, filename: 'x.tif', assetId: 'zz', version: 'v12' }),
      'cafe-nuit-ete_zz_v12.tif',
    );
  });
  test('no title: the file name; nothing usable: "image"; proxies are JPEGs', () => {
    assert.equal(workingFilename({ filename: 'Boats 2.psd', assetId: 'abcd', version: 'v1' }), 'boats-2_abcd_v1.psd');
    assert.equal(workingFilename({ title: '***', filename: '..', assetId: '----', version: 'v1' }), 'image_x_v1');
    assert.equal(workingFilename({ title: 'A', filename: 'a.psd', assetId: 'abcd', version: 'v1', rendition: 'proxy' }), 'a_abcd_v1_proxy.jpg');
  });
  test('never a path', () => {
    const name = workingFilename({ title: '../../etc/passwd', filename: '../x.jpg', assetId: 'a/b', version: '../v1' });
    assert.ok(!name.includes('/'), name);
    assert.ok(name.length < 100);
  });
});

test('isSettled', () => {
  const base = { progress: { done: 0, total: null } } as never;
  assert.equal(isSettled({ ...(base as object), state: 'downloading' } as never), false);
  for (const state of ['ready', 'failed', 'pushed', 'conflict']) assert.equal(isSettled({ state } as never), true);
});
