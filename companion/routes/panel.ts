/**
 * The browser preview of the panel at `/panel/`: the same bundle UXP loads (plugin/build),
 * run with the browser host adapter, talking to this process's agent on the same origin. A
 * newcomer opens it after `npm start` and sees the demo library without Adobe software.
 *
 *   GET /panel            → 301 /panel/
 *   GET /panel/           the page; carries the pairing token in
 *                         `<meta name="imagine-pairing-token">` only when the request passes
 *                         the agent's own loopback check (companion/agent/guard.ts), so a
 *                         DNS-rebound name or a remote client never gets it
 *   GET /panel/index.js   the bundle (one classic script), ETag + revalidation
 *   GET /panel/index.css
 *   GET /                 → 302 /panel/ in demo mode
 *
 * The bundle is built in memory with esbuild once, on first use (warmed when the server is
 * ready in demo mode), and kept; esbuild is a development dependency, so without it the page
 * answers ERR_SERVICE_UNAVAILABLE with the reason. The page's CSP allows only its own origin
 * and no eval; the panel bundle needs neither inline scripts nor inline styles.
 */
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProtocolError } from '../../shared/errors.ts';
import type { Config } from '../config.ts';
import type { AgentServices } from '../agent/services.ts';
import { checkHost } from '../agent/guard.ts';
import { ensurePairingToken } from '../agent/pairing.ts';

export const PANEL_PREFIX = '/panel';
export const TOKEN_META = 'imagine-pairing-token';

export const PANEL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  etag: string;
  type: string;
}

export interface PanelBundle {
  js: Asset;
  css: Asset;
  /** Time esbuild took, milliseconds. */
  buildMs: number;
}

export interface PanelRouteOptions {
  config: Config;
  services: AgentServices;
}

/** Builds the panel bundle in memory (esbuild is loaded only now: a development dependency). */
export async function buildPanelBundle(): Promise<PanelBundle> {
  const started = performance.now();
  let bundlePanel: typeof import('../../plugin/build/bundle.ts').bundlePanel;
  try {
    ({ bundlePanel } = await import('../../plugin/build/bundle.ts'));
  } catch (error) {
    throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'the panel preview needs esbuild (npm install, with development dependencies)', { cause: error });
  }
  const result = await bundlePanel({ outdir: join(tmpdir(), 'imagine-panel-preview'), write: false, minify: true });
  const file = (name: string) => result.outputFiles?.find((f) => basename(f.path) === name);
  const js = file('index.js');
  if (!js) throw new ProtocolError('ERR_INTERNAL', 'the panel bundle has no index.js');
  const css = file('index.css');
  const asset = (bytes: Uint8Array, type: string): Asset => {
    const body = Buffer.from(bytes);
    return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
  };
  return {
    js: asset(js.contents, 'text/javascript; charset=utf-8'),
    css: asset(css?.contents ?? new Uint8Array(), 'text/css; charset=utf-8'),
    buildMs: Math.round(performance.now() - started),
  };
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The preview page: the panel in a panel-sized column, and what the preview is, beside it. */
export function panelPage(options: { token?: string; cssEtag?: string; jsEtag?: string }): string {
  const bust = (etag?: string) => (etag ? `?v=${encodeURIComponent(etag.replace(/"/g, ''))}` : '');
  const meta = options.token ? `\n<meta name="${TOKEN_META}" content="${escapeAttribute(options.token)}">` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">${meta}
<title>Imagine panel (browser preview)</title>
<link rel="stylesheet" href="index.css${bust(options.cssEtag)}">
</head>
<body class="preview">
<div class="preview-page">
<div class="preview-frame"><div id="root"></div></div>
<div class="preview-about">
<h1>Imagine panel: browser preview</h1>
<p>This is the panel that runs inside Photoshop and InDesign, running in your browser against the
companion on this computer. Opening or placing an image here downloads it for real; the
"host" is simulated, and what the panel asked of it is listed below.</p>
<h2>Host calls</h2>
<ol id="host-log"></ol>
</div>
</div>
<script src="index.js${bust(options.jsEtag)}"></script>
</body>
</html>
`;
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', PANEL_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin');
}

/** Whether the request may receive the pairing token: the agent's own loopback rule. */
function mayReceiveToken(request: FastifyRequest, services: AgentServices): boolean {
  try {
    checkHost(request, services);
    return true;
  } catch {
    return false;
  }
}

export async function panelRoutes(app: FastifyInstance, options: PanelRouteOptions): Promise<void> {
  const { config, services } = options;
  let building: Promise<PanelBundle> | undefined;
  const bundle = () => {
    building ??= buildPanelBundle().catch((error) => {
      building = undefined; // a later request tries again
      throw error;
    });
    return building;
  };
  if (config.demo) {
    app.addHook('onReady', async () => {
      bundle().catch((error) => app.log.warn({ err: error }, 'panel preview bundle could not be built'));
    });
  }

  const sendAsset = async (request: FastifyRequest, reply: FastifyReply, pick: (b: PanelBundle) => Asset) => {
    const asset = pick(await bundle());
    securityHeaders(reply).header('etag', asset.etag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  app.get(PANEL_PREFIX, { schema: { hide: true } }, (_request, reply) => reply.redirect(`${PANEL_PREFIX}/`, 301));

  app.get(`${PANEL_PREFIX}/`, { schema: { hide: true } }, async (request, reply) => {
    const built = await bundle();
    const token = mayReceiveToken(request, services) ? await ensurePairingToken(services.dir) : undefined;
    securityHeaders(reply).header('cache-control', 'no-store');
    return reply.type('text/html; charset=utf-8').send(panelPage({ token, cssEtag: built.css.etag, jsEtag: built.js.etag }));
  });

  app.get(`${PANEL_PREFIX}/index.js`, { schema: { hide: true } }, (request, reply) => sendAsset(request, reply, (b) => b.js));
  app.get(`${PANEL_PREFIX}/index.css`, { schema: { hide: true } }, (request, reply) => sendAsset(request, reply, (b) => b.css));

  if (config.demo && !app.hasRoute({ method: 'GET', url: '/' })) {
    app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect(`${PANEL_PREFIX}/`, 302));
  }
}
