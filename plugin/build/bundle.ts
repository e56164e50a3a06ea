/**
 * Bundles the panel: one classic script (`iife`, no modules, no eval) for UXP and the browser
 * preview alike; the host is detected at run time (plugin/host/index.ts). Host modules stay
 * external: UXP provides them through its global `require`.
 */
import { build, type BuildResult } from 'esbuild';
import { fileURLToPath } from 'node:url';

export const PANEL_ENTRY = fileURLToPath(new URL('../src/main.tsx', import.meta.url));
export const HOST_MODULES = ['uxp', 'photoshop', 'indesign', 'os', 'fs'];

export interface BundleOptions {
  /** Folder receiving `index.js` (and `index.css` when the panel imports CSS). */
  outdir: string;
  minify?: boolean;
  /** Write files (default) or keep them in memory (`result.outputFiles`). */
  write?: boolean;
}

export async function bundlePanel(options: BundleOptions): Promise<BuildResult> {
  return build({
    entryPoints: { index: PANEL_ENTRY },
    outdir: options.outdir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome100'],
    jsx: 'automatic',
    minify: options.minify ?? true,
    sourcemap: false,
    legalComments: 'external',
    external: HOST_MODULES,
    define: { 'process.env.NODE_ENV': '"production"' },
    write: options.write ?? true,
    logLevel: 'silent',
    metafile: true,
  });
}
