import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { unzipSync } from 'fflate';
import { bundlePanel, checkClassicScript, HOST_MODULES, PANEL_ENTRY } from './bundle.ts';
import { buildPlugin, renderIndexHtml, REPO_ROOT, type HostBuild } from './build.ts';
import { packagePlugin, type HostPackage } from './package.ts';
import { HOSTS, type UxpManifest } from './manifest.ts';

let work: string;
let outDir: string;
let builds: HostBuild[];
let packages: HostPackage[];

// A temporary entry shaped like the panel's: React 18 createRoot, and the host adapters, so the
// bundle holds the real React and host code. It lives in a temp folder, never in plugin/src.
const ENTRY = `
import { createRoot } from 'react-dom/client';
import { detectHost } from ${JSON.stringify(join(REPO_ROOT, 'plugin/host/index.ts'))};
const host = detectHost();
createRoot(document.getElementById('root')!).render(<p>Imagine in {host.name}</p>);
`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'imagine-build-'));
  outDir = join(work, 'dist');
  await writeFile(join(work, 'entry.tsx'), ENTRY);
  builds = await buildPlugin({ outDir, entry: join(work, 'entry.tsx') });
  packages = await packagePlugin({ outDir });
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('npm run build', () => {
  test('writes dist/photoshop and dist/indesign with manifest, html, one script and icons', () => {
    const expected = [
      'icons/panel-dark@1x.png',
      'icons/panel-dark@2x.png',
      'icons/panel-light@1x.png',
      'icons/panel-light@2x.png',
      'icons/plugin@1x.png',
      'icons/plugin@2x.png',
      'index.html',
      'index.js',
      'manifest.json',
    ];
    for (const b of builds) {
      assert.equal(b.dir, join(outDir, HOSTS[b.app].folder));
      assert.deepEqual(b.files.filter((f) => !f.endsWith('.LEGAL.txt')), expected);
    }
  });

  test('index.html loads index.js as a classic script, nothing inline, no modules', async () => {
    for (const b of builds) {
      const html = await readFile(join(b.dir, 'index.html'), 'utf8');
      assert.equal(html, renderIndexHtml({ title: 'Imagine', css: false }));
      const scripts = html.match(/<script\b[^>]*>/g) ?? [];
      assert.deepEqual(scripts, ['<script src="index.js">']);
      assert.doesNotMatch(html, /type="module"|<script>[^<]/);
      assert.doesNotMatch(html, /\son[a-z]+=/i, 'no on* attributes');
    }
  });

  test('the bundle is one classic script with no eval or new Function, the same for both hosts', async () => {
    const [ps, id] = await Promise.all(builds.map((b) => readFile(join(b.dir, 'index.js'), 'utf8')));
    assert.ok(ps && id);
    assert.equal(ps, id, 'one bundle, the host is detected at run time');
    assert.deepEqual(checkClassicScript(ps), []);
    assert.match(ps, /^\(\(\)=>\{/, 'an iife');
    assert.doesNotMatch(ps, /\beval\s*\(|new Function/);
    assert.match(ps, /createRoot/, 'React 18 is in the bundle');
  });

  test('host modules are external: reached only through UXP global require, never bundled', async () => {
    const code = await readFile(join(builds[0]!.dir, 'index.js'), 'utf8');
    assert.equal(code.match(/globalThis\.require/g)?.length, 1, 'one loader');
    for (const name of HOST_MODULES) assert.doesNotMatch(code, new RegExp(`require\\(["']${name}["']\\)`));
    assert.doesNotMatch(code, /executeAsModal\s*[:=]\s*(async\s*)?(function|\()/, 'no Photoshop implementation bundled');
  });
});

describe('checkClassicScript', () => {
  const bad: [string, RegExp][] = [
    ['eval("1+1")', /eval/],
    ['x=window.eval(s)', /eval/],
    ['var f=new Function("a","return a")', /new Function/],
    ['g=Function("return this")()', /Function\("\.\.\."\)/],
    ['setTimeout("tick()",10)', /setTimeout/],
    ['console.log(import.meta.url)', /import\.meta/],
    ['import("./lazy.js")', /dynamic import/],
    ['import React from "react";', /import statement/],
    ['import {a} from "b"', /import statement/],
    ['var a=1;export default a', /export statement/],
    ['export { a }', /export statement/],
    ['x();\n//# sourceMappingURL=data:application/json;base64,e30=', /source map/],
  ];
  for (const [code, message] of bad) {
    test(`refuses ${JSON.stringify(code)}`, () => {
      const problems = checkClassicScript(code);
      assert.ok(problems.some((p) => message.test(p)), JSON.stringify(problems));
    });
  }

  test('accepts look-alikes', () => {
    for (const code of ['evaluate(x)', 'retrieval(x)', 'a.isFunction(b)', 'typeof x=="function"', 'var important=1;exported(1)', 'setTimeout(fn,10)', 'x.import(y)']) {
      assert.deepEqual(checkClassicScript(code), [], code);
    }
  });

  test('bundlePanel refuses an entry that compiles strings, before writing anything', async () => {
    const entry = join(work, 'evil.ts');
    await writeFile(entry, 'const run = (s: string) => new Function(s)(); run("return 1");\n');
    const out = join(work, 'evil-out');
    await assert.rejects(bundlePanel({ outdir: out, entry }), /would not load in UXP: .*index\.js calls new Function\(/);
    assert.equal(existsSync(out), false);
  });
});

describe('npm run package', () => {
  test('one .ccx per host, named <id>_<APP>.ccx, holding the host folder with manifest.json at the root', async () => {
    assert.deepEqual(packages.map((p) => p.file), [join(outDir, 'org.imagine.panel_PS.ccx'), join(outDir, 'org.imagine.panel_ID.ccx')]);
    for (const [i, p] of packages.entries()) {
      const b = builds[i]!;
      const entries = unzipSync(await readFile(p.file));
      assert.deepEqual(Object.keys(entries).sort(), b.files);
      for (const name of b.files) assert.deepEqual(Buffer.from(entries[name]!), await readFile(join(b.dir, name)), name);
      const manifest = JSON.parse(Buffer.from(entries['manifest.json']!).toString('utf8')) as UxpManifest;
      assert.ok(!Array.isArray(manifest.host));
      assert.equal(manifest.host.app, p.app);
    }
  });

  test('packages are reproducible: packaging again gives the same bytes', async () => {
    const first = await Promise.all(packages.map((p) => readFile(p.file)));
    const again = await packagePlugin({ outDir });
    const second = await Promise.all(again.map((p) => readFile(p.file)));
    assert.deepEqual(second, first);
  });

  test('refuses to package without a build, or a tampered build', async () => {
    await assert.rejects(packagePlugin({ outDir: join(work, 'empty') }), /has no manifest\.json: run npm run build first/);
    const manifestPath = join(outDir, 'indesign', 'manifest.json');
    const original = await readFile(manifestPath, 'utf8');
    try {
      const m = JSON.parse(original) as UxpManifest;
      m.host = [m.host as never, { app: 'PS', minVersion: '24.4.0', data: { apiVersion: 2 } }];
      await writeFile(manifestPath, JSON.stringify(m));
      await assert.rejects(packagePlugin({ outDir }), /a package must name one host object/);
      m.host = { app: 'ID', minVersion: '18.5.0' };
      m.id = 'org.imagine.panel';
      await writeFile(manifestPath, JSON.stringify(m));
      await assert.rejects(packagePlugin({ outDir }), /is not the InDesign build of org\.imagine\.panel/);
    } finally {
      await writeFile(manifestPath, original);
    }
  });
});

describe('architecture', () => {
  async function sources(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) out.push(...(await sources(full)));
      else if (/\.(ts|tsx)$/.test(entry.name)) out.push(full);
    }
    return out;
  }

  test('host modules are loaded only in plugin/host', async () => {
    const offenders: string[] = [];
    const pattern = /require\s*\(\s*["'](uxp|photoshop|indesign)["']\s*\)|from\s+["'](uxp|photoshop|indesign)["']|window\.require|globalThis\.require/;
    for (const file of await sources(join(REPO_ROOT, 'plugin'))) {
      const rel = relative(REPO_ROOT, file);
      if (rel.startsWith('plugin/host/') || rel.startsWith('plugin/build/')) continue;
      if (pattern.test(await readFile(file, 'utf8'))) offenders.push(rel);
    }
    assert.deepEqual(offenders, []);
  });

  test('the real panel entry, once written, bundles as one classic script', { skip: !existsSync(PANEL_ENTRY) && 'plugin/src/main.tsx is not written yet' }, async () => {
    const result = await bundlePanel({ outdir: join(work, 'real'), write: false });
    const script = result.outputFiles?.find((f) => f.path.endsWith('index.js'));
    assert.ok(script);
    assert.deepEqual(checkClassicScript(script.text), []);
  });
});
