import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildIndesignAdapter, INDESIGN_UNDO_NAMES, linkStatusOf, marginBox, sameEnum } from './indesign.ts';
import { fakeIndesign, FakeEnum, type FakeIndesignOptions } from './fakes/indesign.ts';
import { FUNCTION_ARG, type FakeCall } from './fakes/uxp.ts';
import type { ModuleLoader } from './host-modules.ts';

const JPG = '/Users/ana/Imagine/checkouts/sea.jpg';
const INDD = '/Users/ana/Layouts/brochure.indd';

function setup(options: Partial<Omit<FakeIndesignOptions, 'log'>> = {}) {
  const log: FakeCall[] = [];
  const id = fakeIndesign({ ...options, log });
  const load: ModuleLoader = (name) => {
    if (name === 'indesign') return id.module;
    throw new Error(`unexpected module ${name}`);
  };
  return { log, id, adapter: buildIndesignAdapter(load) };
}

const brochure = (extra: Partial<NonNullable<FakeIndesignOptions['document']>> = {}) => ({
  name: 'brochure.indd',
  path: INDD,
  ...extra,
});

const doScriptCall = (name: string): FakeCall => ({
  call: 'app.doScript',
  args: [FUNCTION_ARG, 'UXPSCRIPT', [], 'ENTIRE_SCRIPT', name],
});

test('sameEnum and linkStatusOf: enum objects, numbers and names all compare', () => {
  const normal = new FakeEnum('NORMAL', 1852797549);
  assert.ok(sameEnum(normal, new FakeEnum('NORMAL', 1852797549)));
  assert.ok(sameEnum(normal, 1852797549));
  assert.ok(!sameEnum(normal, new FakeEnum('LINK_MISSING', 1819109747)));
  assert.ok(!sameEnum({}, {}), 'plain objects are not equal by their "[object Object]" text');
  assert.ok(!sameEnum(undefined, null));
  const statuses = setup().id.module.LinkStatus;
  assert.equal(linkStatusOf(new FakeEnum('LINK_OUT_OF_DATE', 1819242340), statuses), 'out-of-date');
  assert.equal(linkStatusOf(1282237028, statuses), 'embedded');
  assert.equal(linkStatusOf('LINK_MISSING', statuses), 'missing');
  assert.equal(linkStatusOf(12345, statuses), 'inaccessible');
});

test('marginBox: the page inside its margins, or the page when margins leave nothing', () => {
  const page = { bounds: [0, 0, 297, 210], marginPreferences: { top: 20, left: 15, bottom: 20, right: 15 }, rectangles: { add: () => { throw new Error('unused'); } } };
  assert.deepEqual(marginBox(page), [20, 15, 277, 195]);
  assert.deepEqual(marginBox({ ...page, marginPreferences: { top: 200, left: 15, bottom: 200, right: 15 } }), [0, 0, 297, 210]);
});

test('openFile: app.open with the plain path', async () => {
  const { log, adapter } = setup();
  await adapter.openFile(INDD);
  assert.deepEqual(log, [{ call: 'app.open', args: [INDD] }]);
  assert.deepEqual(await adapter.activeDocument(), { path: INDD, name: 'brochure.indd', dirty: false });
});

test('openFile: a refusal is a clear error keeping the cause', async () => {
  const cause = new Error('Cannot open the file. Adobe InDesign may not support the file format.');
  const { adapter } = setup({ fail: (c) => (c === 'app.open' ? cause : undefined) });
  await assert.rejects(adapter.openFile(INDD), (error: Error) => {
    assert.equal(error.message, `InDesign refused to open ${INDD}: ${cause.message}`);
    assert.equal(error.cause, cause);
    return true;
  });
});

test('placeFile linked, no selection: one undo step, a frame filling the margins, place, fit', async () => {
  const { log, id, adapter } = setup({ document: brochure() });
  await adapter.placeFile(JPG, 'linked');
  assert.deepEqual(log, [
    doScriptCall('Place from Imagine'),
    { call: 'page.rectangles.add', args: [{ geometricBounds: [20, 15, 277, 195] }], scope: 'script' },
    { call: 'frame.place', args: [JPG], scope: 'script' },
    { call: 'frame.fit', args: ['PROPORTIONALLY'], scope: 'script' },
    { call: 'frame.fit', args: ['CENTER_CONTENT'], scope: 'script' },
  ]);
  assert.deepEqual(await adapter.listLinks(), [{ id: '500', path: JPG, status: 'normal', name: 'sea.jpg' }]);
  assert.equal(id.documents[0]?.modified, true);
});

test('placeFile embedded, into the selected rectangle: the link is embedded in the same undo step', async () => {
  const { log, adapter } = setup({ document: brochure(), selection: 'rectangle' });
  await adapter.placeFile(JPG, 'embedded');
  assert.deepEqual(log, [
    doScriptCall(INDESIGN_UNDO_NAMES.place),
    { call: 'frame.place', args: [JPG], scope: 'script' },
    { call: 'frame.fit', args: ['PROPORTIONALLY'], scope: 'script' },
    { call: 'frame.fit', args: ['CENTER_CONTENT'], scope: 'script' },
    { call: 'link.unlink', args: [500], scope: 'script' },
  ]);
  assert.deepEqual(await adapter.listLinks(), [{ id: '500', path: JPG, status: 'embedded', name: 'sea.jpg' }]);
});

test('placeFile: a selection that is not a frame gets a new frame', async () => {
  const { log, adapter } = setup({ document: brochure(), selection: 'text' });
  await adapter.placeFile(JPG, 'linked');
  assert.equal(log[1]?.call, 'page.rectangles.add');
});

test('placeFile: no document, no page, an unknown mode, and host failures are clear errors', async () => {
  const unknownMode = setup({ document: brochure() });
  await assert.rejects(unknownMode.adapter.placeFile(JPG, 'copied' as never), { message: 'unknown place mode "copied"' });
  assert.deepEqual(unknownMode.log, []);

  const none = setup();
  await assert.rejects(none.adapter.placeFile(JPG, 'linked'), { message: `InDesign has no open document to place ${JPG} into` });
  assert.deepEqual(none.log, []);

  const noPage = setup({ document: brochure(), noActivePage: true });
  await assert.rejects(noPage.adapter.placeFile(JPG, 'linked'), { message: `InDesign refused to place ${JPG}: InDesign has no active page` });

  const cause = new Error('Unsupported file format');
  const failing = setup({ document: brochure(), fail: (c) => (c === 'frame.place' ? cause : undefined) });
  await assert.rejects(failing.adapter.placeFile(JPG, 'linked'), (error: Error) => {
    assert.equal(error.message, `InDesign refused to place ${JPG}: Unsupported file format`);
    assert.equal(error.cause, cause);
    return true;
  });
});

test('placeFile: an error inside doScript is reported even when the host swallows it', async () => {
  const { adapter } = setup({
    document: brochure(),
    doScriptSwallowsErrors: true,
    fail: (c) => (c === 'frame.place' ? new Error('Unsupported file format') : undefined),
  });
  await assert.rejects(adapter.placeFile(JPG, 'linked'), { message: `InDesign refused to place ${JPG}: Unsupported file format` });
  const doScriptFails = setup({ document: brochure(), fail: (c) => (c === 'app.doScript' ? new Error('scripting disabled') : undefined) });
  await assert.rejects(doScriptFails.adapter.placeFile(JPG, 'linked'), { message: `InDesign refused to place ${JPG}: scripting disabled` });
});

test('activeDocument: none → null; unsaved → path null; modified → dirty', async () => {
  assert.equal(await setup().adapter.activeDocument(), null);
  const { adapter } = setup({ document: { name: 'Untitled-1', path: null, modified: true } });
  assert.deepEqual(await adapter.activeDocument(), { path: null, name: 'Untitled-1', dirty: true });
});

test('saveActiveDocument: doc.save(), returns the native path', async () => {
  const { log, id, adapter } = setup({ document: brochure({ modified: true }) });
  assert.equal(await adapter.saveActiveDocument(), INDD);
  assert.deepEqual(log, [{ call: 'document.save', args: [] }]);
  assert.equal(id.documents[0]?.modified, false);
});

test('saveActiveDocument: never saved → null without a dialog; no document or a refusal → clear errors', async () => {
  const unsaved = setup({ document: { name: 'Untitled-1', path: null } });
  assert.equal(await unsaved.adapter.saveActiveDocument(), null);
  assert.deepEqual(unsaved.log, []);
  await assert.rejects(setup().adapter.saveActiveDocument(), { message: 'InDesign has no open document to save' });
  const locked = setup({ document: brochure(), fail: (c) => (c === 'document.save' ? new Error('The file is locked') : undefined) });
  await assert.rejects(locked.adapter.saveActiveDocument(), { message: `InDesign refused to save ${INDD}: The file is locked` });
});

test('listLinks: every LinkStatus maps to the interface status', async () => {
  const { adapter } = setup({
    document: brochure({
      links: [
        { id: 11, filePath: '/a/normal.jpg', status: 'NORMAL' },
        { id: 12, filePath: '/a/old.psd', status: 'LINK_OUT_OF_DATE' },
        { id: 13, filePath: '/a/gone.tif', status: 'LINK_MISSING' },
        { id: 14, filePath: '/a/in.png', status: 'LINK_EMBEDDED' },
        { id: 15, filePath: 'https://x/y.jpg', status: 'LINK_INACCESSIBLE' },
      ],
    }),
  });
  assert.deepEqual(await adapter.listLinks(), [
    { id: '11', path: '/a/normal.jpg', status: 'normal', name: 'normal.jpg' },
    { id: '12', path: '/a/old.psd', status: 'out-of-date', name: 'old.psd' },
    { id: '13', path: '/a/gone.tif', status: 'missing', name: 'gone.tif' },
    { id: '14', path: '/a/in.png', status: 'embedded', name: 'in.png' },
    { id: '15', path: 'https://x/y.jpg', status: 'inaccessible', name: 'y.jpg' },
  ]);
  assert.deepEqual(await setup().adapter.listLinks(), []);
});

test('relink: link.relink(path) then link.update(), as one undo step', async () => {
  const { log, adapter } = setup({ document: brochure({ links: [{ id: 12, filePath: '/a/old.psd', status: 'LINK_MISSING' }] }) });
  await adapter.relink('12', JPG);
  assert.deepEqual(log, [
    doScriptCall('Relink from Imagine'),
    { call: 'link.relink', args: [12, JPG], scope: 'script' },
    { call: 'link.update', args: [12], scope: 'script' },
  ]);
  assert.deepEqual(await adapter.listLinks(), [{ id: '12', path: JPG, status: 'normal', name: 'sea.jpg' }]);
});

test('relink and updateLink: unknown links and refusals are clear errors', async () => {
  const { log, adapter } = setup({ document: brochure({ links: [{ id: 13, filePath: '/a/gone.tif', status: 'LINK_MISSING' }] }) });
  await assert.rejects(adapter.relink('99', JPG), { message: 'InDesign has no link 99 in brochure.indd' });
  await assert.rejects(adapter.updateLink('99'), { message: 'InDesign has no link 99 in brochure.indd' });
  assert.deepEqual(log, []);
  await assert.rejects(adapter.updateLink('13'), { message: 'InDesign refused to update gone.tif: Cannot update a missing link' });
  await assert.rejects(setup().adapter.relink('13', JPG), { message: 'InDesign has no open document to relink 13 in' });
});

test('updateLink: link.update() outside any script', async () => {
  const { log, adapter } = setup({ document: brochure({ links: [{ id: 12, filePath: '/a/old.psd', status: 'LINK_OUT_OF_DATE' }] }) });
  await adapter.updateLink('12');
  assert.deepEqual(log, [{ call: 'link.update', args: [12] }]);
  assert.equal((await adapter.listLinks())[0]?.status, 'normal');
});

test('onDocumentSaved: afterSave on the app, path from the event, unsubscribe removes the listener', async () => {
  const { log, id, adapter } = setup({ document: brochure() });
  const heard: string[] = [];
  const stop = adapter.onDocumentSaved((path) => heard.push(path));
  assert.deepEqual(log, [{ call: 'app.addEventListener', args: ['afterSave', FUNCTION_ARG] }]);

  id.emit('afterSave', { fullName: Promise.resolve({ nativePath: '/Users/ana/Layouts/copy.indd' }) });
  id.emit('afterSave', { target: { fullName: { nativePath: INDD } } });
  id.emit('afterSave', {}); // nothing on the event: the active document's path
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(heard, ['/Users/ana/Layouts/copy.indd', INDD, INDD]);

  stop();
  stop();
  assert.deepEqual(log.map((c) => c.call), ['app.addEventListener', 'app.removeEventListener']);
  assert.equal(id.listenerCount(), 0);
});

test('the adapter declares what InDesign can do', () => {
  const { adapter } = setup();
  assert.equal(adapter.name, 'indesign');
  assert.deepEqual(adapter.capabilities, { open: true, place: true, links: true });
});
