/**
 * The panel's entry: one classic script for UXP and the browser preview alike.
 *
 * - In UXP (Photoshop, InDesign): registers the panel with `entrypoints.setup`; React renders
 *   into a container that UXP attaches to the panel's node when it is shown.
 * - In the browser preview: registers stand-ins for the Spectrum widgets and renders into
 *   `#root`; the host adapter records what the panel asks of "Photoshop/InDesign".
 */
import './polyfills.ts';
import './ui/panel.css';
import { createRoot, type Root } from 'react-dom/client';
import { detectHost } from '../host/index.ts';
import { hasHostRequire, loadHostModule } from '../host/host-modules.ts';
import type { HostAdapter } from '../host/types.ts';
import type { BrowserHostAdapter } from '../host/browser.ts';
import { memoryStore } from './memory-store.ts';
import { loadAgentSettings, TOKEN_META, type KeyValueStore } from './settings.ts';
import { App } from './ui/App.tsx';
import { ErrorBoundary } from './ui/ErrorBoundary.tsx';
import { registerSpectrumStandins } from './ui/spectrum/standins.ts';
import { showHostCalls } from './ui/preview/host-log.ts';

/** The panel entrypoint id in manifest.json. */
export const PANEL_ID = 'imagine.library';

interface UxpEntrypoints {
  setup(config: { panels: Record<string, { create?(node: HTMLElement): void; show?(node: HTMLElement): void; hide?(node: HTMLElement): void; destroy?(): void }> }): void;
}

function storage(): KeyValueStore {
  try {
    const local = globalThis.localStorage;
    if (local) return local;
  } catch {
    // storage refused (privacy settings): keep settings for this session only
  }
  return memoryStore();
}

function pageToken(): string | undefined {
  if (typeof document === 'undefined') return undefined;
  const meta = document.querySelector(`meta[name="${TOKEN_META}"]`);
  return meta?.getAttribute('content')?.trim() || undefined;
}

function render(container: HTMLElement, host: HostAdapter, uxp: boolean): Root {
  const store = storage();
  const settings = loadAgentSettings({ uxp, pageOrigin: uxp ? undefined : globalThis.location?.origin, pageToken: uxp ? undefined : pageToken() }, store);
  const root = createRoot(container);
  // Whatever fails below, the panel shows it rather than going blank.
  root.render(
    <ErrorBoundary resetLabel="Start again">
      <App host={host} store={store} uxp={uxp} settings={settings} />
    </ErrorBoundary>,
  );
  return root;
}

/** The panel cannot start at all (an unsupported host): say so in plain DOM. */
function showStartFailure(container: HTMLElement, error: unknown): void {
  const box = document.createElement('div');
  box.className = 'message message-error';
  box.setAttribute('role', 'alert');
  box.textContent = `Imagine could not start: ${error instanceof Error ? error.message : String(error)}`;
  container.replaceChildren(box);
}

function asNode(value: unknown): HTMLElement | undefined {
  return value && typeof (value as HTMLElement).appendChild === 'function' ? (value as HTMLElement) : undefined;
}

function startInUxp(): void {
  const { entrypoints } = loadHostModule('uxp') as { entrypoints: UxpEntrypoints };
  const container = document.createElement('div');
  container.className = 'panel-root';
  let root: Root | undefined;
  const mount = () => {
    if (root) return;
    try {
      root = render(container, detectHost(), true);
    } catch (error) {
      showStartFailure(container, error);
    }
  };
  entrypoints.setup({
    panels: {
      [PANEL_ID]: {
        create() {
          mount();
        },
        show(node) {
          mount();
          // UXP hands the panel's root node (Adobe's React starter appends to it); XD-style
          // hosts an event with `.node`; the document's #root is the fallback.
          const target = asNode(node) ?? asNode((node as { node?: unknown } | undefined)?.node) ?? document.getElementById('root') ?? document.body;
          if (container.parentNode !== target) target.appendChild(container);
        },
        hide() {},
        destroy() {
          root?.unmount();
          root = undefined;
        },
      },
    },
  });
}

function startInBrowser(): void {
  registerSpectrumStandins();
  const container = document.getElementById('root') ?? document.body.appendChild(document.createElement('div'));
  let host: HostAdapter;
  try {
    host = detectHost();
  } catch (error) {
    showStartFailure(container, error);
    return;
  }
  // Tests and curious users can see the host and what the panel asked of it.
  (globalThis as { imaginePanel?: unknown }).imaginePanel = { host };
  render(container, host, false);
  const log = document.getElementById('host-log');
  if (log && 'calls' in host) showHostCalls(log, (host as BrowserHostAdapter).calls);
}

if (hasHostRequire()) startInUxp();
else startInBrowser();
