/**
 * The parts of the host modules (`uxp`, `photoshop`, `indesign`) the adapters use, typed
 * structurally so the fakes in `fakes/` can stand in for them, and the one function that loads
 * them with UXP's global `require`. Nothing outside `plugin/host/` loads a host module.
 *
 * Shapes follow Adobe's documentation and `@types/photoshop`; members marked UNVERIFIED could
 * not be checked without a running host.
 */

/** Loads a host module by name; injected so tests can hand the adapters fakes. */
export type ModuleLoader = (name: 'uxp' | 'photoshop' | 'indesign') => unknown;

/**
 * UXP's global `require`, read as `globalThis.require` (Adobe's own samples call
 * `window.require("photoshop")`). Reading it as a property keeps esbuild from replacing it with
 * its CommonJS shim, which would make every environment look like a UXP host.
 */
function globalRequire(): ((name: string) => unknown) | undefined {
  const candidate = (globalThis as { require?: unknown }).require;
  return typeof candidate === 'function' ? (candidate as (name: string) => unknown) : undefined;
}

/** Whether UXP's global `require` is present (false in the browser preview and in Node ESM). */
export function hasHostRequire(): boolean {
  return globalRequire() !== undefined;
}

/**
 * Loads a host module through UXP's global `require`. Host modules are external to the bundle
 * (plugin/build/bundle.ts), so UXP resolves them at run time, never esbuild.
 */
export const loadHostModule: ModuleLoader = (name) => {
  const load = globalRequire();
  if (!load) throw new Error(`cannot load the "${name}" host module: not running inside a UXP host`);
  return load(name);
};

// ---- uxp ----

/** A UXP storage entry (`File`); only what the adapters read. */
export interface UxpEntry {
  readonly name?: string;
  readonly nativePath?: string;
}

export interface UxpModule {
  host: { name: string; version?: string };
  storage: {
    localFileSystem: {
      /** `file:/...` URLs need `localFileSystem: "fullAccess"` in the manifest. */
      getEntryWithUrl(url: string): Promise<UxpEntry>;
      /** Documented as returning a string; awaited in case a host returns a promise. */
      createSessionToken(entry: UxpEntry): string | Promise<string>;
    };
  };
}

// ---- photoshop ----

export interface ActionDescriptor {
  _obj: string;
  [key: string]: unknown;
}

export interface PsLayer {
  readonly id: number;
  readonly name: string;
  /** `Constants.LayerKind`: "smartObject", "group", "pixel", ... */
  readonly kind: string;
  /** Children of a group layer. */
  readonly layers?: ArrayLike<PsLayer> | null;
}

export interface PsDocument {
  readonly id: number;
  readonly name: string;
  /** Full path; UNVERIFIED for a never-saved document (empty string or a throw are handled). */
  readonly path: string;
  /** False when the document has unsaved changes. */
  readonly saved: boolean;
  readonly layers: ArrayLike<PsLayer>;
  save(): Promise<void>;
}

export interface PhotoshopModule {
  app: {
    /** The focused document; null (or a throw, on some versions) when none is open. */
    readonly activeDocument: PsDocument | null;
    open(entry: UxpEntry): Promise<PsDocument>;
  };
  core: {
    executeAsModal<T>(fn: (context: unknown) => Promise<T>, options: { commandName: string }): Promise<T>;
  };
  action: {
    batchPlay(commands: ActionDescriptor[], options: Record<string, unknown>): Promise<ActionDescriptor[]>;
    addNotificationListener(events: string[], listener: PsNotificationListener): Promise<void> | void;
    removeNotificationListener(events: string[], listener: PsNotificationListener): Promise<void> | void;
  };
}

export type PsNotificationListener = (event: string, descriptor: Record<string, unknown> | undefined) => void;

// ---- indesign ----

/** InDesign DOM collections are indexed with `.item(i)`, not `[i]`. */
export interface IdCollection<T> {
  readonly length: number;
  item(index: number): T;
}

export interface IdLink {
  readonly id: number;
  readonly name: string;
  /** Native path of the linked file. */
  readonly filePath: string;
  /** A `LinkStatus` enum value. */
  readonly status: unknown;
  relink(path: string): unknown;
  update(): unknown;
  /** Embeds the linked file in the document. */
  unlink(): unknown;
}

export interface IdGraphic {
  readonly itemLink?: IdLink | null;
  readonly parent?: unknown;
}

export interface IdFrame {
  readonly constructorName?: string;
  place(path: string): ArrayLike<IdGraphic> | IdGraphic[];
  fit(option: unknown): unknown;
}

export interface IdPage {
  /** `[y1, x1, y2, x2]` in the document's ruler units. */
  readonly bounds: number[];
  readonly marginPreferences: { top: number; left: number; bottom: number; right: number };
  readonly rectangles: { add(properties: { geometricBounds: number[] }): IdFrame };
}

export interface IdDocument {
  readonly name: string;
  /** True when there are unsaved changes. */
  readonly modified: boolean;
  /** Whether the document was ever saved to disk. */
  readonly saved: boolean;
  /** Under UXP a promise of a `File` entry (`(await doc.fullName).nativePath`). */
  readonly fullName: unknown;
  readonly links: IdCollection<IdLink> & { itemByID?(id: number): IdLink };
  save(): unknown;
}

export interface IndesignModule {
  app: {
    readonly documents: { readonly length: number };
    readonly activeDocument: IdDocument;
    /** Items selected in the active window (an Array, unlike DOM collections). */
    readonly selection: unknown;
    readonly activeWindow?: { readonly activePage?: IdPage } | null;
    open(path: string): unknown;
    doScript(script: (...args: unknown[]) => unknown, language: unknown, args: unknown[], undoMode: unknown, undoName: string): unknown;
    addEventListener(event: string, handler: (event: unknown) => void): unknown;
    removeEventListener(event: string, handler: (event: unknown) => void): unknown;
  };
  FitOptions: { PROPORTIONALLY: unknown; CENTER_CONTENT: unknown };
  LinkStatus: {
    NORMAL: unknown;
    LINK_OUT_OF_DATE: unknown;
    LINK_MISSING: unknown;
    LINK_EMBEDDED: unknown;
    LINK_INACCESSIBLE: unknown;
  };
  UndoModes: { ENTIRE_SCRIPT: unknown };
  ScriptLanguage: { UXPSCRIPT: unknown };
}

// ---- helpers shared by the adapters ----

/** The message of whatever a host threw (hosts throw strings, numbers and Errors). */
export function describeHostError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  if (error && typeof error === 'object' && 'message' in error) return String((error as { message: unknown }).message);
  return String(error);
}

/** An Error that names what the host refused, keeping the host's error as `cause`. */
export function hostError(what: string, error: unknown): Error {
  return new Error(`${what}: ${describeHostError(error)}`, { cause: error });
}

/** Refuses a place mode the interface does not know (the panel is TypeScript; UXP is not). */
export function checkPlaceMode(mode: unknown): void {
  if (mode !== 'linked' && mode !== 'embedded') throw new Error(`unknown place mode "${String(mode)}"`);
}

/** Last segment of a native path (`/a/b.psd`, `C:\\a\\b.psd`). */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] ?? path;
}

/** Array-likes from host collections, without relying on iterators. */
export function toArray<T>(items: ArrayLike<T> | null | undefined): T[] {
  if (!items) return [];
  const out: T[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item !== undefined && item !== null) out.push(item);
  }
  return out;
}
