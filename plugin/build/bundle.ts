/**
 * Bundles the panel: one classic script (`iife`, no modules, no eval) for UXP and the browser
 * preview alike; the host is detected at run time (plugin/host/index.ts). Host modules stay
 * external: UXP provides them through its global `require`.
 *
 * The output is checked before it is written (`checkClassicScript`): UXP refuses code
 * generation from strings (`allowCodeGenerationFromStrings` is false) and loads no module
 * scripts, so a bundle with `eval(`, `new Function`, `import`/`export` statements or
 * `import.meta` would fail only inside Photoshop or InDesign, where we cannot test.
 */
import { build, type BuildResult } from 'esbuild';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PANEL_ENTRY = fileURLToPath(new URL('../src/main.tsx', import.meta.url));
export const HOST_MODULES = ['uxp', 'photoshop', 'indesign', 'os', 'fs'];
/** The repository's packages, also for entries outside the tree (tests bundle temporary ones). */
const NODE_MODULES = fileURLToPath(new URL('../../node_modules', import.meta.url));

/**
 * Language level of the bundle. UXP runs V8, but Adobe does not document which language
 * features each UXP version parses (UNVERIFIED without a host); ES2019 syntax is the level
 * Adobe's own starters shipped through Babel, and esbuild lowers anything newer (`?.`, `??`,
 * class fields) at no cost to us.
 */
export const UXP_TARGET = ['es2019'];

export interface BundleOptions {
  /** Folder receiving `index.js` (and `index.css` when the panel imports CSS). */
  outdir: string;
  minify?: boolean;
  /** Write files (default) or keep them in memory (`result.outputFiles`). */
  write?: boolean;
  /** Entry module; default the panel's `plugin/src/main.tsx`. */
  entry?: string;
}

/** What would make the script fail to load in UXP; an empty list means none was found. */
export function checkClassicScript(code: string): string[] {
  const problems: string[] = [];
  const checks: [RegExp, string][] = [
    [/(^|[^\w$])eval\s*\(/, 'calls eval('],
    [/\bnew\s+Function\s*\(/, 'calls new Function('],
    [/(^|[^\w$.])Function\s*\(\s*["'`]/, 'calls Function("...") to compile a string'],
    [/(^|[^\w$.])set(Timeout|Interval)\s*\(\s*["'`]/, 'passes a string of code to setTimeout/setInterval'],
    [/\bimport\.meta\b/, 'uses import.meta (module scripts only)'],
    [/(^|[^\w$.])import\s*\(/, 'uses dynamic import() (UXP loads one script)'],
    [/(^|[;}\n])\s*import\s*(["'{*]|[\w$]+\s+from\b)/, 'has an import statement (module scripts only)'],
    [/(^|[;}\n])\s*export\s+(default\b|\{|\*|const\b|let\b|var\b|function\b|class\b|async\b)/, 'has an export statement (module scripts only)'],
    [/\/\/# sourceMappingURL=data:/, 'embeds an inline source map'],
  ];
  for (const [pattern, message] of checks) if (pattern.test(code)) problems.push(message);
  return problems;
}

export async function bundlePanel(options: BundleOptions): Promise<BuildResult> {
  const result = await build({
    entryPoints: { index: options.entry ?? PANEL_ENTRY },
    outdir: options.outdir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: UXP_TARGET,
    jsx: 'automatic',
    minify: options.minify ?? true,
    sourcemap: false,
    legalComments: 'external',
    external: HOST_MODULES,
    nodePaths: [NODE_MODULES],
    define: { 'process.env.NODE_ENV': '"production"' },
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  for (const file of result.outputFiles) {
    if (!file.path.endsWith('.js')) continue;
    const problems = checkClassicScript(file.text);
    if (problems.length > 0) {
      throw new Error(`the panel bundle would not load in UXP: ${file.path} ${problems.join('; ')}`);
    }
  }
  if (options.write ?? true) {
    for (const file of result.outputFiles) {
      await mkdir(dirname(file.path), { recursive: true });
      await writeFile(file.path, file.contents);
    }
  }
  return result;
}
