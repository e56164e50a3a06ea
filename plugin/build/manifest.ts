/**
 * The UXP manifest: reading the one source (`manifest.json` at the repository root, manifest
 * v5, both hosts), generating the single-host manifest each package needs, and checking both
 * against the rules Adobe's tooling applies, written down as data (MANIFEST_RULES).
 *
 * Where the rules come from:
 * - Adobe's packager (adobe-uxp/devtools-cli, PluginPackageCommand): one host per package,
 *   cloned from the source manifest; `version` exactly "x.y.z"; `manifestVersion` an integer
 *   >= 4; host `minVersion` matching /^\d+(\.\d+){0,3}$/ and, for Photoshop, >= 22; top-level
 *   `icons` and `icons` on every panel entrypoint; package name `<id>_<APP>.ccx`.
 * - Adobe's manifest docs: manifest v5 needs Photoshop 23.3; InDesign runs UXP plugins from
 *   18.5; icons are `name@1x.png`/`name@2x.png` on disk, named without the suffix; network
 *   domains are origins (wildcards in the top-level domain are refused since UXP 7.4).
 * - This project (UXP-NOTES.md): the companion's loopback origin must be allowed,
 *   `localFileSystem: "fullAccess"` for checkouts, no code generation from strings.
 *
 * @example
 *   const source = readSourceManifest('manifest.json');     // throws ManifestError
 *   const ps = manifestForHost(source, 'PS');               // id "org.imagine.panel_ps"
 *   ensureValidManifest(ps, { mode: 'package', pluginDir: 'dist/photoshop' });
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

export type HostApp = 'PS' | 'ID';

export interface ManifestIcon {
  width: number;
  height: number;
  path: string;
  scale?: number[];
  theme?: string[];
  species?: string[];
}

export interface ManifestHost {
  app: string;
  minVersion: string;
  data?: Record<string, unknown>;
}

export interface ManifestEntrypoint {
  type: string;
  id: string;
  label?: { default?: string } & Record<string, unknown>;
  icons?: ManifestIcon[];
  [key: string]: unknown;
}

export interface UxpManifest {
  manifestVersion: number;
  id: string;
  name: string;
  version: string;
  main: string;
  host: ManifestHost | ManifestHost[];
  entrypoints: ManifestEntrypoint[];
  icons?: ManifestIcon[];
  requiredPermissions?: {
    network?: { domains?: string[] | string };
    localFileSystem?: string;
    clipboard?: string;
    allowCodeGenerationFromStrings?: boolean;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** The folder each host's plugin is built into under `dist/`, and its package suffix. */
export const HOSTS: Readonly<Record<HostApp, { folder: string; label: string }>> = Object.freeze({
  PS: { folder: 'photoshop', label: 'Photoshop' },
  ID: { folder: 'indesign', label: 'InDesign' },
});

/**
 * The companion's origin (companion/config.ts defaults: host 127.0.0.1, port 7420), which every
 * manifest must allow. `http://localhost:7420` is listed too, but not required: the agent
 * listens on 127.0.0.1, and `localhost` may resolve to ::1.
 */
export const COMPANION_ORIGIN = 'http://127.0.0.1:7420';

/** The rules' parameters, in one place. */
export const MANIFEST_LIMITS = Object.freeze({
  manifestVersion: 5,
  /** Our ids: reverse-domain style; Adobe's tooling only requires a non-empty string. */
  idPattern: /^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9]))*$/,
  idMaxLength: 100,
  /** Adobe's packager: exactly three parts. */
  versionPattern: /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/,
  /** Adobe's packager regex for host minVersion. */
  minVersionPattern: /^\d+(\.\d+){0,3}$/,
  /** Lowest host versions: manifest v5 in Photoshop, UXP plugins in InDesign. */
  minHostVersions: { PS: '23.3.0', ID: '18.5.0' } as Record<HostApp, string>,
  nameLength: { min: 3, max: 45 },
  panelIconSize: 23,
  pluginIconSize: 24,
  requiredScales: [1, 2],
  allowedScales: [1, 1.25, 1.5, 1.75, 2, 2.5, 3],
  themes: ['lightest', 'light', 'medium', 'dark', 'darkest'],
  species: ['generic', 'toolbar', 'pluginList', 'chrome'],
  entrypointTypes: ['panel', 'command'],
  localFileSystem: 'fullAccess',
  clipboard: ['read', 'readAndWrite'],
  networkSchemes: ['http:', 'https:', 'ws:', 'wss:'],
});

export interface ManifestProblem {
  /** Which rule (MANIFEST_RULES key). */
  rule: string;
  /** JSON path of the offending value, e.g. `entrypoints[0].icons`. */
  at: string;
  message: string;
}

export class ManifestError extends Error {
  constructor(
    readonly source: string,
    readonly problems: ManifestProblem[],
  ) {
    super(
      problems.length === 1
        ? `${source}: ${problems[0]!.message} (${problems[0]!.at})`
        : `${source} has ${problems.length} problems:\n${problems.map((p) => `  - ${p.message} (${p.at})`).join('\n')}`,
    );
    this.name = 'ManifestError';
  }
}

export interface ValidateOptions {
  /** `source`: the repository manifest (host may list several apps). `package`: one host. */
  mode: 'source' | 'package';
  /** Folder that icon and `main` paths are relative to; when given, files must exist there. */
  pluginDir?: string;
}

interface RuleContext {
  manifest: UxpManifest;
  options: ValidateOptions;
  problem(at: string, message: string): void;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const hosts = (m: UxpManifest): unknown[] => (Array.isArray(m.host) ? m.host : [m.host]);

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** PNG width and height from the IHDR chunk, or null when the bytes are not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | null {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || !signature.every((b, i) => bytes[i] === b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** `icons/panel.png` at scale 2 → `icons/panel@2x.png`. */
export function iconFile(path: string, scale: number): string {
  const dot = path.lastIndexOf('.');
  return `${path.slice(0, dot)}@${scale}x${path.slice(dot)}`;
}

function checkRelativePath(ctx: RuleContext, at: string, path: unknown): path is string {
  if (typeof path !== 'string' || path === '') {
    ctx.problem(at, 'must be a non-empty relative path');
    return false;
  }
  const normal = posix.normalize(path);
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path) || path.includes('\\') || normal.startsWith('..')) {
    ctx.problem(at, `"${path}" must be a relative path inside the plugin folder (forward slashes)`);
    return false;
  }
  return true;
}

function checkIcons(ctx: RuleContext, at: string, icons: unknown, size: number, requireThemeCoverage: boolean): void {
  const L = MANIFEST_LIMITS;
  if (!Array.isArray(icons) || icons.length === 0) {
    ctx.problem(at, 'icons are required (Adobe refuses to package without them)');
    return;
  }
  const covered = new Set<string>();
  icons.forEach((icon: unknown, i) => {
    const iat = `${at}[${i}]`;
    if (!isObject(icon)) return ctx.problem(iat, 'an icon must be an object');
    if (icon.width !== size || icon.height !== size) {
      ctx.problem(iat, `icon must be ${size}x${size}, got ${String(icon.width)}x${String(icon.height)}`);
    }
    const scales = icon.scale;
    if (!Array.isArray(scales) || !L.requiredScales.every((s) => scales.includes(s))) {
      ctx.problem(`${iat}.scale`, `must list the scales ${L.requiredScales.join(' and ')}`);
    } else {
      for (const s of scales) if (!L.allowedScales.includes(s)) ctx.problem(`${iat}.scale`, `unknown scale ${String(s)}`);
    }
    const themes = icon.theme ?? ['all'];
    if (!Array.isArray(themes) || themes.length === 0) ctx.problem(`${iat}.theme`, 'must be a list of themes');
    else
      for (const t of themes) {
        if (t !== 'all' && !L.themes.includes(t)) ctx.problem(`${iat}.theme`, `unknown theme "${String(t)}"`);
        covered.add(String(t));
      }
    if (icon.species !== undefined) {
      if (!Array.isArray(icon.species)) ctx.problem(`${iat}.species`, 'must be a list');
      else for (const s of icon.species) if (!L.species.includes(s)) ctx.problem(`${iat}.species`, `unknown species "${String(s)}"`);
    }
    if (!checkRelativePath(ctx, `${iat}.path`, icon.path)) return;
    if (!/\.png$/i.test(icon.path) || /@\d+(\.\d+)?x\.png$/i.test(icon.path)) {
      ctx.problem(`${iat}.path`, `"${icon.path}" must name a .png without the @1x/@2x suffix`);
      return;
    }
    if (ctx.options.pluginDir && Array.isArray(scales)) {
      for (const scale of scales.filter((s): s is number => typeof s === 'number')) {
        const file = join(ctx.options.pluginDir, iconFile(icon.path, scale));
        if (!existsSync(file)) {
          ctx.problem(`${iat}.path`, `missing icon file ${iconFile(icon.path, scale)}`);
          continue;
        }
        const dims = pngSize(readFileSync(file));
        const want = Math.round(size * scale);
        if (!dims) ctx.problem(`${iat}.path`, `${iconFile(icon.path, scale)} is not a PNG`);
        else if (dims.width !== want || dims.height !== want) {
          ctx.problem(`${iat}.path`, `${iconFile(icon.path, scale)} is ${dims.width}x${dims.height}, expected ${want}x${want}`);
        }
      }
    }
  });
  if (requireThemeCoverage && !covered.has('all')) {
    const missing = L.themes.filter((t) => !covered.has(t));
    if (missing.length > 0) ctx.problem(at, `no icon for the theme(s) ${missing.join(', ')}`);
  }
}

/** A network permission: a full origin with scheme and port, wildcards only as a subdomain. */
export function checkNetworkDomain(domain: unknown): string | null {
  if (typeof domain !== 'string' || domain === '') return 'must be a non-empty string';
  if (domain === 'all') return '"all" is not allowed: the panel talks only to listed origins';
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]+)$/i.exec(domain);
  if (!match) return `"${domain}" must be a full origin: scheme://host:port, no path`;
  const [, scheme, authority] = match as unknown as [string, string, string];
  if (!MANIFEST_LIMITS.networkSchemes.includes(`${scheme.toLowerCase()}:`)) return `"${domain}" has an unsupported scheme`;
  const portMatch = /^(.*):(\d{1,5})$/.exec(authority);
  if (!portMatch || Number(portMatch[2]) > 65535) return `"${domain}" must name its port (bare hosts do not match)`;
  const host = portMatch[1]!;
  if (host.startsWith('[')) return null; // IPv6 literal
  const labels = host.split('.');
  if (labels.some((l) => l === '')) return `"${domain}" has an empty host label`;
  if (labels.slice(1).some((l) => l.includes('*'))) return `"${domain}": a wildcard is allowed only as the leftmost label, never in the top-level domain`;
  if (labels[0]!.includes('*') && (labels[0] !== '*' || labels.length < 3)) {
    return `"${domain}": a wildcard must be a whole leftmost label above a registrable domain`;
  }
  if (!labels.every((l) => /^(\*|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)$/i.test(l))) return `"${domain}" has an invalid host`;
  return null;
}

type Rule = { description: string; check(ctx: RuleContext): void };

/** Every rule, keyed by name; each adds problems to the context. */
export const MANIFEST_RULES: Readonly<Record<string, Rule>> = Object.freeze({
  'manifest-version': {
    description: `manifestVersion is the integer ${MANIFEST_LIMITS.manifestVersion}`,
    check({ manifest, problem }) {
      if (manifest.manifestVersion !== MANIFEST_LIMITS.manifestVersion) {
        problem('manifestVersion', `must be the number ${MANIFEST_LIMITS.manifestVersion}, got ${JSON.stringify(manifest.manifestVersion)}`);
      }
    },
  },
  id: {
    description: 'id is a reverse-domain style identifier',
    check({ manifest, problem }) {
      const id = manifest.id;
      if (typeof id !== 'string' || id.length === 0 || id.length > MANIFEST_LIMITS.idMaxLength || !MANIFEST_LIMITS.idPattern.test(id)) {
        problem('id', `must be letters, digits, ".", "_" or "-" (at most ${MANIFEST_LIMITS.idMaxLength}), got ${JSON.stringify(id)}`);
      }
    },
  },
  name: {
    description: 'name is 3 to 45 characters',
    check({ manifest, problem }) {
      const { min, max } = MANIFEST_LIMITS.nameLength;
      const name = manifest.name;
      if (typeof name !== 'string' || name.trim().length < min || name.length > max) {
        problem('name', `must be ${min} to ${max} characters, got ${JSON.stringify(name)}`);
      }
    },
  },
  version: {
    description: 'version has exactly three numeric parts (x.y.z)',
    check({ manifest, problem }) {
      if (typeof manifest.version !== 'string' || !MANIFEST_LIMITS.versionPattern.test(manifest.version)) {
        problem('version', `must be "x.y.z" with three numeric parts, got ${JSON.stringify(manifest.version)}`);
      }
    },
  },
  main: {
    description: 'main names the panel HTML file',
    check({ manifest, options, problem }) {
      if (!checkRelativePath({ manifest, options, problem }, 'main', manifest.main)) return;
      if (!/\.html?$/i.test(manifest.main)) problem('main', `must name an .html file, got "${manifest.main}"`);
      // The source's main is generated by the build; a package must contain it.
      else if (options.mode === 'package' && options.pluginDir && !existsSync(join(options.pluginDir, manifest.main))) {
        problem('main', `missing file ${manifest.main}`);
      }
    },
  },
  host: {
    description: 'a package names ONE host (PS or ID) with a minVersion at or above the floor',
    check({ manifest, options, problem }) {
      const list = hosts(manifest);
      if (options.mode === 'package' && (Array.isArray(manifest.host) || !isObject(manifest.host))) {
        problem('host', 'a package must name one host object, not a list (Adobe cannot install it)');
        if (!Array.isArray(manifest.host)) return;
      }
      if (list.length === 0) problem('host', 'must name at least one host');
      const seen = new Set<string>();
      list.forEach((host, i) => {
        const at = Array.isArray(manifest.host) ? `host[${i}]` : 'host';
        if (!isObject(host)) return problem(at, 'must be an object with app and minVersion');
        const app = host.app;
        if (app !== 'PS' && app !== 'ID') return problem(`${at}.app`, `must be "PS" or "ID", got ${JSON.stringify(app)}`);
        if (seen.has(app)) problem(`${at}.app`, `${app} is listed twice`);
        seen.add(app);
        const min = host.minVersion;
        if (typeof min !== 'string' || !MANIFEST_LIMITS.minVersionPattern.test(min)) {
          return problem(`${at}.minVersion`, `must be a version like "24.4.0", got ${JSON.stringify(min)}`);
        }
        const floor = MANIFEST_LIMITS.minHostVersions[app];
        if (compareVersions(min, floor) < 0) problem(`${at}.minVersion`, `${HOSTS[app].label} needs at least ${floor} for this manifest, got ${min}`);
        if (app === 'PS' && (!isObject(host.data) || host.data.apiVersion !== 2)) {
          problem(`${at}.data.apiVersion`, 'Photoshop needs apiVersion 2 (executeAsModal)');
        }
      });
    },
  },
  entrypoints: {
    description: 'entrypoints are panels or commands with unique ids and a label',
    check({ manifest, problem }) {
      if (!Array.isArray(manifest.entrypoints) || manifest.entrypoints.length === 0) return problem('entrypoints', 'must list at least one entrypoint');
      const ids = new Set<string>();
      manifest.entrypoints.forEach((e: unknown, i) => {
        const at = `entrypoints[${i}]`;
        if (!isObject(e)) return problem(at, 'must be an object');
        if (!MANIFEST_LIMITS.entrypointTypes.includes(String(e.type))) problem(`${at}.type`, `must be "panel" or "command", got ${JSON.stringify(e.type)}`);
        if (typeof e.id !== 'string' || e.id === '') problem(`${at}.id`, 'must be a non-empty string');
        else if (ids.has(e.id)) problem(`${at}.id`, `"${e.id}" is used twice`);
        else ids.add(e.id);
        if (!isObject(e.label) || typeof e.label.default !== 'string' || e.label.default === '') problem(`${at}.label.default`, 'must be a non-empty string');
      });
    },
  },
  'panel-icons': {
    description: `every panel entrypoint has ${MANIFEST_LIMITS.panelIconSize}x${MANIFEST_LIMITS.panelIconSize} icons at @1x and @2x for every theme`,
    check(ctx) {
      if (!Array.isArray(ctx.manifest.entrypoints)) return;
      ctx.manifest.entrypoints.forEach((e, i) => {
        if (isObject(e) && e.type === 'panel') checkIcons(ctx, `entrypoints[${i}].icons`, e.icons, MANIFEST_LIMITS.panelIconSize, true);
      });
    },
  },
  'plugin-icons': {
    description: `top-level icons (${MANIFEST_LIMITS.pluginIconSize}x${MANIFEST_LIMITS.pluginIconSize}, @1x and @2x)`,
    check(ctx) {
      checkIcons(ctx, 'icons', ctx.manifest.icons, MANIFEST_LIMITS.pluginIconSize, false);
    },
  },
  network: {
    description: 'network domains are full origins with scheme and port, and include the companion',
    check({ manifest, problem }) {
      const domains = manifest.requiredPermissions?.network?.domains;
      if (!Array.isArray(domains)) return problem('requiredPermissions.network.domains', 'must be a list of origins');
      domains.forEach((d, i) => {
        const reason = checkNetworkDomain(d);
        if (reason) problem(`requiredPermissions.network.domains[${i}]`, reason);
      });
      if (!domains.includes(COMPANION_ORIGIN)) {
        problem('requiredPermissions.network.domains', `must include the companion's origin ${COMPANION_ORIGIN}`);
      }
    },
  },
  'file-system': {
    description: 'localFileSystem is "fullAccess" (checkouts live anywhere on disk)',
    check({ manifest, problem }) {
      const value = manifest.requiredPermissions?.localFileSystem;
      if (value !== MANIFEST_LIMITS.localFileSystem) problem('requiredPermissions.localFileSystem', `must be "fullAccess", got ${JSON.stringify(value)}`);
    },
  },
  permissions: {
    description: 'no code generation from strings; known clipboard values',
    check({ manifest, problem }) {
      const p = manifest.requiredPermissions;
      if (!isObject(p)) return problem('requiredPermissions', 'must be an object');
      if (p.allowCodeGenerationFromStrings === true) problem('requiredPermissions.allowCodeGenerationFromStrings', 'must not be true: the bundle uses no eval');
      if (p.clipboard !== undefined && !MANIFEST_LIMITS.clipboard.includes(String(p.clipboard))) {
        problem('requiredPermissions.clipboard', `must be "read" or "readAndWrite", got ${JSON.stringify(p.clipboard)}`);
      }
    },
  },
});

/** Checks a manifest against every rule; an empty list means it is valid. */
export function validateManifest(manifest: unknown, options: ValidateOptions): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  if (!isObject(manifest)) return [{ rule: 'shape', at: '(root)', message: 'the manifest must be a JSON object' }];
  for (const [rule, { check }] of Object.entries(MANIFEST_RULES)) {
    check({ manifest: manifest as UxpManifest, options, problem: (at, message) => problems.push({ rule, at, message }) });
  }
  return problems;
}

export function ensureValidManifest(manifest: unknown, options: ValidateOptions & { source?: string }): UxpManifest {
  const problems = validateManifest(manifest, options);
  if (problems.length > 0) throw new ManifestError(options.source ?? 'manifest.json', problems);
  return manifest as UxpManifest;
}

/** Parses manifest text strictly (no comments, no trailing commas), naming line and column. */
export function parseManifestText(text: string, source = 'manifest.json'): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const pos = /position (\d+)/.exec(message);
    let where = '';
    if (pos) {
      const before = body.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
    }
    throw new ManifestError(source, [{ rule: 'strict-json', at: '(file)', message: `is not strict JSON${where}: ${message}` }]);
  }
}

/** Reads and validates the source manifest (hosts may be a list). */
export function readSourceManifest(path: string, pluginDir?: string): UxpManifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ManifestError(path, [{ rule: 'file', at: '(file)', message: `cannot be read: ${(error as Error).message}` }]);
  }
  const options: ValidateOptions & { source: string } = { mode: 'source', source: path };
  if (pluginDir) options.pluginDir = pluginDir;
  return ensureValidManifest(parseManifestText(text, path), options);
}

/** The id a host's package installs under: `org.imagine.panel` → `org.imagine.panel_ps`. */
export function hostPluginId(id: string, app: HostApp): string {
  return `${id}_${app.toLowerCase()}`;
}

/**
 * The single-host manifest for one app: the source cloned, `host` the app's entry, `id`
 * suffixed per host (as bolt-uxp does) so installing both packages cannot conflict.
 */
export function manifestForHost(source: UxpManifest, app: HostApp): UxpManifest {
  const host = hosts(source).find((h) => isObject(h) && h.app === app) as ManifestHost | undefined;
  if (!host) throw new Error(`the source manifest has no ${app} host`);
  const clone = structuredClone(source);
  return { ...clone, id: hostPluginId(source.id, app), host: structuredClone(host) };
}

/** The apps named by a manifest's host field, in order. */
export function hostApps(manifest: UxpManifest): HostApp[] {
  return hosts(manifest)
    .map((h) => (isObject(h) ? h.app : undefined))
    .filter((a): a is HostApp => a === 'PS' || a === 'ID');
}

/** `<id>_<APP>.ccx`, the name Adobe's packager gives (the source id, not the suffixed one). */
export function packageFileName(sourceId: string, app: HostApp): string {
  return `${sourceId}_${app}.ccx`;
}
