/**
 * `npm run build`: a loadable plugin per host under `dist/`, from the one source manifest.
 *
 *     dist/photoshop/  manifest.json (host PS, id org.imagine.panel_ps), index.html, index.js, icons/
 *     dist/indesign/   manifest.json (host ID, id org.imagine.panel_id), index.html, index.js, icons/
 *
 * The panel is bundled once (plugin/build/bundle.ts) and the same script goes to both: the
 * host is detected at run time. Each generated manifest is checked against the packaging rules
 * (plugin/build/manifest.ts) with its files on disk, so a folder that builds also packages.
 *
 * Load in Adobe's UXP Developer Tool with `dist/<host>/manifest.json`.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundlePanel, PANEL_ENTRY } from './bundle.ts';
import {
  ensureValidManifest,
  hostApps,
  HOSTS,
  iconFile,
  manifestForHost,
  readSourceManifest,
  type HostApp,
  type ManifestIcon,
  type UxpManifest,
} from './manifest.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BuildOptions {
  /** Repository root: holds `manifest.json` and `plugin/`. */
  root?: string;
  /** Output folder; default `<root>/dist`. */
  outDir?: string;
  /** Panel entry module; default `plugin/src/main.tsx`. */
  entry?: string;
  minify?: boolean;
}

export interface HostBuild {
  app: HostApp;
  /** The host's plugin folder (`dist/photoshop`). */
  dir: string;
  manifest: UxpManifest;
  /** Files written, relative to `dir`, sorted. */
  files: string[];
}

/** The panel's HTML: one classic script, no `type="module"`, no inline code. */
export function renderIndexHtml(options: { title: string; css: boolean }): string {
  const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return [
    '<!DOCTYPE html>',
    '<html>',
    '  <head>',
    '    <meta charset="utf-8">',
    `    <title>${escape(options.title)}</title>`,
    ...(options.css ? ['    <link rel="stylesheet" href="index.css">'] : []),
    '  </head>',
    '  <body>',
    '    <div id="root"></div>',
    '    <script src="index.js"></script>',
    '  </body>',
    '</html>',
    '',
  ].join('\n');
}

/** Every icon file a manifest names (`icons/panel-dark@1x.png`, ...), without duplicates. */
export function iconFiles(manifest: UxpManifest): string[] {
  const icons: ManifestIcon[] = [...(manifest.icons ?? []), ...manifest.entrypoints.flatMap((e) => e.icons ?? [])];
  const files = new Set<string>();
  for (const icon of icons) for (const scale of icon.scale ?? [1]) files.add(iconFile(icon.path, scale));
  return [...files].sort();
}

export async function buildPlugin(options: BuildOptions = {}): Promise<HostBuild[]> {
  const root = options.root ?? REPO_ROOT;
  const outDir = options.outDir ?? join(root, 'dist');
  const pluginDir = join(root, 'plugin');
  const entry = options.entry ?? PANEL_ENTRY;

  // Everything is checked before anything is written: a broken manifest leaves dist/ alone.
  const source = readSourceManifest(join(root, 'manifest.json'), pluginDir);
  if (!existsSync(entry)) throw new Error(`the panel's entry ${entry} does not exist`);

  const staging = join(outDir, '.bundle');
  const minify = options.minify ?? true;
  const bundle = await bundlePanel({ outdir: staging, write: false, entry, minify });
  const outputs = bundle.outputFiles ?? [];
  const script = outputs.find((f) => basename(f.path) === 'index.js');
  if (!script) throw new Error('the bundler produced no index.js');
  const css = outputs.some((f) => basename(f.path) === 'index.css');

  const builds: HostBuild[] = [];
  for (const app of hostApps(source)) {
    const dir = join(outDir, HOSTS[app].folder);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const manifest = manifestForHost(source, app);
    const files: string[] = [];
    const put = async (name: string, data: string | Uint8Array) => {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), data);
      files.push(name);
    };

    await put('manifest.json', `${JSON.stringify(manifest, null, 2)}\n`);
    await put(manifest.main, renderIndexHtml({ title: manifest.name, css }));
    for (const file of outputs) await put(basename(file.path), file.contents);
    for (const icon of iconFiles(manifest)) {
      await mkdir(dirname(join(dir, icon)), { recursive: true });
      await copyFile(join(pluginDir, icon), join(dir, icon));
      files.push(icon);
    }

    // The written manifest, read back, must pass the packaging rules with its files on disk.
    const written = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as unknown;
    ensureValidManifest(written, { mode: 'package', pluginDir: dir, source: join(dir, 'manifest.json') });
    builds.push({ app, dir, manifest, files: files.sort() });
  }
  await rm(staging, { recursive: true, force: true });
  return builds;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    for (const b of await buildPlugin()) {
      console.log(`${HOSTS[b.app].label}: ${b.dir} (${b.manifest.id}, ${b.files.length} files)`);
    }
  } catch (error) {
    console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
