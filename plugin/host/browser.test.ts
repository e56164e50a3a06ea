import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBrowserAdapter, type HostCall } from './browser.ts';

const PSD = '/Users/ana/Imagine/checkouts/dunes-v3.psd';
const JPG = '/Users/ana/Imagine/checkouts/sea.jpg';

test('records every call, with its exact arguments, in window.__imagineHostCalls by default', async () => {
  globalThis.__imagineHostCalls = undefined;
  const adapter = buildBrowserAdapter();
  await adapter.openFile(PSD);
  await adapter.placeFile(JPG, 'linked');
  await adapter.listLinks();
  assert.equal(adapter.calls, globalThis.__imagineHostCalls);
  assert.deepEqual(globalThis.__imagineHostCalls, [
    { method: 'openFile', args: [PSD] },
    { method: 'placeFile', args: [JPG, 'linked'] },
    { method: 'listLinks', args: [] },
  ] satisfies HostCall[]);
  globalThis.__imagineHostCalls = undefined;
});

test('simulates a document: open, place (dirty), save (clean, listeners hear the path)', async () => {
  const log: HostCall[] = [];
  const adapter = buildBrowserAdapter({ log });
  assert.equal(await adapter.activeDocument(), null);
  await adapter.openFile(PSD);
  assert.deepEqual(await adapter.activeDocument(), { path: PSD, name: 'dunes-v3.psd', dirty: false });

  await adapter.placeFile(JPG, 'linked');
  await adapter.placeFile('/x/logo.ai', 'embedded');
  assert.deepEqual(await adapter.listLinks(), [
    { id: '1', path: JPG, status: 'normal', name: 'sea.jpg' },
    { id: '2', path: '/x/logo.ai', status: 'embedded', name: 'logo.ai' },
  ]);
  assert.equal((await adapter.activeDocument())?.dirty, true);

  const heard: string[] = [];
  const stop = adapter.onDocumentSaved((path) => heard.push(path));
  assert.equal(await adapter.saveActiveDocument(), PSD);
  assert.deepEqual(heard, [PSD]);
  assert.equal((await adapter.activeDocument())?.dirty, false);
  stop();
  await adapter.saveActiveDocument();
  assert.deepEqual(heard, [PSD]);

  // Opening another file replaces the document, as a host would switch the active one.
  await adapter.openFile(JPG);
  assert.deepEqual(await adapter.listLinks(), []);
  assert.deepEqual(
    log.map((c) => c.method),
    ['activeDocument', 'openFile', 'activeDocument', 'placeFile', 'placeFile', 'listLinks', 'activeDocument',
      'onDocumentSaved', 'saveActiveDocument', 'activeDocument', 'saveActiveDocument', 'openFile', 'listLinks'],
  );
});

test('relink and update behave like a host: status back to normal, document dirty', async () => {
  const adapter = buildBrowserAdapter({ log: [], document: { path: '/l/brochure.indd' } });
  await adapter.placeFile('/a/v1.jpg', 'linked');
  adapter.simulate.setLinkStatus('1', 'out-of-date');
  await adapter.updateLink('1');
  assert.equal((await adapter.listLinks())[0]?.status, 'normal');

  adapter.simulate.setLinkStatus('1', 'missing');
  await assert.rejects(adapter.updateLink('1'), { message: 'The preview cannot update v1.jpg: the file is missing' });
  await adapter.relink('1', '/a/v2.jpg');
  assert.deepEqual(await adapter.listLinks(), [{ id: '1', path: '/a/v2.jpg', status: 'normal', name: 'v2.jpg' }]);
});

test('failures: no document, unknown links, empty paths, unknown modes, unsaved documents', async () => {
  const log: HostCall[] = [];
  const adapter = buildBrowserAdapter({ log });
  await assert.rejects(adapter.placeFile(JPG, 'linked'), { message: `The preview has no open document to place ${JPG} into` });
  await assert.rejects(adapter.saveActiveDocument(), { message: 'The preview has no open document to save' });
  await assert.rejects(adapter.openFile(''), /empty value/);
  assert.deepEqual(log[0], { method: 'placeFile', args: [JPG, 'linked'] }, 'refused calls are recorded too');

  const untitled = buildBrowserAdapter({ log: [], document: { path: null } });
  assert.deepEqual(await untitled.activeDocument(), { path: null, name: 'Untitled-1', dirty: false });
  assert.equal(await untitled.saveActiveDocument(), null);
  await assert.rejects(untitled.placeFile(JPG, 'copied' as never), { message: 'unknown place mode "copied"' });
  await assert.rejects(untitled.relink('7', JPG), { message: 'The preview document has no link 7' });
  untitled.simulate.closeDocument();
  assert.equal(await untitled.activeDocument(), null);
});
