import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { defaults as companionDefaults } from '../../companion/config.ts';
import { buildPlugin, REPO_ROOT, type HostBuild } from './build.ts';
import {
  checkNetworkDomain,
  COMPANION_ORIGIN,
  ensureValidManifest,
  HOSTS,
  ManifestError,
  manifestForHost,
  MANIFEST_RULES,
  parseManifestText,
  pngSize,
  readSourceManifest,
  validateManifest,
  type UxpManifest,
  type ValidateOptions,
} from './manifest.ts';

const SOURCE_PATH = join(REPO_ROOT, 'manifest.json');
const PLUGIN_DIR = join(REPO_ROOT, 'plugin');
const source = (): UxpManifest => JSON.parse(JSON.stringify(readSourceManifest(SOURCE_PATH, PLUGIN_DIR))) as UxpManifest;

let work: string;
let builds: HostBuild[];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagine-manifest-'));
  // A temporary entry: the rules are about the manifests, not the panel's code.
  await writeFile(join(work, 'entry.ts'), "document.body.setAttribute('data-panel', 'test');\n");
  builds = await buildPlugin({ outDir: join(work, 'dist'), entry: join(work, 'entry.ts'), minify: false });
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the generated manifests', () => {
  test('one per host, parsed strictly from disk, pass every packaging rule with their files', async () => {
    assert.deepEqual(builds.map((b) => b.app), ['PS', 'ID']);
    for (const b of builds) {
      const text = await readFile(join(b.dir, 'manifest.json'), 'utf8');
      const manifest = parseManifestText(text) as UxpManifest;
      assert.deepEqual(validateManifest(manifest, { mode: 'package', pluginDir: b.dir }), []);
      assert.equal(b.dir, join(work, 'dist', HOSTS[b.app].folder));
    }
  });

  test('manifest v5, ids suffixed per host, x.y.z version, ONE host object with app and minVersion', async () => {
    const [ps, id] = await Promise.all(builds.map(async (b) => JSON.parse(await readFile(join(b.dir, 'manifest.json'), 'utf8')) as UxpManifest));
    assert.ok(ps && id);
    for (const m of [ps, id]) {
      assert.equal(m.manifestVersion, 5);
      assert.match(m.version, /^\d+\.\d+\.\d+$/);
      assert.ok(!Array.isArray(m.host) && typeof m.host === 'object');
    }
    assert.equal(ps.id, 'org.imagine.panel_ps');
    assert.equal(id.id, 'org.imagine.panel_id');
    assert.deepEqual(ps.host, { app: 'PS', minVersion: '24.4.0', data: { apiVersion: 2 } });
    assert.deepEqual(id.host, { app: 'ID', minVersion: '18.5.0' });
    // Everything else is the source's, unchanged.
    const { id: _a, host: _b, ...rest } = source();
    const { id: _c, host: _d, ...psRest } = ps;
    assert.deepEqual(psRest, rest);
  });

  test('every panel entrypoint and the top level have icons of the declared sizes, @1x and @2x, on disk', async () => {
    for (const b of builds) {
      const panels = b.manifest.entrypoints.filter((e) => e.type === 'panel');
      assert.ok(panels.length > 0);
      const declared = [...(b.manifest.icons ?? []), ...panels.flatMap((p) => p.icons ?? [])];
      for (const icon of declared) {
        for (const scale of [1, 2]) {
          const file = join(b.dir, icon.path.replace(/\.png$/, `@${scale}x.png`));
          const meta = await sharp(file).metadata();
          assert.deepEqual([meta.width, meta.height, meta.format], [icon.width * scale, icon.height * scale, 'png'], file);
        }
      }
      assert.ok(panels.every((p) => p.icons?.every((i) => i.width === 23 && i.height === 23)));
      assert.ok(b.manifest.icons?.every((i) => i.width === 24 && i.height === 24));
    }
  });

  test("network domains are full origins with port, and include the companion's origin", () => {
    const origin = `http://${companionDefaults.host}:${companionDefaults.port}`;
    assert.equal(COMPANION_ORIGIN, origin, 'COMPANION_ORIGIN follows companion/config.ts');
    for (const b of builds) {
      const domains = b.manifest.requiredPermissions?.network?.domains as string[];
      assert.ok(domains.includes(origin));
      assert.ok(domains.includes(`http://localhost:${companionDefaults.port}`));
      for (const d of domains) assert.equal(checkNetworkDomain(d), null, d);
      assert.equal(b.manifest.requiredPermissions?.localFileSystem, 'fullAccess');
      assert.notEqual(b.manifest.requiredPermissions?.allowCodeGenerationFromStrings, true);
    }
  });
});

describe('the source manifest', () => {
  test('is strict JSON, valid in source mode, and names both hosts', () => {
    const m = source();
    assert.deepEqual(validateManifest(m, { mode: 'source', pluginDir: PLUGIN_DIR }), []);
    assert.deepEqual((m.host as { app: string }[]).map((h) => h.app), ['PS', 'ID']);
  });

  test('is refused as a package: packages must name one host', () => {
    const problems = validateManifest(source(), { mode: 'package' });
    assert.deepEqual(problems.map((p) => p.rule), ['host']);
    assert.match(problems[0]!.message, /one host object, not a list/);
  });

  test('manifestForHost refuses an app the source does not list', () => {
    const m = source();
    m.host = [{ app: 'PS', minVersion: '24.4.0', data: { apiVersion: 2 } }];
    assert.throws(() => manifestForHost(m, 'ID'), /has no ID host/);
  });
});

describe('hostile manifests', () => {
  const pkg = (): UxpManifest => manifestForHost(source(), 'PS');
  const opts: ValidateOptions = { mode: 'package' };
  const rulesHit = new Set<string>();

  function refuses(name: string, mutate: (m: UxpManifest) => void, rule: string, message: RegExp, options = opts) {
    test(`${name} → ${rule}`, () => {
      const m = pkg();
      mutate(m);
      const problems = validateManifest(m, options);
      assert.ok(
        problems.some((p) => p.rule === rule && message.test(p.message)),
        `expected a ${rule} problem matching ${message}, got ${JSON.stringify(problems)}`,
      );
      rulesHit.add(rule);
      assert.throws(() => ensureValidManifest(m, options), ManifestError);
    });
  }

  refuses('manifestVersion 4', (m) => (m.manifestVersion = 4), 'manifest-version', /must be the number 5/);
  refuses('manifestVersion as a string', (m) => ((m as { manifestVersion: unknown }).manifestVersion = '5'), 'manifest-version', /got "5"/);
  refuses('an id with a space', (m) => (m.id = 'org imagine'), 'id', /letters, digits/);
  refuses('an id with a slash', (m) => (m.id = '../evil'), 'id', /letters, digits/);
  refuses('an id with a double dot', (m) => (m.id = 'org..imagine'), 'id', /letters, digits/);
  refuses('an empty id', (m) => (m.id = ''), 'id', /got ""/);
  refuses('a two-letter name', (m) => (m.name = 'Im'), 'name', /3 to 45/);
  refuses('version with two parts', (m) => (m.version = '1.0'), 'version', /three numeric parts/);
  refuses('version with four parts', (m) => (m.version = '1.0.0.0'), 'version', /three numeric parts/);
  refuses('version with a pre-release', (m) => (m.version = '1.0.0-beta'), 'version', /three numeric parts/);
  refuses('version with a leading zero', (m) => (m.version = '01.0.0'), 'version', /three numeric parts/);
  refuses('main outside the plugin', (m) => (m.main = '../index.html'), 'main', /relative path inside/);
  refuses('main that is not HTML', (m) => (m.main = 'index.js'), 'main', /\.html/);
  refuses('a host list in a package', (m) => (m.host = [m.host as never]), 'host', /one host object/);
  refuses('an unknown app', (m) => (m.host = { app: 'XD', minVersion: '40.0.0' }), 'host', /"PS" or "ID"/);
  refuses('a missing minVersion', (m) => (m.host = { app: 'ID' } as never), 'host', /must be a version/);
  refuses('Photoshop below manifest v5', (m) => (m.host = { app: 'PS', minVersion: '22.5.0', data: { apiVersion: 2 } }), 'host', /at least 23\.3\.0/);
  refuses('InDesign before UXP', (m) => (m.host = { app: 'ID', minVersion: '17.0.0' }), 'host', /at least 18\.5\.0/);
  refuses('Photoshop without apiVersion 2', (m) => (m.host = { app: 'PS', minVersion: '24.4.0' }), 'host', /apiVersion 2/);
  refuses('a source listing a host twice', (m) => (m.host = [{ app: 'ID', minVersion: '18.5.0' }, { app: 'ID', minVersion: '19.0.0' }]), 'host', /listed twice/, { mode: 'source' });
  refuses('no entrypoints', (m) => (m.entrypoints = []), 'entrypoints', /at least one/);
  refuses('duplicate entrypoint ids', (m) => m.entrypoints.push({ ...m.entrypoints[0]! }), 'entrypoints', /used twice/);
  refuses('an unknown entrypoint type', (m) => (m.entrypoints[0]!.type = 'dialog'), 'entrypoints', /"panel" or "command"/);
  refuses('a panel without a label', (m) => delete m.entrypoints[0]!.label, 'entrypoints', /non-empty string/);
  refuses('a panel without icons', (m) => delete m.entrypoints[0]!.icons, 'panel-icons', /icons are required/);
  refuses('a panel icon of the wrong size', (m) => (m.entrypoints[0]!.icons![0]!.width = 24), 'panel-icons', /must be 23x23/);
  refuses('a panel icon without @2x', (m) => (m.entrypoints[0]!.icons![0]!.scale = [1]), 'panel-icons', /scales 1 and 2/);
  refuses('a panel icon with the @1x suffix in the path', (m) => (m.entrypoints[0]!.icons![0]!.path = 'icons/panel-dark@1x.png'), 'panel-icons', /without the @1x\/@2x suffix/);
  refuses('a panel icon with an absolute path', (m) => (m.entrypoints[0]!.icons![0]!.path = '/icons/panel.png'), 'panel-icons', /relative path/);
  refuses('a panel without icons for light themes', (m) => m.entrypoints[0]!.icons!.pop(), 'panel-icons', /no icon for the theme\(s\) lightest, light/);
  refuses('an unknown theme', (m) => (m.entrypoints[0]!.icons![0]!.theme = ['midnight']), 'panel-icons', /unknown theme "midnight"/);
  refuses('no top-level icons', (m) => delete m.icons, 'plugin-icons', /icons are required/);
  refuses('a 48px plugin icon', (m) => (m.icons![0]!.width = m.icons![0]!.height = 48), 'plugin-icons', /must be 24x24/);
  refuses('an unknown icon species', (m) => (m.icons![0]!.species = ['dock']), 'plugin-icons', /unknown species/);
  refuses('network "all"', (m) => (m.requiredPermissions!.network = { domains: 'all' }), 'network', /list of origins/);
  refuses('no companion origin', (m) => (m.requiredPermissions!.network = { domains: ['https://images.example:443'] }), 'network', /companion's origin http:\/\/127\.0\.0\.1:7420/);
  refuses('a bare host', (m) => (m.requiredPermissions!.network!.domains as string[]).push('127.0.0.1:7420'), 'network', /full origin/);
  refuses('an origin without a port', (m) => (m.requiredPermissions!.network!.domains as string[]).push('https://images.example'), 'network', /must name its port/);
  refuses('a wildcard TLD', (m) => (m.requiredPermissions!.network!.domains as string[]).push('https://images.*:443'), 'network', /never in the top-level domain/);
  refuses('a wildcard over a TLD', (m) => (m.requiredPermissions!.network!.domains as string[]).push('https://*.com:443'), 'network', /above a registrable domain/);
  refuses('an origin with a path', (m) => (m.requiredPermissions!.network!.domains as string[]).push('http://127.0.0.1:7420/agent'), 'network', /no path/);
  refuses('an unsupported scheme', (m) => (m.requiredPermissions!.network!.domains as string[]).push('ftp://files.example:21'), 'network', /unsupported scheme/);
  refuses('plugin-only file access', (m) => (m.requiredPermissions!.localFileSystem = 'plugin'), 'file-system', /fullAccess/);
  refuses('code generation from strings', (m) => (m.requiredPermissions!.allowCodeGenerationFromStrings = true), 'permissions', /must not be true/);
  refuses('an unknown clipboard value', (m) => (m.requiredPermissions!.clipboard = 'write'), 'permissions', /"read" or "readAndWrite"/);

  test('every rule is exercised by a hostile case above', () => {
    assert.deepEqual([...rulesHit].sort(), Object.keys(MANIFEST_RULES).sort());
  });

  test('wildcard subdomains and IPv6 loopback origins are accepted', () => {
    assert.equal(checkNetworkDomain('https://*.images.example:443'), null);
    assert.equal(checkNetworkDomain('http://[::1]:7420'), null);
    assert.equal(checkNetworkDomain('wss://127.0.0.1:7420'), null);
  });
});

describe('icon files on disk', () => {
  test('missing and wrongly sized icon files are refused', async () => {
    const dir = await mkdtemp(join(work, 'icons-'));
    await cp(builds[0]!.dir, dir, { recursive: true });
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as UxpManifest;
    assert.deepEqual(validateManifest(m, { mode: 'package', pluginDir: dir }), []);

    await rm(join(dir, 'icons/panel-light@2x.png'));
    await writeFile(join(dir, 'icons/plugin@2x.png'), await sharp({ create: { width: 40, height: 40, channels: 4, background: '#000' } }).png().toBuffer());
    await writeFile(join(dir, 'icons/panel-dark@1x.png'), 'not a png');
    await rm(join(dir, 'index.html'));
    const problems = validateManifest(m, { mode: 'package', pluginDir: dir }).map((p) => p.message);
    assert.deepEqual(problems.sort(), [
      'icons/panel-dark@1x.png is not a PNG',
      'icons/plugin@2x.png is 40x40, expected 48x48',
      'missing file index.html',
      'missing icon file icons/panel-light@2x.png',
    ]);
  });

  test('pngSize reads the IHDR chunk and refuses other bytes', () => {
    assert.equal(pngSize(Buffer.from('GIF89a...................')), null);
    assert.equal(pngSize(new Uint8Array(4)), null);
  });
});

describe('broken source manifests are refused with a clear message', () => {
  async function brokenRoot(text: string): Promise<string> {
    const root = await mkdtemp(join(work, 'root-'));
    await mkdir(join(root, 'plugin'), { recursive: true });
    await cp(join(PLUGIN_DIR, 'icons'), join(root, 'plugin', 'icons'), { recursive: true });
    await writeFile(join(root, 'manifest.json'), text);
    return root;
  }

  test('a trailing comma names its line and column, and nothing is built', async () => {
    const text = (await readFile(SOURCE_PATH, 'utf8')).replace('"version": "0.1.0",', '"version": "0.1.0",,');
    const root = await brokenRoot(text);
    await assert.rejects(buildPlugin({ root, outDir: join(root, 'dist'), entry: join(work, 'entry.ts') }), (error: Error) => {
      assert.ok(error instanceof ManifestError);
      assert.match(error.message, /manifest\.json: is not strict JSON at line 5, column \d+/);
      return true;
    });
    assert.equal(existsSync(join(root, 'dist')), false);
  });

  test('comments, a trailing comma before a brace, and an empty file are not strict JSON', () => {
    assert.throws(() => parseManifestText('{ // note\n "id": "x" }'), /not strict JSON at line 1/);
    assert.throws(() => parseManifestText('{ "id": "x", }'), /not strict JSON/);
    assert.throws(() => parseManifestText(''), /not strict JSON/);
    assert.deepEqual(parseManifestText('\ufeff{"id":"x"}'), { id: 'x' }, 'a byte-order mark is tolerated');
  });

  test('a valid JSON manifest breaking several rules lists every problem', async () => {
    const m = source();
    m.version = '1.0';
    (m.requiredPermissions!.network as { domains: string[] }).domains = ['127.0.0.1:7420'];
    const root = await brokenRoot(JSON.stringify(m, null, 2));
    await assert.rejects(buildPlugin({ root, outDir: join(root, 'dist'), entry: join(work, 'entry.ts') }), (error: Error) => {
      assert.match(error.message, /has 3 problems:/);
      assert.match(error.message, /must be "x\.y\.z" with three numeric parts, got "1\.0" \(version\)/);
      assert.match(error.message, /"127\.0\.0\.1:7420" must be a full origin/);
      assert.match(error.message, /must include the companion's origin http:\/\/127\.0\.0\.1:7420/);
      return true;
    });
  });

  test('a missing manifest and a non-object manifest are refused', async () => {
    assert.throws(() => readSourceManifest(join(work, 'nope.json')), /nope\.json: cannot be read/);
    const root = await brokenRoot('[1, 2]');
    assert.throws(() => readSourceManifest(join(root, 'manifest.json')), /must be a JSON object/);
  });
});
