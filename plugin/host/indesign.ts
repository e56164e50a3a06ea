/**
 * The InDesign host adapter. Placing and relinking run through `app.doScript(...,
 * UndoModes.ENTIRE_SCRIPT, name)` so each is one step in Edit > Undo; paths go in as plain
 * native path strings and come out of getters as entries (`(await doc.fullName).nativePath`).
 *
 * UNVERIFIED without a host (documented, or seen in community plugins, not run here):
 * - that a function passed to `doScript` may close over variables and that errors thrown inside
 *   it reach the caller (they are captured and rethrown here either way); it must be
 *   synchronous, since doScript does not wait for promises.
 * - how `LinkStatus` values compare (`===`, or enum instances with the documented numbers);
 *   `sameEnum` accepts all three forms.
 * - the `afterSave` event's `fullName` / `target` properties.
 * - `page.rectangles.add({ geometricBounds })` with the properties as the only argument (the
 *   common ExtendScript form), and the margin box on facing pages.
 */
import type { ActiveDocument, HostAdapter, HostCapabilities, LinkStatus, PlacedLink, PlaceMode } from './types.ts';
import {
  checkPlaceMode,
  describeHostError,
  hostError,
  loadHostModule,
  toArray,
  type IdDocument,
  type IdFrame,
  type IdLink,
  type IdPage,
  type IndesignModule,
  type ModuleLoader,
} from './host-modules.ts';

/** Names shown in InDesign's Edit > Undo menu. */
export const INDESIGN_UNDO_NAMES = Object.freeze({
  place: 'Place from Imagine',
  relink: 'Relink from Imagine',
});

/** Frame kinds a file can be placed into when the user has one selected. */
const PLACEABLE_FRAMES = new Set(['Rectangle', 'Oval', 'Polygon']);

/** Documented `LinkStatus` numbers, for hosts whose enum values are objects wrapping them. */
const LINK_STATUS_CODES: Record<keyof IndesignModule['LinkStatus'], number> = {
  NORMAL: 1852797549,
  LINK_OUT_OF_DATE: 1819242340,
  LINK_MISSING: 1819109747,
  LINK_EMBEDDED: 1282237028,
  LINK_INACCESSIBLE: 1818848865,
};

const STATUS_NAMES: Record<keyof IndesignModule['LinkStatus'], LinkStatus> = {
  NORMAL: 'normal',
  LINK_OUT_OF_DATE: 'out-of-date',
  LINK_MISSING: 'missing',
  LINK_EMBEDDED: 'embedded',
  LINK_INACCESSIBLE: 'inaccessible',
};

const CAPABILITIES: HostCapabilities = Object.freeze({ open: true, place: true, links: true });

/** Whether two InDesign enum values are the same, whether numbers, strings or enum objects. */
export function sameEnum(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || a === undefined || b === null || b === undefined) return false;
  const na = Number(a);
  if (Number.isFinite(na) && na === Number(b)) return true;
  return String(a) === String(b) && String(a) !== '[object Object]';
}

/** The interface's status for an InDesign `LinkStatus` value ("inaccessible" when unknown). */
export function linkStatusOf(status: unknown, statuses: IndesignModule['LinkStatus']): LinkStatus {
  for (const key of Object.keys(STATUS_NAMES) as (keyof IndesignModule['LinkStatus'])[]) {
    if (sameEnum(status, statuses[key]) || sameEnum(status, LINK_STATUS_CODES[key]) || sameEnum(status, key)) {
      return STATUS_NAMES[key];
    }
  }
  return 'inaccessible';
}

/** A native path from whatever a getter gave: an entry, a promise of one, or a string. */
async function nativePathOf(value: unknown): Promise<string | null> {
  const resolved = await value;
  if (typeof resolved === 'string') return resolved || null;
  if (resolved && typeof resolved === 'object') {
    const entry = resolved as { nativePath?: unknown; fsName?: unknown };
    if (typeof entry.nativePath === 'string' && entry.nativePath) return entry.nativePath;
    if (typeof entry.fsName === 'string' && entry.fsName) return entry.fsName;
  }
  return null;
}

/** The page's margin box `[y1, x1, y2, x2]`, or the whole page when margins leave no room. */
export function marginBox(page: IdPage): number[] {
  const [top = 0, left = 0, bottom = 0, right = 0] = page.bounds;
  const m = page.marginPreferences;
  const box = [top + m.top, left + m.left, bottom - m.bottom, right - m.right];
  const [y1 = 0, x1 = 0, y2 = 0, x2 = 0] = box;
  return y2 > y1 && x2 > x1 ? box : [top, left, bottom, right];
}

export function buildIndesignAdapter(load: ModuleLoader = loadHostModule): HostAdapter {
  const indesign = load('indesign') as IndesignModule;
  const { app, FitOptions, ScriptLanguage, UndoModes } = indesign;

  function currentDocument(): IdDocument | null {
    try {
      return app.documents.length > 0 ? app.activeDocument : null;
    } catch {
      return null;
    }
  }

  function requireDocument(purpose: string): IdDocument {
    const doc = currentDocument();
    if (!doc) throw new Error(`InDesign has no open document ${purpose}`);
    return doc;
  }

  async function pathOf(doc: IdDocument): Promise<string | null> {
    if (!doc.saved) return null; // fullName throws for a document that was never saved
    try {
      return await nativePathOf(doc.fullName);
    } catch {
      return null;
    }
  }

  function findLink(doc: IdDocument, linkId: string): IdLink {
    const links = doc.links;
    for (let i = 0; i < links.length; i++) {
      const link = links.item(i);
      if (String(link.id) === linkId) return link;
    }
    throw new Error(`InDesign has no link ${linkId} in ${doc.name}`);
  }

  /** Runs `fn` as one undo step; errors thrown inside are rethrown here. */
  async function asOneUndoStep(name: string, what: string, fn: () => void): Promise<void> {
    let failure: { error: unknown } | null = null;
    const script = () => {
      try {
        fn();
      } catch (error) {
        failure = { error };
      }
    };
    try {
      await app.doScript(script, ScriptLanguage.UXPSCRIPT, [], UndoModes.ENTIRE_SCRIPT, name);
    } catch (error) {
      throw hostError(what, error);
    }
    const failed = failure as { error: unknown } | null;
    if (failed) throw hostError(what, failed.error);
  }

  function selectedFrame(): IdFrame | null {
    let selection: unknown;
    try {
      selection = app.selection;
    } catch {
      return null;
    }
    const items = Array.isArray(selection) ? selection : toArray(selection as ArrayLike<unknown>);
    if (items.length !== 1) return null;
    const item = items[0] as IdFrame;
    return item && PLACEABLE_FRAMES.has(String(item.constructorName)) ? item : null;
  }

  function activePage(): IdPage {
    const page = app.activeWindow?.activePage;
    if (!page) throw new Error('InDesign has no active page');
    return page;
  }

  return {
    name: 'indesign',
    capabilities: CAPABILITIES,

    async openFile(path) {
      try {
        await app.open(path);
      } catch (error) {
        throw hostError(`InDesign refused to open ${path}`, error);
      }
    },

    async placeFile(path, mode: PlaceMode) {
      checkPlaceMode(mode);
      requireDocument(`to place ${path} into`);
      await asOneUndoStep(INDESIGN_UNDO_NAMES.place, `InDesign refused to place ${path}`, () => {
        // Into the selected frame, else a new frame filling the active page's margins, so a
        // large original lands scaled to the page instead of at 100% over the pasteboard.
        let frame = selectedFrame();
        if (!frame) {
          const page = activePage();
          frame = page.rectangles.add({ geometricBounds: marginBox(page) });
        }
        const placed = toArray(frame.place(path));
        frame.fit(FitOptions.PROPORTIONALLY);
        frame.fit(FitOptions.CENTER_CONTENT);
        if (mode === 'embedded') {
          const link = placed[0]?.itemLink;
          if (!link) throw new Error('the placed graphic has no link to embed');
          link.unlink(); // InDesign's "Embed Link"
        }
      });
    },

    async activeDocument(): Promise<ActiveDocument | null> {
      const doc = currentDocument();
      if (!doc) return null;
      return { path: await pathOf(doc), name: doc.name, dirty: doc.modified === true };
    },

    async saveActiveDocument() {
      const doc = requireDocument('to save');
      const path = await pathOf(doc);
      // Never saved: saving "in place" would open the Save As dialog; the caller asks the user.
      if (path === null) return null;
      try {
        await doc.save();
      } catch (error) {
        throw hostError(`InDesign refused to save ${path}`, error);
      }
      return path;
    },

    async listLinks() {
      const doc = currentDocument();
      if (!doc) return [];
      try {
        const links: PlacedLink[] = [];
        for (let i = 0; i < doc.links.length; i++) {
          const link = doc.links.item(i);
          links.push({
            id: String(link.id),
            path: link.filePath,
            status: linkStatusOf(link.status, indesign.LinkStatus),
            name: link.name,
          });
        }
        return links;
      } catch (error) {
        throw hostError(`InDesign could not list the links of ${doc.name}`, error);
      }
    },

    async relink(linkId, path) {
      const doc = requireDocument(`to relink ${linkId} in`);
      const link = findLink(doc, linkId);
      await asOneUndoStep(INDESIGN_UNDO_NAMES.relink, `InDesign refused to relink ${link.name} to ${path}`, () => {
        link.relink(path);
        link.update();
      });
    },

    async updateLink(linkId) {
      const doc = requireDocument(`to update ${linkId} in`);
      const link = findLink(doc, linkId);
      try {
        await link.update();
      } catch (error) {
        throw hostError(`InDesign refused to update ${link.name}`, error);
      }
    },

    onDocumentSaved(listener) {
      const handler = (event: unknown) => {
        const e = (event ?? {}) as { fullName?: unknown; target?: { fullName?: unknown } };
        void (async () => {
          const path =
            (await nativePathOf(e.fullName).catch(() => null)) ??
            (await nativePathOf(e.target?.fullName).catch(() => null)) ??
            (await (async () => {
              const doc = currentDocument();
              return doc ? pathOf(doc) : null;
            })());
          if (path) listener(path);
        })().catch((error: unknown) => {
          console.error(`Imagine: cannot read the saved InDesign document: ${describeHostError(error)}`);
        });
      };
      app.addEventListener('afterSave', handler);
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        try {
          app.removeEventListener('afterSave', handler);
        } catch {
          // the application is shutting down; nothing left to unsubscribe from
        }
      };
    },
  };
}
