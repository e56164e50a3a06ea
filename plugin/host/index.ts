/**
 * Picks the host adapter at run time: one bundle serves Photoshop, InDesign and the browser
 * preview. In UXP, `require('uxp').host.name` names the application (seen as "Photoshop",
 * "photoshop", "InDesign"; compared case-insensitively); anywhere else the browser adapter runs.
 *
 * @example
 *   const host = detectHost();
 *   if (host.capabilities.open) await host.openFile(checkout.path);
 */
import type { HostAdapter, HostName } from './types.ts';
import { hasHostRequire, loadHostModule, type ModuleLoader, type UxpModule } from './host-modules.ts';
import { buildPhotoshopAdapter } from './photoshop.ts';
import { buildIndesignAdapter } from './indesign.ts';
import { buildBrowserAdapter, type BrowserHostOptions } from './browser.ts';

export type { HostAdapter, HostName } from './types.ts';
export type { BrowserHostAdapter, HostCall } from './browser.ts';
export type { ModuleLoader } from './host-modules.ts';

export interface DetectHostOptions {
  /** Loads host modules; given in tests, otherwise UXP's global `require` when present. */
  load?: ModuleLoader;
  /** Options for the browser adapter, when no UXP host is found. */
  browser?: BrowserHostOptions;
}

/**
 * The adapter name for a UXP `host.name`, or null for an application Imagine does not support.
 *
 * @example
 *   hostNameFromUxp('InDesign')  // 'indesign'
 *   hostNameFromUxp('PHOTOSHOP') // 'photoshop'
 *   hostNameFromUxp('XD')        // null
 */
export function hostNameFromUxp(name: unknown): Exclude<HostName, 'browser'> | null {
  if (typeof name !== 'string') return null;
  const normal = name.trim().toLowerCase().replace(/^adobe\s+/, '');
  if (normal === 'photoshop') return 'photoshop';
  if (normal === 'indesign') return 'indesign';
  return null;
}

/** The adapter for the application the panel runs in. */
export function detectHost(options: DetectHostOptions = {}): HostAdapter {
  const load = options.load ?? (hasHostRequire() ? loadHostModule : undefined);
  if (!load) return buildBrowserAdapter(options.browser);
  const uxp = load('uxp') as Partial<UxpModule> | undefined;
  const reported = uxp?.host?.name;
  switch (hostNameFromUxp(reported)) {
    case 'photoshop':
      return buildPhotoshopAdapter(load);
    case 'indesign':
      return buildIndesignAdapter(load);
    default:
      throw new Error(`Imagine runs in Photoshop and InDesign; this host reports itself as "${String(reported)}"`);
  }
}
