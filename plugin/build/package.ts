/**
 * `npm run package`: builds, then zips each host's plugin folder into the `.ccx` Creative Cloud
 * installs (`dist/<id>_PS.ccx`, `dist/<id>_ID.ccx`, named like Adobe's packager does). A `.ccx`
 * is a plain zip with the single-host `manifest.json` at its root. Entries are sorted and
 * dated 1980-01-01 (the zip epoch), so the same build gives the same bytes.
 */
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync, type Zippable } from 'fflate';
import { buildPlugin, REPO_ROOT } from './build.ts';
import {
  ensureValidManifest,
  hostApps,
  hostPluginId,
  HOSTS,
  packageFileName,
  parseManifestText,
  readSourceManifest,
  type HostApp,
} from './manifest.ts';

export interface PackageOptions {
  root?: string;
  /** Where the host folders are and the `.ccx` files go; default `<root>/dist`. */
  outDir?: string;
}

export interface HostPackage {
  app: HostApp;
  file: string;
  bytes: number;
  /** Zip entries, sorted. */
  entries: string[];
}

/** Zip entries are dated with the zip format's epoch so packages are reproducible. */
const ZIP_EPOCH = new Date(1980, 0, 1, 0, 0, 0);

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue; // .DS_Store and friends, as Adobe's packager skips them
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full)));
    else if (entry.isFile() && !entry.name.endsWith('.ccx')) out.push(full);
  }
  return out;
}

export async function packagePlugin(options: PackageOptions = {}): Promise<HostPackage[]> {
  const root = options.root ?? REPO_ROOT;
  const outDir = options.outDir ?? join(root, 'dist');
  const source = readSourceManifest(join(root, 'manifest.json'));
  const packages: HostPackage[] = [];

  for (const app of hostApps(source)) {
    const dir = join(outDir, HOSTS[app].folder);
    const manifestPath = join(dir, 'manifest.json');
    if (!existsSync(manifestPath)) throw new Error(`${dir} has no manifest.json: run npm run build first`);
    const manifest = ensureValidManifest(parseManifestText(await readFile(manifestPath, 'utf8'), manifestPath), {
      mode: 'package',
      pluginDir: dir,
      source: manifestPath,
    });
    const expectedId = hostPluginId(source.id, app);
    if (manifest.id !== expectedId || Array.isArray(manifest.host) || manifest.host.app !== app) {
      throw new Error(`${manifestPath} is not the ${HOSTS[app].label} build of ${source.id} (id ${manifest.id}): rebuild`);
    }

    const files = (await listFiles(dir)).map((f) => relative(dir, f).split(sep).join('/')).sort();
    const zippable: Zippable = {};
    for (const name of files) zippable[name] = [await readFile(join(dir, name)), { mtime: ZIP_EPOCH }];
    const zip = zipSync(zippable, { level: 9 });

    const file = join(outDir, packageFileName(source.id, app));
    await writeFile(`${file}.tmp`, zip);
    await rename(`${file}.tmp`, file);
    packages.push({ app, file, bytes: zip.byteLength, entries: files });
  }
  return packages;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await buildPlugin();
    for (const p of await packagePlugin()) console.log(`${HOSTS[p.app].label}: ${p.file} (${p.bytes} bytes, ${p.entries.length} files)`);
  } catch (error) {
    console.error(`package failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
