import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPhotoshopAdapter, fileUrlForPath, PHOTOSHOP_COMMANDS } from './photoshop.ts';
import { fakeUxp, FUNCTION_ARG, type FakeCall } from './fakes/uxp.ts';
import { fakePhotoshop, type FakeDocumentInit, type FakeLayer, type FakePhotoshopOptions } from './fakes/photoshop.ts';
import type { ModuleLoader } from './host-modules.ts';

const PSD = '/Users/ana/Imagine/checkouts/dunes-v3.psd';
const JPG = '/Users/ana/Imagine/checkouts/sea.jpg';

function setup(options: Partial<Omit<FakePhotoshopOptions, 'log' | 'uxp'>> & { files?: string[] } = {}) {
  const log: FakeCall[] = [];
  const uxp = fakeUxp({ log, hostName: 'Photoshop', files: options.files ?? [PSD, JPG] });
  const ps = fakePhotoshop({ ...options, log, uxp });
  const load: ModuleLoader = (name) => {
    if (name === 'photoshop') return ps.module;
    if (name === 'uxp') return uxp.module;
    throw new Error(`unexpected module ${name}`);
  };
  return { log, ps, uxp, adapter: buildPhotoshopAdapter(load) };
}

const openDoc = (init: Partial<FakeDocumentInit> = {}): FakeDocumentInit => ({
  id: 7,
  name: 'layout.psd',
  path: '/Users/ana/layout.psd',
  ...init,
});

const calls = (log: FakeCall[]) => log.map((c) => c.call);

test('fileUrlForPath: POSIX and Windows paths become file: URLs; relative ones are refused', () => {
  assert.equal(fileUrlForPath('/Users/a/b c.psd'), 'file:/Users/a/b c.psd');
  assert.equal(fileUrlForPath('C:\\Users\\a\\b.psd'), 'file:/C:/Users/a/b.psd');
  assert.throws(() => fileUrlForPath('b.psd'), /absolute native path, got "b.psd"/);
  assert.throws(() => fileUrlForPath(''), /empty/);
});

test('openFile: entry from a file: URL, then app.open inside executeAsModal', async () => {
  const { log, adapter } = setup();
  await adapter.openFile(PSD);
  assert.deepEqual(log, [
    { call: 'uxp.storage.localFileSystem.getEntryWithUrl', args: [`file:${PSD}`] },
    { call: 'core.executeAsModal', args: [FUNCTION_ARG, { commandName: PHOTOSHOP_COMMANDS.open }] },
    { call: 'app.open', args: [{ name: 'dunes-v3.psd', nativePath: PSD }], scope: 'modal' },
  ]);
  assert.deepEqual(await adapter.activeDocument(), { path: PSD, name: 'dunes-v3.psd', dirty: false });
});

test('openFile: a refusal from Photoshop is wrapped in a clear error that keeps the cause', async () => {
  const cause = new Error('Could not open the file because it is not the right kind of document.');
  const { adapter } = setup({ fail: (call) => (call === 'app.open' ? cause : undefined) });
  await assert.rejects(adapter.openFile(PSD), (error: Error) => {
    assert.equal(error.message, `Photoshop refused to open ${PSD}: ${cause.message}`);
    assert.equal(error.cause, cause);
    return true;
  });
});

test('openFile: a file that UXP cannot reach is reported before any modal starts', async () => {
  const { log, adapter } = setup({ files: [] });
  await assert.rejects(adapter.openFile(PSD), new RegExp(`^Error: Photoshop refused to open ${PSD}: cannot read the file: Could not find`));
  assert.deepEqual(calls(log), ['uxp.storage.localFileSystem.getEntryWithUrl']);
});

test('openFile: hosts that throw strings still give a readable message', async () => {
  const { adapter } = setup({ fail: (call) => (call === 'core.executeAsModal' ? 'host is busy' : undefined) });
  await assert.rejects(adapter.openFile(PSD), { message: `Photoshop refused to open ${PSD}: host is busy` });
});

test('placeFile linked: session token, then the placeEvent descriptor inside executeAsModal', async () => {
  const { log, adapter } = setup({ document: openDoc() });
  await adapter.placeFile(JPG, 'linked');
  assert.deepEqual(log.slice(0, 4), [
    { call: 'uxp.storage.localFileSystem.getEntryWithUrl', args: [`file:${JPG}`] },
    { call: 'uxp.storage.localFileSystem.createSessionToken', args: [{ name: 'sea.jpg', nativePath: JPG }] },
    { call: 'core.executeAsModal', args: [FUNCTION_ARG, { commandName: 'Place from Imagine' }] },
    {
      call: 'action.batchPlay',
      args: [
        [
          {
            _obj: 'placeEvent',
            null: { _path: 'session-token-1', _kind: 'local' },
            linked: true,
            _options: { dialogOptions: 'silent' },
          },
        ],
        {},
      ],
      scope: 'modal',
    },
  ]);
  assert.equal(log.length, 4);
  const links = await adapter.listLinks();
  assert.deepEqual(links, [{ id: '100', path: JPG, status: 'normal', name: 'sea.jpg' }]);
  assert.equal((await adapter.activeDocument())?.dirty, true);
});

test('placeFile embedded: linked is false, and the embedded smart object is not listed as a link', async () => {
  const { log, adapter } = setup({ document: openDoc() });
  await adapter.placeFile(JPG, 'embedded');
  const place = log.find((c) => c.call === 'action.batchPlay');
  assert.equal(((place?.args[0] as Record<string, unknown>[])[0] as { linked: boolean }).linked, false);
  assert.deepEqual(await adapter.listLinks(), []);
});

test('placeFile: an unknown mode is refused before Photoshop is asked anything', async () => {
  const { log, adapter } = setup({ document: openDoc() });
  await assert.rejects(adapter.placeFile(JPG, 'copied' as never), { message: 'unknown place mode "copied"' });
  assert.deepEqual(log, []);
});

test('placeFile: no open document is a clear error, and nothing is asked of Photoshop', async () => {
  for (const activeDocumentThrows of [false, true]) {
    const { log, adapter } = setup({ document: null, activeDocumentThrows });
    await assert.rejects(adapter.placeFile(JPG, 'linked'), { message: `Photoshop has no open document to place ${JPG} into` });
    assert.deepEqual(log, []);
  }
});

test('placeFile: an error result from batchPlay (not thrown) becomes an error', async () => {
  const { adapter } = setup({ document: openDoc(), errorResults: ['placeEvent'] });
  await assert.rejects(
    adapter.placeFile(JPG, 'linked'),
    { message: `Photoshop refused to place ${JPG}: placeEvent failed: The command “placeEvent” is not currently available.` },
  );
});

test('activeDocument: null without documents (also when the getter throws), path null when never saved', async () => {
  assert.equal(await setup().adapter.activeDocument(), null);
  assert.equal(await setup({ activeDocumentThrows: true }).adapter.activeDocument(), null);
  const { adapter } = setup({ document: openDoc({ name: 'Untitled-1', path: '', saved: false }) });
  assert.deepEqual(await adapter.activeDocument(), { path: null, name: 'Untitled-1', dirty: true });
});

test('saveActiveDocument: document.save inside executeAsModal, returns the path', async () => {
  const { log, ps, adapter } = setup({ document: openDoc({ saved: false }) });
  assert.equal(await adapter.saveActiveDocument(), '/Users/ana/layout.psd');
  assert.deepEqual(log, [
    { call: 'core.executeAsModal', args: [FUNCTION_ARG, { commandName: 'Save for Imagine' }] },
    { call: 'document.save', args: [], scope: 'modal' },
  ]);
  assert.equal(ps.documents[0]?.saved, true);
});

test('saveActiveDocument: a never-saved document answers null without opening a Save dialog', async () => {
  const { log, adapter } = setup({ document: openDoc({ path: '', saved: false }) });
  assert.equal(await adapter.saveActiveDocument(), null);
  assert.deepEqual(log, []);
});

test('saveActiveDocument: failures are clear errors', async () => {
  await assert.rejects(setup().adapter.saveActiveDocument(), { message: 'Photoshop has no open document to save' });
  const { adapter } = setup({ document: openDoc(), fail: (c) => (c === 'document.save' ? new Error('Disk full') : undefined) });
  await assert.rejects(adapter.saveActiveDocument(), { message: 'Photoshop refused to save /Users/ana/layout.psd: Disk full' });
});

test('listLinks: linked smart objects anywhere in the layer tree, with their status; exact get descriptors', async () => {
  const layers: FakeLayer[] = [
    { id: 1, name: 'Background', kind: 'pixel' },
    {
      id: 2,
      name: 'Group',
      kind: 'group',
      layers: [
        { id: 3, name: 'sea', kind: 'smartObject', smartObject: { linked: true, link: { _path: JPG, _kind: 'local' }, fileReference: 'sea.jpg' } },
        { id: 4, name: 'gone', kind: 'smartObject', smartObject: { linked: true, link: { _path: '/x/gone.tif', _kind: 'local' }, fileReference: 'gone.tif', linkMissing: true } },
      ],
    },
    { id: 5, name: 'changed', kind: 'smartObject', smartObject: { linked: true, link: { _path: PSD, _kind: 'local' }, fileReference: '', linkChanged: true } },
    { id: 6, name: 'embedded', kind: 'smartObject', smartObject: { linked: false, fileReference: 'logo.ai' } },
  ];
  const { log, adapter } = setup({ document: openDoc({ layers }) });
  assert.deepEqual(await adapter.listLinks(), [
    { id: '3', path: JPG, status: 'normal', name: 'sea.jpg' },
    { id: '4', path: '/x/gone.tif', status: 'missing', name: 'gone.tif' },
    { id: '5', path: PSD, status: 'out-of-date', name: 'dunes-v3.psd' },
  ]);
  assert.deepEqual(
    log.map((c) => c.args[0]),
    [3, 4, 5, 6].map((id) => [
      { _obj: 'get', _target: [{ _ref: 'layer', _id: id }, { _ref: 'document', _id: 7 }], _options: { dialogOptions: 'silent' } },
    ]),
  );
  assert.ok(log.every((c) => c.call === 'action.batchPlay' && c.scope === undefined), 'reads need no modal');
});

test('listLinks: no document → no links; a failing get → a clear error', async () => {
  assert.deepEqual(await setup().adapter.listLinks(), []);
  const layers: FakeLayer[] = [{ id: 9, name: 'so', kind: 'smartObject' }];
  const { adapter } = setup({ document: openDoc({ layers }), fail: (c) => (c === 'batchPlay:get' ? new Error('boom') : undefined) });
  await assert.rejects(adapter.listLinks(), { message: 'Photoshop could not list the links of layout.psd: boom' });
});

test('relink: selects the layer, then placedLayerRelinkToFile with a session token, in one modal', async () => {
  const layers: FakeLayer[] = [
    { id: 3, name: 'sea', kind: 'smartObject', smartObject: { linked: true, link: { _path: '/old/sea.jpg', _kind: 'local' }, fileReference: 'sea.jpg' } },
  ];
  const { log, adapter } = setup({ document: openDoc({ layers }) });
  await adapter.relink('3', JPG);
  assert.deepEqual(log, [
    { call: 'uxp.storage.localFileSystem.getEntryWithUrl', args: [`file:${JPG}`] },
    { call: 'uxp.storage.localFileSystem.createSessionToken', args: [{ name: 'sea.jpg', nativePath: JPG }] },
    { call: 'core.executeAsModal', args: [FUNCTION_ARG, { commandName: 'Relink from Imagine' }] },
    {
      call: 'action.batchPlay',
      args: [
        [
          { _obj: 'select', _target: [{ _ref: 'layer', _id: 3 }], makeVisible: false, _options: { dialogOptions: 'silent' } },
          {
            _obj: 'placedLayerRelinkToFile',
            null: { _path: 'session-token-1', _kind: 'local' },
            _options: { dialogOptions: 'silent' },
          },
        ],
        {},
      ],
      scope: 'modal',
    },
  ]);
  assert.deepEqual((await adapter.listLinks())[0], { id: '3', path: JPG, status: 'normal', name: 'sea.jpg' });
});

test('relink: bad ids, missing layers and unlinked layers are refused clearly', async () => {
  const layers: FakeLayer[] = [{ id: 6, name: 'embedded', kind: 'smartObject', smartObject: { linked: false, fileReference: 'a.ai' } }];
  const { log, adapter } = setup({ document: openDoc({ layers }) });
  await assert.rejects(adapter.relink('3; drop', JPG), { message: '"3; drop" is not a Photoshop layer id' });
  await assert.rejects(adapter.relink('', JPG), { message: '"" is not a Photoshop layer id' });
  assert.deepEqual(log, []);
  await assert.rejects(adapter.relink('99', JPG), /Photoshop refused to relink layer 99 to .*: placedLayerRelinkToFile failed: The object “layer” is not currently available/);
  await assert.rejects(adapter.relink('6', JPG), /placedLayerRelinkToFile failed: The command “Relink to File” is not currently available/);
  await assert.rejects(setup().adapter.relink('6', JPG), { message: 'Photoshop has no open document to relink layer 6 in' });
});

test('updateLink: placedLayerUpdateAllModified inside executeAsModal', async () => {
  const layers: FakeLayer[] = [
    { id: 5, name: 'c', kind: 'smartObject', smartObject: { linked: true, link: { _path: PSD, _kind: 'local' }, fileReference: 'dunes-v3.psd', linkChanged: true } },
  ];
  const { log, adapter } = setup({ document: openDoc({ layers }) });
  await adapter.updateLink('5');
  assert.deepEqual(log, [
    { call: 'core.executeAsModal', args: [FUNCTION_ARG, { commandName: 'Update links from Imagine' }] },
    { call: 'action.batchPlay', args: [[{ _obj: 'placedLayerUpdateAllModified', _options: { dialogOptions: 'silent' } }], {}], scope: 'modal' },
  ]);
  assert.equal((await adapter.listLinks())[0]?.status, 'normal');
  await assert.rejects(setup({ document: openDoc() }).adapter.updateLink('x'), { message: '"x" is not a Photoshop layer id' });
});

test('onDocumentSaved: listens to "save", reports only saveSucceeded, and unsubscribes', async () => {
  const { log, ps, adapter } = setup({ document: openDoc() });
  const heard: string[] = [];
  const stop = adapter.onDocumentSaved((path) => heard.push(path));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(log, [{ call: 'action.addNotificationListener', args: [['save'], FUNCTION_ARG] }]);

  ps.emit('save', { saveStage: { _enum: 'saveStageType', _value: 'saveBegin' }, in: { _path: PSD, _kind: 'local' } });
  assert.deepEqual(heard, []);
  ps.emit('save', { saveStage: { _enum: 'saveStageType', _value: 'saveSucceeded' }, in: { _path: PSD, _kind: 'local' } });
  ps.emit('save', { saveStage: { _enum: 'saveStageType', _value: 'saveSucceeded' } }); // no path: the active document's
  assert.deepEqual(heard, [PSD, '/Users/ana/layout.psd']);

  stop();
  stop(); // idempotent
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ps.listenerCount(), 0);
  assert.deepEqual(calls(log), ['action.addNotificationListener', 'action.removeNotificationListener']);
  ps.emit('save', { saveStage: { _value: 'saveSucceeded' }, in: { _path: PSD } });
  assert.equal(heard.length, 2);
});

test('the adapter declares what Photoshop can do', () => {
  const { adapter } = setup();
  assert.equal(adapter.name, 'photoshop');
  assert.deepEqual(adapter.capabilities, { open: true, place: true, links: true });
});
