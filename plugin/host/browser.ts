/**
 * The browser host adapter, for the preview (`/panel/`) and for tests of the panel: no
 * Photoshop or InDesign, but a simulated document that behaves like one, and a log of every
 * call the panel made, readable as `window.__imagineHostCalls` (or through `adapter.calls`).
 *
 *   open(path)  → the active document becomes that file (clean, no links)
 *   place(path) → a link is added to the active document, which becomes dirty
 *   save()      → the document is clean again, save listeners hear its path
 */
import type { ActiveDocument, HostAdapter, HostCapabilities, LinkStatus, PlacedLink, PlaceMode } from './types.ts';
import { baseName, checkPlaceMode } from './host-modules.ts';

/** One call the panel made on the host, with its exact arguments. */
export interface HostCall {
  method: keyof HostAdapter;
  args: unknown[];
}

interface SimulatedDocument {
  path: string | null;
  name: string;
  dirty: boolean;
  links: PlacedLink[];
}

export interface BrowserHostOptions {
  /** Where calls are recorded; default `globalThis.__imagineHostCalls` (created when absent). */
  log?: HostCall[];
  /** A document already open when the preview starts. */
  document?: { path: string | null; name?: string; dirty?: boolean };
}

export interface BrowserHostAdapter extends HostAdapter {
  /** Every call made so far, oldest first. */
  readonly calls: HostCall[];
  /** Changes the preview makes on its own, to show what the host would report. */
  readonly simulate: {
    /** A linked file changed or vanished on disk. */
    setLinkStatus(linkId: string, status: LinkStatus): void;
    /** The user closed the document. */
    closeDocument(): void;
  };
}

declare global {
  // eslint-disable-next-line no-var
  var __imagineHostCalls: HostCall[] | undefined;
}

const CAPABILITIES: HostCapabilities = Object.freeze({ open: true, place: true, links: true });

function sharedLog(): HostCall[] {
  globalThis.__imagineHostCalls ??= [];
  return globalThis.__imagineHostCalls;
}

export function buildBrowserAdapter(options: BrowserHostOptions = {}): BrowserHostAdapter {
  const calls = options.log ?? sharedLog();
  const listeners = new Set<(path: string) => void>();
  let nextLinkId = 1;
  let doc: SimulatedDocument | null = options.document
    ? {
        path: options.document.path,
        name: options.document.name ?? (options.document.path ? baseName(options.document.path) : 'Untitled-1'),
        dirty: options.document.dirty ?? false,
        links: [],
      }
    : null;

  function record(method: keyof HostAdapter, ...args: unknown[]): void {
    calls.push({ method, args });
  }

  function requireDocument(purpose: string): SimulatedDocument {
    if (!doc) throw new Error(`The preview has no open document ${purpose}`);
    return doc;
  }

  function findLink(linkId: string): PlacedLink {
    const link = requireDocument(`with link ${linkId}`).links.find((l) => l.id === linkId);
    if (!link) throw new Error(`The preview document has no link ${linkId}`);
    return link;
  }

  function checkPath(path: unknown): string {
    if (typeof path !== 'string' || path === '') throw new Error('expected a native file path, got an empty value');
    return path;
  }

  return {
    name: 'browser',
    capabilities: CAPABILITIES,
    calls,

    async openFile(path) {
      record('openFile', path);
      checkPath(path);
      doc = { path, name: baseName(path), dirty: false, links: [] };
    },

    async placeFile(path, mode: PlaceMode) {
      record('placeFile', path, mode);
      checkPath(path);
      checkPlaceMode(mode);
      const current = requireDocument(`to place ${path} into`);
      current.links.push({
        id: String(nextLinkId++),
        path,
        status: mode === 'embedded' ? 'embedded' : 'normal',
        name: baseName(path),
      });
      current.dirty = true;
    },

    async activeDocument(): Promise<ActiveDocument | null> {
      record('activeDocument');
      return doc ? { path: doc.path, name: doc.name, dirty: doc.dirty } : null;
    },

    async saveActiveDocument() {
      record('saveActiveDocument');
      const current = requireDocument('to save');
      if (current.path === null) return null;
      current.dirty = false;
      for (const listener of [...listeners]) listener(current.path);
      return current.path;
    },

    async listLinks() {
      record('listLinks');
      return doc ? doc.links.map((link) => ({ ...link })) : [];
    },

    async relink(linkId, path) {
      record('relink', linkId, path);
      checkPath(path);
      const link = findLink(linkId);
      Object.assign(link, { path, name: baseName(path), status: 'normal' satisfies LinkStatus });
      requireDocument('').dirty = true;
    },

    async updateLink(linkId) {
      record('updateLink', linkId);
      const link = findLink(linkId);
      if (link.status === 'missing') throw new Error(`The preview cannot update ${link.name}: the file is missing`);
      if (link.status === 'out-of-date') {
        link.status = 'normal';
        requireDocument('').dirty = true;
      }
    },

    onDocumentSaved(listener) {
      record('onDocumentSaved');
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    simulate: {
      setLinkStatus(linkId, status) {
        findLink(linkId).status = status;
      },
      closeDocument() {
        doc = null;
      },
    },
  };
}
