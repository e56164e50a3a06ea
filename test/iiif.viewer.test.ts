/**
 * OpenSeadragon in headless Chromium against the IIIF service: a viewer page on its own
 * origin (so CORS is exercised) opens info.json (3.0, then 2.1), and the tiles it computes
 * load; zooming in loads full-resolution tiles. Needs Chromium (`apt-get install chromium`;
 * .ci/run installs it); without it the test is skipped and says so.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import { killChildren, lastLine, noiseImage, ROOT, runCli, startServer, type Server } from './helpers/integration.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
  .filter((p): p is string => !!p)
  .find((p) => existsSync(p));

let root: string;
let server: Server;
let page: HttpServer;
let pageOrigin: string;
let browser: Browser | undefined;
let assetId: string;

const VIEWER_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><script src="/openseadragon.min.js"></script></head>
<body style="margin:0"><div id="viewer" style="width:800px;height:600px"></div>
<script>
  window.stats = { loaded: 0, failed: 0, urls: [], opened: false, error: null };
  window.openViewer = (infoUrl) => {
    const viewer = OpenSeadragon({ id: 'viewer', tileSources: infoUrl, showNavigationControl: false, animationTime: 0, immediateRender: true });
    viewer.addHandler('open', () => { window.stats.opened = true; });
    viewer.addHandler('open-failed', (e) => { window.stats.error = String(e.message); });
    viewer.addHandler('tile-loaded', (e) => { window.stats.loaded++; window.stats.urls.push(e.tile.getUrl()); });
    viewer.addHandler('tile-load-failed', (e) => { window.stats.failed++; window.stats.error = String(e.message); });
    window.viewer = viewer;
  };
</script></body></html>`;

before(async () => {
  if (!CHROMIUM) return;
  root = await mkdtemp(join(tmpdir(), 'imagine-it-viewer-'));
  const data = join(root, 'data');
  const pictures = join(root, 'pictures');
  await mkdir(pictures, { recursive: true });
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'config.json'), JSON.stringify({ iiifPyramidThreshold: 1_000_000, iiifTileSize: 256 }));
  await noiseImage(2400, 1600, 7).jpeg({ quality: 85 }).toFile(join(pictures, 'big.jpg'));
  const ingest = await runCli(['ingest', '--data', data, '--collection', 'Open', '--public', '--json', pictures], { timeoutMs: 120_000 });
  assert.equal(ingest.code, 0, ingest.stderr);
  assetId = JSON.parse(lastLine(ingest.stdout)).files[0].assetId;
  server = await startServer(data);
  const osd = await readFile(join(ROOT, 'node_modules', 'openseadragon', 'build', 'openseadragon', 'openseadragon.min.js'));
  page = createServer((request, response) => {
    if (request.url === '/openseadragon.min.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(osd);
    else response.writeHead(200, { 'content-type': 'text/html' }).end(VIEWER_HTML);
  });
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  const address = page.address();
  pageOrigin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  page?.close();
  killChildren();
  await endExiftool();
  if (root) await rm(root, { recursive: true, force: true });
});

async function view(infoUrl: string) {
  const context = await browser!.newContext();
  const tab = await context.newPage();
  const statuses: number[] = [];
  tab.on('response', (response) => {
    if (response.url().startsWith(server.url)) statuses.push(response.status());
  });
  await tab.goto(pageOrigin);
  await tab.evaluate((url) => (window as never as { openViewer(u: string): void }).openViewer(url), infoUrl);
  const stats = () => tab.evaluate(() => (window as never as { stats: { loaded: number; failed: number; urls: string[]; opened: boolean; error: string | null } }).stats);
  const waitFor = async (predicate: (s: Awaited<ReturnType<typeof stats>>) => boolean, what: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await stats();
      if (predicate(s)) return s;
      if (s.error) throw new Error(`viewer error: ${s.error}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const opened = await waitFor((s) => s.opened && s.loaded > 0, 'the first tiles');
  await tab.waitForTimeout(500);
  const home = await stats();
  // Zoom into the middle, past full resolution: full-resolution tiles load.
  await tab.evaluate(() => {
    const v = (window as never as { viewer: { viewport: { zoomTo(z: number): void; getMaxZoom(): number } } }).viewer;
    v.viewport.zoomTo(v.viewport.getMaxZoom());
  });
  const zoomed = await waitFor((s) => s.loaded > home.loaded + 2, 'zoomed tiles');
  await tab.waitForTimeout(500);
  const final = await stats();
  await context.close();
  return { opened, home, zoomed, final, statuses };
}

describe('OpenSeadragon in headless Chromium', { timeout: 300_000 }, () => {
  test('Image API 3.0: opens info.json and loads tiles at every zoom', { skip: CHROMIUM ? false : 'Chromium is not installed' }, async () => {
    const result = await view(`${server.url}/iiif/3/${assetId}/info.json`);
    assert.equal(result.final.failed, 0, result.final.error ?? '');
    assert.ok(result.final.loaded >= 4, `${result.final.loaded} tiles`);
    assert.ok(result.statuses.every((s) => s === 200), result.statuses.join(','));
    // Full-resolution tiles are 256 wide at scale factor 1: `x,y,256,256/256,256`.
    assert.ok(result.final.urls.some((u) => /\/\d+,\d+,256,256\/256,256\/0\/default\.jpg$/.test(u)), result.final.urls.slice(-5).join('\n'));
  });

  test('Image API 2.1: the same with the 2.1 info.json', { skip: CHROMIUM ? false : 'Chromium is not installed' }, async () => {
    const result = await view(`${server.url}/iiif/2/${assetId}/info.json`);
    assert.equal(result.final.failed, 0, result.final.error ?? '');
    assert.ok(result.final.loaded >= 4);
    assert.ok(result.final.urls.every((u) => u.includes('/iiif/2/')));
    assert.ok(result.statuses.every((s) => s === 200), result.statuses.join(','));
  });
});
