/**
 * What UXP refuses, checked on the sources and on the bundle itself (UXP-NOTES.md): CSS without
 * grid, gap, transitions, animations, `font` shorthand or text-transform; no file inputs, no
 * `<label for>`, no `on*` props or `className` on Spectrum widgets (React does not wire them),
 * no self-closing `sp-*`; one classic script without eval; no TypeBox in the bundle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { bundlePanel } from '../build/bundle.ts';

const SRC = fileURLToPath(new URL('.', import.meta.url));

function files(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), pattern) : pattern.test(e.name) && !e.name.includes('.test.') ? [join(dir, e.name)] : [],
  );
}

const FORBIDDEN_CSS: [RegExp, string][] = [
  [/display\s*:\s*(inline-)?grid/, 'CSS grid'],
  [/(^|[;{\s])(row-|column-)?gap\s*:/, 'gap'],
  [/grid-template/, 'grid templates'],
  [/(^|[;{\s])transition(-[a-z]+)?\s*:/, 'transitions'],
  [/(^|[;{\s])animation(-[a-z]+)?\s*:/, 'animations'],
  [/@keyframes/, 'animations'],
  [/(^|[;{\s])font\s*:/, 'the font shorthand'],
  [/text-transform\s*:/, 'text-transform'],
];

function checkCss(name: string, css: string) {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  for (const [pattern, what] of FORBIDDEN_CSS) assert.doesNotMatch(text, pattern, `${name} uses ${what}`);
}

test('the stylesheet uses only what UXP draws', () => {
  for (const file of files(SRC, /\.css$/)) checkCss(relative(SRC, file), readFileSync(file, 'utf8'));
});

test('components: no file inputs, no label-for, Spectrum widgets wired by ref', () => {
  for (const file of files(SRC, /\.tsx$/)) {
    const name = relative(SRC, file);
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /type=["{']*file/, `${name}: <input type=file> does not exist in UXP`);
    assert.doesNotMatch(text, /htmlFor=/, `${name}: <label for> does not work in UXP`);
    assert.doesNotMatch(text, /<sp-[a-z-]+[^>]*\son[A-Z][a-zA-Z]*=/, `${name}: React does not attach events to sp-* widgets`);
    assert.doesNotMatch(text, /<sp-[a-z-]+[^>]*\sclassName=/, `${name}: sp-* widgets take class, not className`);
    assert.doesNotMatch(text, /<sp-[a-z-]+[^>]*\/>/, `${name}: sp-* widgets are not self-closing`);
    assert.doesNotMatch(text, /<form(?![^>]*method="dialog")/, `${name}: UXP forms are method="dialog" only`);
  }
});

test('the bundle: one classic script, no eval, no TypeBox, a sane size', async () => {
  const result = await bundlePanel({ outdir: join(tmpdir(), 'imagine-uxp-check'), write: false, minify: true });
  const js = result.outputFiles!.find((f) => f.path.endsWith('index.js'))!;
  const css = result.outputFiles!.find((f) => f.path.endsWith('index.css'))!;
  const code = js.text;
  assert.doesNotMatch(code, /\beval\(/, 'no eval (allowCodeGenerationFromStrings is off in UXP)');
  assert.doesNotMatch(code, /new Function\(/, 'no new Function');
  assert.doesNotMatch(code, /^\s*(import|export)\s/m, 'a classic script, not a module');
  const inputs = Object.keys(result.metafile!.inputs);
  assert.ok(!inputs.some((i) => i.includes('node_modules/typebox')), 'the schemas stay out of the bundle (types only)');
  assert.ok(!inputs.some((i) => /companion\//.test(i)), 'nothing from the companion');
  assert.ok(js.contents.length < 400 * 1024, `index.js is ${js.contents.length} bytes`);
  checkCss('index.css (bundled)', css.text);
});
