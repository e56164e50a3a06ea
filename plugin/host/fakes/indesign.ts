/**
 * A fake of InDesign's `indesign` module for tests of the InDesign adapter. It records every
 * call with its exact arguments (and whether it ran inside `app.doScript`), keeps documents,
 * pages, frames and links, and mimics the host where the adapter depends on it: collections are
 * read with `.item(i)`, `fullName` is a promise of an entry and throws for unsaved documents,
 * enum values are objects (two reads of the same value are not `===`).
 */
import type { IdDocument, IdFrame, IdGraphic, IdLink, IdPage, IndesignModule } from '../host-modules.ts';
import { recordArgs, type FakeCall } from './uxp.ts';

/**
 * An InDesign enum value: an object with a name and, where Adobe documents it, its number
 * (values whose number is not documented here convert to NaN).
 */
export class FakeEnum {
  constructor(
    readonly name: string,
    readonly code: number = Number.NaN,
  ) {}
  valueOf(): number {
    return this.code;
  }
  toString(): string {
    return this.name;
  }
}

const LINK_STATUS_CODES = {
  NORMAL: 1852797549,
  LINK_OUT_OF_DATE: 1819242340,
  LINK_MISSING: 1819109747,
  LINK_EMBEDDED: 1282237028,
  LINK_INACCESSIBLE: 1818848865,
} as const;
export type FakeLinkStatus = keyof typeof LINK_STATUS_CODES;

/** A fresh enum object each read, as the host gives. */
const linkStatus = (name: FakeLinkStatus) => new FakeEnum(name, LINK_STATUS_CODES[name]);

export interface FakeLinkInit {
  id: number;
  filePath: string;
  status?: FakeLinkStatus;
}

export interface FakeIndesignDocumentInit {
  name: string;
  /** Native path; null for a document that was never saved. */
  path: string | null;
  modified?: boolean;
  links?: FakeLinkInit[];
}

export interface FakeIndesignOptions {
  log: FakeCall[];
  document?: FakeIndesignDocumentInit | null;
  /** Make a call throw: return the error for a call name (`app.open`, `frame.place`, ...). */
  fail?: (call: string) => unknown;
  /** Errors thrown inside a doScript function are swallowed instead of propagated. */
  doScriptSwallowsErrors?: boolean;
  /** The selection: 'rectangle' selects one empty frame on the page. */
  selection?: 'rectangle' | 'text' | null;
  /** No layout window (e.g. only a story editor is open). */
  noActivePage?: boolean;
}

export interface FakeLinkState {
  id: number;
  name: string;
  filePath: string;
  status: FakeLinkStatus;
}

export interface FakeIndesignDocumentState {
  name: string;
  path: string | null;
  modified: boolean;
  links: FakeLinkState[];
}

export interface FakeIndesign {
  module: IndesignModule;
  documents: FakeIndesignDocumentState[];
  /** Sends an event to `app` listeners. */
  emit(event: string, payload: unknown): void;
  listenerCount(): number;
}

const baseName = (path: string) => path.split(/[\\/]/).pop() ?? path;

export function fakeIndesign(options: FakeIndesignOptions): FakeIndesign {
  const { log } = options;
  const documents: FakeIndesignDocumentState[] = [];
  const listeners = new Map<(event: unknown) => void, string>();
  let scriptDepth = 0;
  let nextId = 500;

  function record(call: string, args: unknown[]): void {
    const entry: FakeCall = { call, args: recordArgs(args) };
    if (scriptDepth > 0) entry.scope = 'script';
    log.push(entry);
  }

  function maybeFail(call: string): void {
    const error = options.fail?.(call);
    if (error !== undefined) throw error;
  }

  function addDocument(init: FakeIndesignDocumentInit): void {
    documents.push({
      name: init.name,
      path: init.path,
      modified: init.modified ?? false,
      links: (init.links ?? []).map((l) => ({ id: l.id, name: baseName(l.filePath), filePath: l.filePath, status: l.status ?? 'NORMAL' })),
    });
  }
  if (options.document) addDocument(options.document);

  const active = () => documents[documents.length - 1];

  function linkObject(state: FakeLinkState, doc: FakeIndesignDocumentState): IdLink {
    return {
      get id() {
        return state.id;
      },
      get name() {
        return state.name;
      },
      get filePath() {
        return state.filePath;
      },
      get status() {
        return linkStatus(state.status);
      },
      relink(path: string) {
        record('link.relink', [state.id, path]);
        maybeFail('link.relink');
        state.filePath = path;
        state.name = baseName(path);
        state.status = 'LINK_OUT_OF_DATE'; // InDesign asks for an update after a relink
        doc.modified = true;
      },
      update() {
        record('link.update', [state.id]);
        maybeFail('link.update');
        if (state.status === 'LINK_MISSING') throw new Error('Cannot update a missing link');
        state.status = 'NORMAL';
        doc.modified = true;
      },
      unlink() {
        record('link.unlink', [state.id]);
        maybeFail('link.unlink');
        state.status = 'LINK_EMBEDDED';
        doc.modified = true;
      },
    };
  }

  function documentObject(doc: FakeIndesignDocumentState): IdDocument {
    return {
      get name() {
        return doc.name;
      },
      get modified() {
        return doc.modified;
      },
      get saved() {
        return doc.path !== null;
      },
      get fullName() {
        if (doc.path === null) throw new Error('The document has not been saved yet.');
        return Promise.resolve({ name: doc.name, nativePath: doc.path });
      },
      links: {
        get length() {
          return doc.links.length;
        },
        item(index: number) {
          const state = doc.links[index];
          if (!state) throw new Error(`Object is invalid: links.item(${index})`);
          return linkObject(state, doc);
        },
      },
      async save() {
        record('document.save', []);
        maybeFail('document.save');
        doc.modified = false;
      },
    };
  }

  function frameObject(kind: string): IdFrame {
    return {
      constructorName: kind,
      place(path: string): IdGraphic[] {
        record('frame.place', [path]);
        maybeFail('frame.place');
        const doc = active();
        if (!doc) throw new Error('No documents are open.');
        const state: FakeLinkState = { id: nextId++, name: baseName(path), filePath: path, status: 'NORMAL' };
        doc.links.push(state);
        doc.modified = true;
        return [{ itemLink: linkObject(state, doc), parent: this }];
      },
      fit(option: unknown) {
        record('frame.fit', [String(option)]);
        maybeFail('frame.fit');
      },
    };
  }

  const page: IdPage = {
    bounds: [0, 0, 297, 210],
    marginPreferences: { top: 20, left: 15, bottom: 20, right: 15 },
    rectangles: {
      add(properties: { geometricBounds: number[] }) {
        record('page.rectangles.add', [properties]);
        maybeFail('page.rectangles.add');
        return frameObject('Rectangle');
      },
    },
  };

  const selectedRectangle = frameObject('Rectangle');

  const module: IndesignModule = {
    app: {
      documents: {
        get length() {
          return documents.length;
        },
      },
      get activeDocument() {
        const doc = active();
        if (!doc) throw new Error('No documents are open.');
        return documentObject(doc);
      },
      get selection() {
        if (options.selection === 'rectangle') return [selectedRectangle];
        if (options.selection === 'text') return [{ constructorName: 'InsertionPoint' }];
        return [];
      },
      get activeWindow() {
        if (!active() || options.noActivePage) return null;
        return { activePage: page };
      },
      open(path: string) {
        record('app.open', [path]);
        maybeFail('app.open');
        addDocument({ name: baseName(path), path });
        return documentObject(active()!);
      },
      doScript(script, language, args, undoMode, undoName) {
        record('app.doScript', [script, String(language), args, String(undoMode), undoName]);
        maybeFail('app.doScript');
        scriptDepth++;
        try {
          return script(...args);
        } catch (error) {
          if (!options.doScriptSwallowsErrors) throw error;
          return undefined;
        } finally {
          scriptDepth--;
        }
      },
      addEventListener(event, handler) {
        record('app.addEventListener', [event, handler]);
        listeners.set(handler, event);
        return { eventType: event };
      },
      removeEventListener(event, handler) {
        record('app.removeEventListener', [event, handler]);
        return listeners.delete(handler);
      },
    },
    FitOptions: { PROPORTIONALLY: new FakeEnum('PROPORTIONALLY'), CENTER_CONTENT: new FakeEnum('CENTER_CONTENT') },
    LinkStatus: {
      NORMAL: linkStatus('NORMAL'),
      LINK_OUT_OF_DATE: linkStatus('LINK_OUT_OF_DATE'),
      LINK_MISSING: linkStatus('LINK_MISSING'),
      LINK_EMBEDDED: linkStatus('LINK_EMBEDDED'),
      LINK_INACCESSIBLE: linkStatus('LINK_INACCESSIBLE'),
    },
    UndoModes: { ENTIRE_SCRIPT: new FakeEnum('ENTIRE_SCRIPT', 1699963733) },
    ScriptLanguage: { UXPSCRIPT: new FakeEnum('UXPSCRIPT') },
  };

  return {
    module,
    documents,
    emit(event, payload) {
      for (const [handler, name] of [...listeners]) if (name === event) handler(payload);
    },
    listenerCount: () => listeners.size,
  };
}
