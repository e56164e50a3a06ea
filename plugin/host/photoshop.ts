/**
 * The Photoshop host adapter. Every call that changes Photoshop's state runs inside
 * `core.executeAsModal` (one modal at a time, named in Photoshop's progress UI); files are
 * reached through UXP entries (`getEntryWithUrl('file:...')`, needing `localFileSystem:
 * "fullAccess"`) and handed to batchPlay as session tokens.
 *
 * UNVERIFIED without a host (found in Adobe's docs or community plugins, not run here):
 * - `placedLayerRelinkToFile` and `placedLayerUpdateAllModified` (recorded action names, not
 *   documented for UXP); relink acts on the selected layer, so the layer is selected first.
 * - the `smartObject` descriptor fields `linked`, `link._path`, `linkMissing`, `linkChanged`,
 *   `fileReference` read through batchPlay `get`.
 * - `saveStage` `saveSucceeded` in the `save` notification, and its `in._path`.
 * - `document.path` of a never-saved document (an empty string and a throw are both handled).
 * - `file:/C:/...` URLs for Windows paths.
 */
import type { ActiveDocument, HostAdapter, HostCapabilities, PlacedLink, PlaceMode } from './types.ts';
import {
  baseName,
  checkPlaceMode,
  describeHostError,
  hostError,
  loadHostModule,
  toArray,
  type ActionDescriptor,
  type ModuleLoader,
  type PhotoshopModule,
  type PsDocument,
  type PsLayer,
  type PsNotificationListener,
  type UxpEntry,
  type UxpModule,
} from './host-modules.ts';

/** Names shown in Photoshop's progress bar and History for each modal command. */
export const PHOTOSHOP_COMMANDS = Object.freeze({
  open: 'Open from Imagine',
  place: 'Place from Imagine',
  save: 'Save for Imagine',
  relink: 'Relink from Imagine',
  update: 'Update links from Imagine',
});

/**
 * Every descriptor runs with `dialogOptions: "silent"`: with "dontDisplay" a failing command
 * was reported (live, by a community plugin) to still raise Photoshop's modal error dialog,
 * which blocks batchPlay until a person clicks it. Silent failures come back as
 * `{ _obj: "error" }` results, which `ensureNoActionError` turns into errors.
 */
const SILENT = 'silent';

const CAPABILITIES: HostCapabilities = Object.freeze({ open: true, place: true, links: true });

/**
 * The `file:` URL UXP's `getEntryWithUrl` takes for a native absolute path:
 * `/Users/a/b.psd` → `file:/Users/a/b.psd`, `C:\a\b.psd` → `file:/C:/a/b.psd` (Windows form
 * UNVERIFIED). Relative paths are refused: the agent always hands out absolute ones.
 */
export function fileUrlForPath(path: string): string {
  if (typeof path !== 'string' || path === '') throw new Error('expected a native file path, got an empty value');
  if (path.startsWith('/')) return `file:${path}`;
  if (/^[A-Za-z]:[\\/]/.test(path)) return `file:/${path.replace(/\\/g, '/')}`;
  throw new Error(`expected an absolute native path, got "${path}"`);
}

/** Throws when a batchPlay result carries Photoshop's `{ _obj: "error" }` instead of throwing. */
function ensureNoActionError(results: ActionDescriptor[] | undefined, what: string): ActionDescriptor[] {
  const list = Array.isArray(results) ? results : [];
  for (const result of list) {
    if (result && result._obj === 'error') {
      const message = typeof result.message === 'string' ? result.message : `error ${String(result.result ?? 'unknown')}`;
      throw new Error(`${what}: ${message}`);
    }
  }
  return list;
}

function layerIdOf(linkId: string): number {
  const id = Number(linkId);
  if (!/^\d+$/.test(linkId) || !Number.isSafeInteger(id)) {
    throw new Error(`"${linkId}" is not a Photoshop layer id`);
  }
  return id;
}

function nativePathOfLink(link: unknown): string | null {
  if (typeof link === 'string') return link || null;
  if (link && typeof link === 'object' && '_path' in link) {
    const path = (link as { _path: unknown })._path;
    return typeof path === 'string' && path ? path : null;
  }
  return null;
}

export function buildPhotoshopAdapter(load: ModuleLoader = loadHostModule): HostAdapter {
  const { app, core, action } = load('photoshop') as PhotoshopModule;
  const { storage } = load('uxp') as UxpModule;
  const fs = storage.localFileSystem;

  function currentDocument(): PsDocument | null {
    try {
      return app.activeDocument ?? null;
    } catch {
      return null; // some Photoshop versions throw instead of answering null
    }
  }

  function requireDocument(purpose: string): PsDocument {
    const doc = currentDocument();
    if (!doc) throw new Error(`Photoshop has no open document ${purpose}`);
    return doc;
  }

  function pathOf(doc: PsDocument): string | null {
    try {
      const path = doc.path;
      return typeof path === 'string' && path !== '' ? path : null;
    } catch {
      return null;
    }
  }

  async function entryFor(path: string, what: string): Promise<UxpEntry> {
    const url = fileUrlForPath(path);
    try {
      return await fs.getEntryWithUrl(url);
    } catch (error) {
      throw hostError(`${what}: cannot read the file`, error);
    }
  }

  async function tokenFor(path: string, what: string): Promise<string> {
    const entry = await entryFor(path, what);
    try {
      return await fs.createSessionToken(entry);
    } catch (error) {
      throw hostError(`${what}: no session token for the file`, error);
    }
  }

  async function modal(commandName: string, what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await core.executeAsModal(async () => {
        await fn();
      }, { commandName });
    } catch (error) {
      throw hostError(what, error);
    }
  }

  function smartObjectLayers(layers: ArrayLike<PsLayer>): PsLayer[] {
    const found: PsLayer[] = [];
    for (const layer of toArray(layers)) {
      if (layer.kind === 'smartObject') found.push(layer);
      if (layer.layers) found.push(...smartObjectLayers(layer.layers));
    }
    return found;
  }

  async function linkOfLayer(doc: PsDocument, layer: PsLayer): Promise<PlacedLink | null> {
    const results = ensureNoActionError(
      await action.batchPlay(
        [
          {
            _obj: 'get',
            _target: [{ _ref: 'layer', _id: layer.id }, { _ref: 'document', _id: doc.id }],
            _options: { dialogOptions: SILENT },
          },
        ],
        {},
      ),
      `Photoshop could not describe layer ${layer.id}`,
    );
    const smartObject = results[0]?.smartObject as Record<string, unknown> | undefined;
    // Embedded smart objects have no file to point back at; only linked ones are links.
    if (!smartObject || smartObject.linked !== true) return null;
    const path = nativePathOfLink(smartObject.link);
    if (!path) return null;
    const status = smartObject.linkMissing === true ? 'missing' : smartObject.linkChanged === true ? 'out-of-date' : 'normal';
    const fileReference = typeof smartObject.fileReference === 'string' ? smartObject.fileReference : '';
    return { id: String(layer.id), path, status, name: fileReference || baseName(path) || layer.name };
  }

  return {
    name: 'photoshop',
    capabilities: CAPABILITIES,

    async openFile(path) {
      const what = `Photoshop refused to open ${path}`;
      const entry = await entryFor(path, what);
      await modal(PHOTOSHOP_COMMANDS.open, what, () => app.open(entry));
    },

    async placeFile(path, mode: PlaceMode) {
      const what = `Photoshop refused to place ${path}`;
      checkPlaceMode(mode);
      requireDocument(`to place ${path} into`);
      const token = await tokenFor(path, what);
      await modal(PHOTOSHOP_COMMANDS.place, what, async () => {
        const results = await action.batchPlay(
          [
            {
              _obj: 'placeEvent',
              null: { _path: token, _kind: 'local' },
              linked: mode === 'linked',
              _options: { dialogOptions: SILENT },
            },
          ],
          {},
        );
        ensureNoActionError(results, 'placeEvent failed');
      });
    },

    async activeDocument(): Promise<ActiveDocument | null> {
      const doc = currentDocument();
      if (!doc) return null;
      return { path: pathOf(doc), name: doc.name, dirty: !doc.saved };
    },

    async saveActiveDocument() {
      const doc = requireDocument('to save');
      const path = pathOf(doc);
      // A document that was never saved has no place to save "in place"; `save()` would open
      // Photoshop's Save dialog from inside a modal. The caller gets null and asks the user.
      if (path === null) return null;
      await modal(PHOTOSHOP_COMMANDS.save, `Photoshop refused to save ${path}`, () => doc.save());
      return pathOf(doc) ?? path;
    },

    async listLinks() {
      const doc = currentDocument();
      if (!doc) return [];
      const links: PlacedLink[] = [];
      for (const layer of smartObjectLayers(doc.layers)) {
        try {
          const link = await linkOfLayer(doc, layer);
          if (link) links.push(link);
        } catch (error) {
          throw hostError(`Photoshop could not list the links of ${doc.name}`, error);
        }
      }
      return links;
    },

    async relink(linkId, path) {
      const what = `Photoshop refused to relink layer ${linkId} to ${path}`;
      const layerId = layerIdOf(linkId);
      requireDocument(`to relink layer ${linkId} in`);
      const token = await tokenFor(path, what);
      await modal(PHOTOSHOP_COMMANDS.relink, what, async () => {
        const results = await action.batchPlay(
          [
            { _obj: 'select', _target: [{ _ref: 'layer', _id: layerId }], makeVisible: false, _options: { dialogOptions: SILENT } },
            { _obj: 'placedLayerRelinkToFile', null: { _path: token, _kind: 'local' }, _options: { dialogOptions: SILENT } },
          ],
          {},
        );
        ensureNoActionError(results, 'placedLayerRelinkToFile failed');
      });
    },

    async updateLink(linkId) {
      const what = `Photoshop refused to update layer ${linkId}`;
      layerIdOf(linkId);
      requireDocument(`to update layer ${linkId} in`);
      // Photoshop's "Update All Modified Content": it reloads every linked smart object whose
      // file changed, which includes this one (there is no documented per-layer update).
      await modal(PHOTOSHOP_COMMANDS.update, what, async () => {
        const results = await action.batchPlay([{ _obj: 'placedLayerUpdateAllModified', _options: { dialogOptions: SILENT } }], {});
        ensureNoActionError(results, 'placedLayerUpdateAllModified failed');
      });
    },

    onDocumentSaved(listener) {
      const handler: PsNotificationListener = (event, descriptor) => {
        if (event !== 'save' || !descriptor) return;
        const stage = descriptor.saveStage as { _value?: unknown } | string | undefined;
        const value = typeof stage === 'string' ? stage : stage?._value;
        // Recorded save descriptors carry saveBegin then saveSucceeded; older versions none.
        if (value !== undefined && value !== 'saveSucceeded') return;
        const doc = currentDocument();
        const path = nativePathOfLink(descriptor.in) ?? (doc ? pathOf(doc) : null);
        if (path) listener(path);
      };
      let active = true;
      const registered = Promise.resolve()
        .then(() => action.addNotificationListener(['save'], handler))
        .catch((error: unknown) => {
          console.error(`Imagine: cannot listen to Photoshop saves: ${describeHostError(error)}`);
        });
      return () => {
        if (!active) return;
        active = false;
        void registered.then(() => action.removeNotificationListener(['save'], handler)).catch(() => undefined);
      };
    },
  };
}
