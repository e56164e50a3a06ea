/**
 * A fake of Photoshop's `photoshop` module for tests of the Photoshop adapter. It records every
 * call with its exact arguments (and whether it ran inside `executeAsModal`), keeps a small
 * document model (layers, linked smart objects), and behaves like Photoshop where the adapter
 * depends on it: state changes outside a modal are refused, one modal runs at a time, a
 * `placeEvent` adds a smart object layer, `get` describes a layer, relink acts on the selected
 * layer.
 */
import type { ActionDescriptor, PhotoshopModule, PsDocument, PsLayer, PsNotificationListener, UxpEntry } from '../host-modules.ts';
import { recordArgs, type FakeCall, type FakeUxp } from './uxp.ts';

export interface FakeSmartObject {
  linked: boolean;
  link?: { _path: string; _kind: 'local' };
  fileReference: string;
  linkMissing?: boolean;
  linkChanged?: boolean;
}

export interface FakeLayer extends PsLayer {
  id: number;
  name: string;
  kind: string;
  layers?: FakeLayer[];
  smartObject?: FakeSmartObject;
}

export interface FakeDocumentInit {
  id?: number;
  name: string;
  /** '' for a document that was never saved. */
  path: string;
  saved?: boolean;
  layers?: FakeLayer[];
}

export interface FakePhotoshopOptions {
  log: FakeCall[];
  uxp: FakeUxp;
  document?: FakeDocumentInit | null;
  /** Make a call throw: return the error for a call name (`app.open`, `batchPlay:placeEvent`, ...). */
  fail?: (call: string) => unknown;
  /** batchPlay commands answered with Photoshop's `{ _obj: "error" }` result instead of running. */
  errorResults?: string[];
  /** `app.activeDocument` throws instead of answering null when no document is open. */
  activeDocumentThrows?: boolean;
}

export interface FakeDocument extends PsDocument {
  id: number;
  name: string;
  path: string;
  saved: boolean;
  layers: FakeLayer[];
}

export interface FakePhotoshop {
  module: PhotoshopModule;
  /** The open documents, the active one last. */
  documents: FakeDocument[];
  /** Sends a notification to listeners, as Photoshop does after an event. */
  emit(event: string, descriptor: Record<string, unknown>): void;
  listenerCount(): number;
}

function flatten(layers: FakeLayer[]): FakeLayer[] {
  return layers.flatMap((layer) => [layer, ...flatten(layer.layers ?? [])]);
}

export function fakePhotoshop(options: FakePhotoshopOptions): FakePhotoshop {
  const { log, uxp } = options;
  const documents: FakeDocument[] = [];
  const listeners = new Map<PsNotificationListener, string[]>();
  let modalDepth = 0;
  let nextId = 100;
  let selectedLayerId: number | null = null;

  const scope = (): FakeCall['scope'] => (modalDepth > 0 ? 'modal' : undefined);

  function record(call: string, args: unknown[]): void {
    const entry: FakeCall = { call, args: recordArgs(args) };
    const s = scope();
    if (s) entry.scope = s;
    log.push(entry);
  }

  function maybeFail(call: string): void {
    const error = options.fail?.(call);
    if (error !== undefined) throw error;
  }

  function requireModal(call: string): void {
    if (modalDepth === 0) throw new Error(`${call}: this function is only available in a modal scope (executeAsModal)`);
  }

  function makeDocument(init: FakeDocumentInit): FakeDocument {
    const doc: FakeDocument = {
      id: init.id ?? nextId++,
      name: init.name,
      path: init.path,
      saved: init.saved ?? true,
      layers: init.layers ?? [],
      async save() {
        record('document.save', []);
        requireModal('save');
        maybeFail('document.save');
        doc.saved = true;
      },
    };
    return doc;
  }

  if (options.document) documents.push(makeDocument(options.document));

  function active(): FakeDocument | null {
    return documents[documents.length - 1] ?? null;
  }

  function runCommand(descriptor: ActionDescriptor): ActionDescriptor {
    const doc = active();
    switch (descriptor._obj) {
      case 'get': {
        const target = descriptor._target as { _ref: string; _id: number }[];
        const layerRef = target.find((t) => t._ref === 'layer');
        const layer = doc ? flatten(doc.layers).find((l) => l.id === layerRef?._id) : undefined;
        if (!layer) return { _obj: 'error', result: -25920, message: 'The object “layer” is not currently available.' };
        const result: ActionDescriptor = { _obj: 'layer', name: layer.name, layerID: layer.id };
        if (layer.smartObject) result.smartObject = structuredClone(layer.smartObject);
        return result;
      }
      case 'placeEvent': {
        requireModal('placeEvent');
        if (!doc) return { _obj: 'error', result: -25920, message: 'The command “Place” is not currently available.' };
        const token = (descriptor.null as { _path: string })._path;
        const path = uxp.pathOfToken(token);
        if (!path) return { _obj: 'error', result: -43, message: 'The file could not be found.' };
        const name = path.split(/[\\/]/).pop() ?? path;
        const layer: FakeLayer = {
          id: nextId++,
          name: name.replace(/\.[^.]+$/, ''),
          kind: 'smartObject',
          smartObject: descriptor.linked
            ? { linked: true, link: { _path: path, _kind: 'local' }, fileReference: name }
            : { linked: false, fileReference: name },
        };
        doc.layers.unshift(layer);
        doc.saved = false;
        selectedLayerId = layer.id;
        return { _obj: 'placeEvent', ID: layer.id };
      }
      case 'select': {
        requireModal('select');
        const target = (descriptor._target as { _id: number }[])[0];
        const layer = doc ? flatten(doc.layers).find((l) => l.id === target?._id) : undefined;
        if (!layer) return { _obj: 'error', result: -25920, message: 'The object “layer” is not currently available.' };
        selectedLayerId = layer.id;
        return { _obj: 'select' };
      }
      case 'placedLayerRelinkToFile': {
        requireModal('placedLayerRelinkToFile');
        const layer = doc ? flatten(doc.layers).find((l) => l.id === selectedLayerId) : undefined;
        if (!layer?.smartObject?.linked) {
          return { _obj: 'error', result: -25920, message: 'The command “Relink to File” is not currently available.' };
        }
        const path = uxp.pathOfToken((descriptor.null as { _path: string })._path);
        if (!path) return { _obj: 'error', result: -43, message: 'The file could not be found.' };
        layer.smartObject = { linked: true, link: { _path: path, _kind: 'local' }, fileReference: path.split(/[\\/]/).pop() ?? path };
        if (doc) doc.saved = false;
        return { _obj: 'placedLayerRelinkToFile' };
      }
      case 'placedLayerUpdateAllModified': {
        requireModal('placedLayerUpdateAllModified');
        for (const layer of doc ? flatten(doc.layers) : []) {
          if (layer.smartObject?.linkChanged) layer.smartObject.linkChanged = false;
        }
        return { _obj: 'placedLayerUpdateAllModified' };
      }
      default:
        return { _obj: 'error', result: -1715, message: `unknown command ${descriptor._obj}` };
    }
  }

  const module: PhotoshopModule = {
    app: {
      get activeDocument() {
        const doc = active();
        if (!doc && options.activeDocumentThrows) throw new Error('There is no active document');
        return doc;
      },
      async open(entry: UxpEntry) {
        record('app.open', [entry]);
        requireModal('open');
        maybeFail('app.open');
        const path = entry.nativePath ?? '';
        const doc = makeDocument({ name: entry.name ?? path, path });
        documents.push(doc);
        return doc;
      },
    },
    core: {
      async executeAsModal<T>(fn: (context: unknown) => Promise<T>, opts: { commandName: string }): Promise<T> {
        record('core.executeAsModal', [fn, opts]);
        maybeFail('core.executeAsModal');
        if (modalDepth > 0) throw new Error('host is in a modal state');
        modalDepth++;
        try {
          return await fn({ isCancelled: false, reportProgress() {} });
        } finally {
          modalDepth--;
        }
      },
    },
    action: {
      async batchPlay(commands: ActionDescriptor[], opts: Record<string, unknown>) {
        record('action.batchPlay', [commands, opts]);
        const results: ActionDescriptor[] = [];
        for (const command of commands) {
          maybeFail(`batchPlay:${command._obj}`);
          if (options.errorResults?.includes(command._obj)) {
            results.push({ _obj: 'error', result: -25920, message: `The command “${command._obj}” is not currently available.` });
            continue;
          }
          results.push(runCommand(command));
        }
        return results;
      },
      async addNotificationListener(events: string[], listener: PsNotificationListener) {
        record('action.addNotificationListener', [events, listener]);
        listeners.set(listener, events);
      },
      async removeNotificationListener(events: string[], listener: PsNotificationListener) {
        record('action.removeNotificationListener', [events, listener]);
        listeners.delete(listener);
      },
    },
  };

  return {
    module,
    documents,
    emit(event, descriptor) {
      for (const [listener, events] of [...listeners]) if (events.includes(event)) listener(event, descriptor);
    },
    listenerCount: () => listeners.size,
  };
}
