import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectHost, hostNameFromUxp } from './index.ts';
import { hasHostRequire, loadHostModule, type ModuleLoader } from './host-modules.ts';
import { fakeUxp } from './fakes/uxp.ts';
import { fakePhotoshop } from './fakes/photoshop.ts';
import { fakeIndesign } from './fakes/indesign.ts';

function loaderFor(hostName: string): ModuleLoader {
  const log: never[] = [];
  const uxp = fakeUxp({ log, hostName });
  const modules = { uxp: uxp.module, photoshop: fakePhotoshop({ log, uxp }).module, indesign: fakeIndesign({ log }).module };
  return (name) => modules[name];
}

test('hostNameFromUxp compares case-insensitively and refuses other applications', () => {
  for (const name of ['Photoshop', 'photoshop', 'PHOTOSHOP', ' Adobe Photoshop ']) assert.equal(hostNameFromUxp(name), 'photoshop');
  for (const name of ['InDesign', 'indesign', 'INDESIGN']) assert.equal(hostNameFromUxp(name), 'indesign');
  for (const name of ['XD', 'Illustrator', 'photoshop-beta', '', undefined, 42]) assert.equal(hostNameFromUxp(name), null);
});

test('detectHost: the uxp host name picks the adapter', () => {
  assert.equal(detectHost({ load: loaderFor('Photoshop') }).name, 'photoshop');
  assert.equal(detectHost({ load: loaderFor('photoshop') }).name, 'photoshop');
  assert.equal(detectHost({ load: loaderFor('InDesign') }).name, 'indesign');
  assert.throws(() => detectHost({ load: loaderFor('XD') }), { message: 'Imagine runs in Photoshop and InDesign; this host reports itself as "XD"' });
});

test('detectHost: without UXP (browser preview, Node) the browser adapter runs', () => {
  assert.equal(hasHostRequire(), false, 'Node ESM has no global require');
  const host = detectHost({ browser: { log: [] } });
  assert.equal(host.name, 'browser');
  assert.throws(() => loadHostModule('photoshop'), /not running inside a UXP host/);
});

test('detectHost: UXP global require is found on globalThis', () => {
  const load = loaderFor('InDesign');
  (globalThis as { require?: unknown }).require = (name: 'uxp' | 'photoshop' | 'indesign') => load(name);
  try {
    assert.equal(hasHostRequire(), true);
    assert.equal(detectHost().name, 'indesign');
  } finally {
    delete (globalThis as { require?: unknown }).require;
  }
});
