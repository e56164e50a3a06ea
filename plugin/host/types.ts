/**
 * The one interface between the panel and its host application. Host modules (`photoshop`,
 * `indesign`, `uxp`) are touched only by the implementations in this folder: `photoshop.ts`,
 * `indesign.ts`, and `browser.ts` for the preview (which records every call so tests can
 * assert them). The panel's screens only ever see a `HostAdapter`.
 *
 * Paths are native absolute paths as the agent writes them (`/Users/x/...`, `C:\\...`).
 */

export type HostName = 'photoshop' | 'indesign' | 'browser';

export type PlaceMode = 'linked' | 'embedded';

export type LinkStatus = 'normal' | 'out-of-date' | 'missing' | 'embedded' | 'inaccessible';

export interface PlacedLink {
  /** Host-specific id of the link (InDesign link id, Photoshop layer id). */
  id: string;
  /** Native path of the linked file. */
  path: string;
  status: LinkStatus;
  /** Name shown to the user (file name). */
  name: string;
}

export interface ActiveDocument {
  /** Native path of the saved document, or null when it was never saved. */
  path: string | null;
  name: string;
  /** Whether it has unsaved changes. */
  dirty: boolean;
}

export interface HostCapabilities {
  /** Opening a file as a document to edit (Photoshop). */
  open: boolean;
  /** Placing a file into the active document. */
  place: boolean;
  /** Listing, relinking and updating placed links (InDesign; Photoshop smart objects partly). */
  links: boolean;
}

export interface HostAdapter {
  readonly name: HostName;
  readonly capabilities: HostCapabilities;
  /** Opens a local file as a new document. */
  openFile(path: string): Promise<void>;
  /** Places a local file into the active document. */
  placeFile(path: string, mode: PlaceMode): Promise<void>;
  /** The active document, or null when none is open. */
  activeDocument(): Promise<ActiveDocument | null>;
  /** Saves the active document in place and returns its path (null when it has never been saved). */
  saveActiveDocument(): Promise<string | null>;
  /** Placed links of the active document. */
  listLinks(): Promise<PlacedLink[]>;
  /** Points a link at another file (e.g. a newer checkout) and updates it. */
  relink(linkId: string, path: string): Promise<void>;
  /** Reloads a link whose file changed on disk. */
  updateLink(linkId: string): Promise<void>;
  /** Subscribes to "the active document was saved"; returns an unsubscribe function. */
  onDocumentSaved(listener: (path: string) => void): () => void;
}
