/**
 * The panel end to end: the browser preview (`/panel/`, the same bundle UXP loads, with the
 * browser host) in headless Chromium, against the real program: `imagine serve --demo` (agent
 * and demo library in one process, fresh data folder) and a second `imagine serve --role
 * library`. Everything goes through the panel's UI; the library API is only read to check what
 * landed on the server (and written to, to play "a colleague saved a newer version").
 *
 * Covered: opening already connected with the demo thumbnails; search and filters; asset
 * detail; rights warning before placing; open (the host records the checked-out path); save
 * back with a comment → a new version on the server; place and an out-of-date link updated;
 * a conflict and "push on top"; a second server by URL with a wrong token first; that server
 * stopped (a clear message, cached browsing); an asset deleted meanwhile; a broken thumbnail;
 * IIIF browsing; the companion stopped (a banner, the save kept in the panel and sent when it
 * is back). Screenshots of each screen go to test-results/screenshots/.
 *
 * Needs Chromium (Debian's `chromium`; .ci/run installs it): skipped, saying so, without it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import {
  json,
  killChildren,
  lastLine,
  noiseImage,
  rawRequest,
  ROOT,
  runCli,
  serve,
  stopChild,
  type Server,
} from './helpers/integration.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
  .filter((p): p is string => !!p)
  .find((p) => existsSync(p));
const skip = CHROMIUM ? false : 'Chromium is not installed (apt-get install chromium)';
const SHOTS = join(ROOT, 'test-results', 'screenshots');
/** More than one page (the agent asks each server for 50). */
const SECOND_COUNT = 60;

type Serving = Server;

/** What Photoshop's UXP gives a panel, reduced to what the panel and its host adapter touch. */
const FAKE_PHOTOSHOP = `
  window.__opened = [];
  const uxp = {
    host: { name: 'Photoshop', version: '26.0.0' },
    entrypoints: { setup: (config) => { window.__uxpSetup = config; } },
    storage: { localFileSystem: {
      getEntryWithUrl: async (url) => ({ name: url.split('/').pop(), nativePath: decodeURIComponent(url.replace(/^file:(\\/\\/)?/, '')) }),
      createSessionToken: () => 'session-token',
    } },
  };
  const photoshop = {
    app: { activeDocument: null, open: async (entry) => { window.__opened.push(entry.nativePath); } },
    core: { executeAsModal: (fn) => fn({ reportProgress() {} }) },
    action: { batchPlay: async () => [], addNotificationListener() {}, removeNotificationListener() {} },
  };
  window.require = (name) => ({ uxp, photoshop })[name];
`;

let root: string;
let data: string;
let companion: Serving;
let library2: Serving;
let library2Token: string;
let demoToken: string;
let browser: Browser | undefined;
let page: Page;

async function api<T = any>(origin: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer; token?: string } = {}): Promise<{ status: number; body: T; headers: Record<string, unknown> }> {
  const response = await rawRequest(origin, path, {
    method: options.method,
    headers: { authorization: `Bearer ${options.token ?? demoToken}`, ...options.headers },
    body: options.body,
  });
  const text = response.body.toString('utf8');
  return { status: response.status, body: (text && /json/.test(String(response.headers['content-type'])) ? json(response) : text) as T, headers: response.headers };
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** The browser host's log of calls (plugin/host/browser.ts). */
function hostCalls(): Promise<Array<{ method: string; args: unknown[] }>> {
  return page.evaluate(() => (globalThis as { __imagineHostCalls?: Array<{ method: string; args: unknown[] }> }).__imagineHostCalls ?? []);
}

/** Thumbnails in the results grid that finished loading with pixels. */
function loadedThumbs(): Promise<number> {
  return page.evaluate(
    () => [...document.querySelectorAll('[data-testid=results] img[data-testid=thumb]')].filter((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0).length,
  );
}

async function waitFor<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (Date.now() > deadline) {
      await shot(`failed-${what.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`).catch(() => undefined);
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last).slice(0, 400)}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function search(text: string): Promise<void> {
  await page.locator('[data-testid=search-field] input').fill(text);
  await page.locator('[data-testid=search-field] input').press('Enter');
}

async function resultIds(): Promise<string[]> {
  return page.locator('[data-testid=tile]').evaluateAll((tiles) => tiles.map((t) => t.getAttribute('data-asset') ?? ''));
}

/** Opens the detail of the result whose caption is `title`. */
async function openDetail(title: string): Promise<string> {
  if (await page.locator('[data-testid=asset-detail]').count()) await backToResults();
  await search(title);
  const tile = page.locator('[data-testid=tile]', { hasText: title }).first();
  await tile.waitFor({ timeout: 20_000 });
  const id = (await tile.getAttribute('data-asset'))!;
  await tile.click();
  await page.locator(`[data-testid=asset-detail][data-asset="${id}"]`).waitFor({ timeout: 20_000 });
  await page.locator('[data-testid=versions]').waitFor();
  return id;
}

async function backToResults(): Promise<void> {
  await page.locator('[data-testid=back]').click();
  await page.locator('[data-testid=search-screen]').waitFor({ state: 'visible' });
}

/** Clicks Open/Place and answers the checked-out path shown. */
async function checkout(use: 'open' | 'place', rendition: 'original' | 'proxy'): Promise<string> {
  await page.locator('[data-testid=rendition] select').selectOption(rendition);
  await page.locator(`[data-testid=${use}-button]`).click();
  const path = page.locator('[data-testid=checkout-path]');
  await path.waitFor({ timeout: 60_000 });
  return (await path.textContent())!.trim();
}

/** A JPEG that differs from everything in the library: what "editing in Photoshop" leaves. */
async function edit(path: string, seed: number): Promise<void> {
  const { width, height, format } = await (await import('sharp')).default(path).metadata();
  const image = noiseImage(width ?? 400, height ?? 300, seed);
  await writeFile(path, await (format === 'png' ? image.png() : image.jpeg({ quality: 85 })).toBuffer());
}

async function goTab(tab: 'search' | 'queue' | 'connections' | 'iiif' | 'links'): Promise<void> {
  await page.locator(`[data-testid=tab-${tab}]`).click();
}

before(async () => {
  if (!CHROMIUM) return;
  await mkdir(SHOTS, { recursive: true });
  root = await mkdtemp(join(tmpdir(), 'imagine-e2e-panel-'));
  data = join(root, 'data');
  const data2 = join(root, 'library2');
  const pictures = join(root, 'pictures');
  await mkdir(pictures, { recursive: true });
  for (let i = 0; i < SECOND_COUNT; i++) await noiseImage(200, 120 + (i % 3) * 40, 300 + i).jpeg({ quality: 70 }).toFile(join(pictures, `second-${i}.jpg`));
  // The second server: a library of its own, private, with a user and a token.
  const ingest = await runCli(['ingest', '--data', data2, '--collection', 'Second', '--json', pictures], { timeoutMs: 180_000 });
  assert.equal(ingest.code, 0, ingest.stderr);
  const user = await runCli(['users', 'add', 'ana', '--admin', '--data', data2]);
  assert.equal(user.code, 0, user.stderr);
  const token = await runCli(['tokens', 'create', '--user', 'ana', '--data', data2]);
  assert.equal(token.code, 0, token.stderr);
  library2Token = lastLine(token.stdout).trim();
  [companion, library2] = await Promise.all([serve(['--demo', '--data', data, '--port', '0'], { timeoutMs: 180_000 }), serve(['--role', 'library', '--data', data2, '--port', '0'], { timeoutMs: 180_000 })]);
  demoToken = (await readFile(join(data, 'demo-token'), 'utf8')).trim();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1100, height: 860 } });
  page.on('pageerror', (error) => console.error('page error:', error.message));
}, { timeout: 600_000 });

after(async () => {
  await browser?.close();
  for (const server of [companion, library2]) if (server) await stopChild(server).catch(() => undefined);
  killChildren();
  await endExiftool();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the panel in the browser preview', { skip, timeout: 900_000 }, () => {
  test('the preview page: security headers, the token only for loopback, / redirects in demo mode', async () => {
    const res = await rawRequest(companion.url, '/panel/');
    assert.equal(res.status, 200);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-eval|unsafe-inline/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const html = res.body.toString('utf8');
    const pairing = (await readFile(join(data, 'agent', 'pairing-token'), 'utf8')).trim();
    assert.ok(html.includes(`content="${pairing}"`), 'the page for a loopback Host carries the pairing token');
    assert.doesNotMatch(html, /type="module"/);
    const rebound = await rawRequest(companion.url, '/panel/', { headers: { host: `evil.example:${companion.port}` } });
    assert.equal(rebound.status, 200);
    assert.ok(!rebound.body.toString('utf8').includes(pairing), 'a DNS-rebound Host gets no token');
    const home = await rawRequest(companion.url, '/');
    assert.equal(home.status, 302);
    assert.equal(home.headers.location, '/panel/');
    const js = await rawRequest(companion.url, '/panel/index.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    const again = await rawRequest(companion.url, '/panel/index.js', { headers: { 'if-none-match': String(js.headers.etag) } });
    assert.equal(again.status, 304);
  });

  test('a page without the pairing token asks for it (as in UXP), refuses a wrong one, keeps the right one', async () => {
    const context = await browser!.newContext({ viewport: { width: 1100, height: 860 } });
    const tab = await context.newPage();
    // As if the page carried no token: the panel has to be paired by hand, like in Photoshop.
    await tab.route('**/panel/', async (route) => {
      const response = await route.fetch();
      const html = (await response.text()).replace(/<meta name="imagine-pairing-token"[^>]*>/, '');
      await route.fulfill({ response, body: html });
    });
    await tab.goto(`${companion.url}/panel/`);
    const gate = tab.locator('[data-testid=agent-gate]');
    await gate.waitFor({ timeout: 30_000 });
    assert.equal(await gate.getAttribute('data-code'), 'ERR_PAIRING_REQUIRED');
    await tab.locator('[data-testid=pairing-token] input').fill('wrong-token');
    await tab.locator('[data-testid=pair-button]').click();
    await tab.locator('[data-testid=gate-retry]:not([disabled])').waitFor();
    await tab.waitForTimeout(500);
    assert.equal(await tab.locator('[data-testid=agent-gate]').getAttribute('data-code'), 'ERR_PAIRING_REQUIRED');
    await tab.screenshot({ path: join(SHOTS, '00-pairing.png') });
    const pairing = (await readFile(join(data, 'agent', 'pairing-token'), 'utf8')).trim();
    await tab.locator('[data-testid=pairing-token] input').fill(pairing);
    await tab.locator('[data-testid=pair-button]').click();
    await tab.locator('[data-testid=search-screen]').waitFor({ timeout: 30_000 });
    // Kept: a reload of the token-less page is paired already.
    await tab.reload();
    await tab.locator('[data-testid=search-screen]').waitFor({ timeout: 30_000 });
    await context.close();
  });

  test('the same bundle as UXP loads it: entrypoints.setup, the default agent address, pairing by hand', async () => {
    // What Photoshop provides, reduced to what the panel and its host adapter touch: a global
    // `require` with `uxp` and `photoshop`. The UXP code path runs: no stand-ins, the panel
    // registered through entrypoints.setup, the agent looked for at 127.0.0.1:7420.
    const context = await browser!.newContext({ viewport: { width: 1100, height: 860 } });
    // A string, not a function: tsx's helpers (`__name`) do not exist in the page.
    await context.addInitScript({ content: FAKE_PHOTOSHOP });
    const tab = await context.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    tab.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await tab.route('**/panel/', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: (await response.text()).replace(/<meta name="imagine-pairing-token"[^>]*>/, '') });
    });
    await tab.goto(`${companion.url}/panel/`);
    await tab.waitForFunction(() => (window as unknown as { __uxpSetup?: unknown }).__uxpSetup !== undefined, null, { timeout: 15_000 }).catch((error) => {
      throw new Error(`the panel did not call entrypoints.setup: ${errors.join('; ') || error.message}`);
    });
    assert.equal(await tab.evaluate(() => customElements.get('sp-button')), undefined, 'no stand-ins inside UXP');
    await tab.evaluate(() => (window as unknown as { __uxpSetup: { panels: Record<string, { show(n: HTMLElement): void }> } }).__uxpSetup.panels['imagine.library']!.show(document.getElementById('root')!));
    const gate = tab.locator('[data-testid=agent-gate]');
    await gate.waitFor({ timeout: 30_000 });
    if (companion.port !== 7420) assert.equal(await gate.getAttribute('data-code'), 'ERR_AGENT_NOT_RUNNING');
    await tab.screenshot({ path: join(SHOTS, '00-uxp-not-running.png') });
    // UXP widgets are not inputs: type the way UXP reports it, a value and an input event.
    const type = (testId: string, value: string) =>
      tab.locator(`[data-testid=${testId}]`).evaluate((el, v) => {
        (el as HTMLElement & { value: string }).value = v;
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }, value);
    await type('agent-address', companion.url);
    await gate.locator('sp-button', { hasText: 'Use this address' }).click();
    await tab.locator('[data-testid=agent-gate][data-code=ERR_PAIRING_REQUIRED]').waitFor({ timeout: 30_000 });
    await type('pairing-token', (await readFile(join(data, 'agent', 'pairing-token'), 'utf8')).trim());
    await tab.locator('[data-testid=pair-button]').click();
    await tab.locator('[data-testid=tile]').first().waitFor({ timeout: 30_000 });
    // Photoshop opens the checked-out original.
    await tab.locator('[data-testid=tile]', { hasText: 'Sweet grid' }).click();
    await tab.locator('[data-testid=open-button]').click();
    const path = (await tab.locator('[data-testid=checkout-path]').textContent({ timeout: 60_000 }))!.trim();
    assert.deepEqual(await tab.evaluate(() => (window as unknown as { __opened: string[] }).__opened), [path]);
    await context.close();
  });

  test('opens already connected to the demo library, thumbnails showing', async () => {
    const started = Date.now();
    await page.goto(`${companion.url}/panel/`);
    await waitFor('the demo thumbnails', loadedThumbs, (n) => n >= 20, 60_000);
    const elapsed = Date.now() - started;
    const count = await page.locator('[data-testid=result-count]').textContent();
    const library = await api<{ items: unknown[] }>(companion.url, '/api/v1/assets?limit=200');
    assert.equal(count, `${library.body.items.length} images`);
    assert.match((await page.locator('[data-testid=footer]').textContent())!, /Browser preview · 1 server/);
    await shot('01-search');
    console.log(`first 20 thumbnails after ${elapsed} ms`);
  });

  test('search and filters', async () => {
    await search('orbits');
    await waitFor('orbit results', resultIds, (ids) => ids.length > 0 && ids.length < 26);
    const expected = await api<{ items: { id: string }[] }>(companion.url, '/api/v1/assets?q=orbits&limit=200');
    assert.deepEqual(new Set(await resultIds()), new Set(expected.body.items.map((a) => a.id)));
    await page.locator('[data-testid=toggle-filters]').click();
    await page.locator('[data-testid=filter-orientation] select').selectOption('portrait');
    const portrait = await api<{ items: { id: string }[] }>(companion.url, '/api/v1/assets?q=orbits&orientation=portrait&limit=200');
    await waitFor('portrait orbits', resultIds, (ids) => ids.length === portrait.body.items.length && ids.every((id) => portrait.body.items.some((a) => a.id === id)));
    assert.match((await page.locator('[data-testid=toggle-filters]').textContent())!, /Filters \(1\)/);
    await shot('02-search-filtered');
    await page.locator('[data-testid=clear-filters]').click();
    await page.locator('[data-testid=toggle-filters]').click();
    await search('no-such-picture-anywhere');
    await page.locator('[data-testid=no-results]').waitFor();
    await search('');
    await waitFor('every result again', resultIds, (ids) => ids.length >= 26);
  });

  test('asset detail: metadata, versions, rights', async () => {
    const id = await openDetail('Garden stripes');
    const asset = (await api<any>(companion.url, `/api/v1/assets/${id}`)).body;
    assert.equal(await page.locator('[data-testid=detail-title]').textContent(), 'Garden stripes');
    const metadata = (await page.locator('[data-testid=metadata]').textContent())!;
    assert.ok(metadata.includes(asset.filename));
    assert.ok(metadata.includes(asset.uri));
    assert.ok(metadata.includes(String(asset.metadata.creator)));
    assert.equal(await page.locator('[data-testid=version]').count(), asset.versions.length);
    await page.locator('[data-testid=detail-image]').waitFor();
    await shot('03-detail');
    await backToResults();
  });

  test('rights: a restricted image warns before it is placed', async () => {
    const restricted = await api<{ items: { id: string; metadata: { title?: string }; filename: string }[] }>(companion.url, '/api/v1/assets?rights=restricted&limit=200');
    const expired = await api<{ items: { id: string }[] }>(companion.url, '/api/v1/assets?rights=expired&limit=200');
    const target = restricted.body.items[0] ?? (expired.body.items[0] as never);
    assert.ok(target, 'the demo library has a restricted or expired image');
    const title = target.metadata.title ?? target.filename;
    await openDetail(title);
    await page.locator('[data-testid=rights-warnings]').waitFor();
    const placed = async () => (await hostCalls()).filter((c) => c.method === 'placeFile').length;
    const before = await placed();
    await page.locator('[data-testid=place-button]').click();
    await page.locator('[data-testid=rights-confirm]').waitFor();
    await shot('04-rights-warning');
    await page.locator('[data-testid=confirm-cancel]').click();
    assert.equal(await page.locator('[data-testid=rights-confirm]').count(), 0);
    assert.equal(await placed(), before, 'nothing was placed');
    await backToResults();
  });

  let openedId: string;
  let openedPath: string;

  test('open: the agent checks the original out, the host opens that file', async () => {
    openedId = await openDetail('Pop circles');
    openedPath = await checkout('open', 'original');
    const calls = await hostCalls();
    assert.ok(calls.some((c) => c.method === 'openFile' && c.args[0] === openedPath), JSON.stringify(calls));
    const asset = (await api<any>(companion.url, `/api/v1/assets/${openedId}`)).body;
    assert.equal((await stat(openedPath)).size, asset.versions.at(-1).size, 'the checked-out file is the original');
    await page.locator('[data-testid=host-call]', { hasText: 'openFile' }).first().waitFor();
    await shot('05-opened');
  });

  test('save back with a comment: a new version on the server', async () => {
    await edit(openedPath, 11);
    await page.locator('[data-testid=save-comment] textarea').fill('Warmer circles');
    await page.locator('[data-testid=save-back-button]').click();
    await page.locator('[data-testid=save-done]').waitFor({ timeout: 120_000 });
    const asset = (await api<any>(companion.url, `/api/v1/assets/${openedId}`)).body;
    assert.equal(asset.versions.length, 2);
    assert.equal(asset.versions[1].comment, 'Warmer circles');
    assert.equal(asset.currentVersion, asset.versions[1].id);
    await waitFor('the new version in the detail', () => page.locator('[data-testid=version]').count(), (n) => n === 2);
    assert.ok((await hostCalls()).some((c) => c.method === 'saveActiveDocument'), 'the document was saved before the push');
    await shot('06-saved-back');
    await backToResults();
  });

  let placedId: string;

  test('place, then a colleague saves a newer version: the link shows out of date and updates', async () => {
    placedId = await openDetail('Terracotta');
    const placedPath = await checkout('place', 'proxy');
    assert.ok((await hostCalls()).some((c) => c.method === 'placeFile' && c.args[0] === placedPath && c.args[1] === 'linked'));
    await goTab('links');
    await page.locator('[data-testid=link][data-state=current]').waitFor({ timeout: 30_000 });
    // A colleague pushes a new version straight to the library.
    const asset = (await api<any>(companion.url, `/api/v1/assets/${placedId}`)).body;
    const pushed = await api(companion.url, `/api/v1/assets/${placedId}/versions`, {
      method: 'POST',
      body: await noiseImage(500, 500, 41).jpeg().toBuffer(),
      headers: { 'content-type': 'image/jpeg', 'if-match': `"${asset.currentVersion}"`, 'imagine-filename': 'terracotta.jpg', 'imagine-comment': 'colleague' },
    });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    await page.locator('[data-testid=check-links]').click();
    await page.locator('[data-testid=link][data-state=out-of-date]').waitFor({ timeout: 30_000 });
    await shot('07-links-out-of-date');
    await page.locator('[data-testid=update-link]').click();
    await page.locator('[data-testid=link][data-state=current]').waitFor({ timeout: 60_000 });
    assert.ok((await hostCalls()).some((c) => c.method === 'relink'));
    await shot('08-links-updated');
    await goTab('search');
  });

  test('a conflict on save: the queue offers push on top or a new image', async () => {
    const id = await openDetail('Night orbits');
    const path = await checkout('open', 'original');
    const asset = (await api<any>(companion.url, `/api/v1/assets/${id}`)).body;
    const pushed = await api(companion.url, `/api/v1/assets/${id}/versions`, {
      method: 'POST',
      body: await noiseImage(400, 400, 77).jpeg().toBuffer(),
      headers: { 'content-type': 'image/jpeg', 'if-match': `"${asset.currentVersion}"`, 'imagine-filename': 'night.jpg' },
    });
    assert.equal(pushed.status, 201);
    await edit(path, 12);
    await page.locator('[data-testid=save-comment] textarea').fill('Mine');
    await page.locator('[data-testid=save-back-button]').click();
    await page.locator('[data-testid=save-status][data-state=conflict]').waitFor({ timeout: 120_000 });
    await goTab('queue');
    await page.locator('[data-testid=queue-item][data-state=conflict] [data-testid=conflict-choices]').waitFor({ timeout: 30_000 });
    await shot('09-queue-conflict');
    await page.locator('[data-testid=queue-item][data-state=conflict] [data-testid=push-on-top]').click();
    await waitFor('the conflict resolved', async () => (await api<any>(companion.url, `/api/v1/assets/${id}`)).body.versions.length, (n) => n === 3, 120_000);
    const versions = (await api<any>(companion.url, `/api/v1/assets/${id}`)).body.versions;
    assert.equal(versions[2].comment, 'Mine');
    await page.locator('[data-testid=queue-item][data-state=conflict]').waitFor({ state: 'detached', timeout: 30_000 });
    await shot('10-queue');
    await goTab('search');
  });

  test('a second server by URL: a wrong token is refused, the right one connects', async () => {
    await goTab('connections');
    await page.locator('[data-testid=add-url] input').fill(library2.url);
    await page.locator('[data-testid=add-token] input').fill('not-the-token');
    await page.locator('[data-testid=add-connection-button]').click();
    const error = page.locator('[data-testid=add-error]');
    await error.waitFor({ timeout: 30_000 });
    assert.equal(await error.getAttribute('data-code'), 'ERR_TOKEN_INVALID');
    assert.match((await error.textContent())!, /refused this token/);
    await shot('11-wrong-token');
    await page.locator('[data-testid=add-token] input').fill(library2Token);
    await page.locator('[data-testid=add-name] input').fill('Second studio');
    await page.locator('[data-testid=add-connection-button]').click();
    await page.locator('[data-testid=added]').waitFor({ timeout: 30_000 });
    await waitFor('two servers listed', () => page.locator('[data-testid=connection]').count(), (n) => n === 2);
    // Each server's offline copy, as `imagine sync status` reports it (the demo library is mirrored).
    await waitFor(
      'the demo library mirrored',
      async () => (await page.locator('[data-testid=connection-sync]').allTextContents()).join(' | '),
      (text) => /Offline copy: [1-9]\d* images/.test(text),
    );
    await shot('12-servers');
    await goTab('search');
    await search('');
    // A first page from both servers (up to 50 from each), more to come; scrolling to the end brings the rest.
    const firstPage = await waitFor('the first page from both servers', resultIds, (ids) => ids.length >= 50, 60_000);
    assert.ok(firstPage.length < 26 + SECOND_COUNT, `${firstPage.length} results on the first page`);
    assert.match((await page.locator('[data-testid=result-count]').textContent())!, /^\d+(\+| of \d+) images$/);
    const all = (await api<{ items: unknown[] }>(companion.url, '/api/v1/assets?limit=200')).body.items.length + SECOND_COUNT;
    await page.locator('[data-testid=results]').evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await waitFor('the next page after scrolling', resultIds, (ids) => ids.length === all, 60_000);
    assert.equal(new Set(await resultIds()).size, all, 'no result twice');
    await shot('13a-paged');
    await page.locator('[data-testid=toggle-filters]').click();
    const second = await page.locator('[data-testid=filter-connection] select option', { hasText: 'Second studio' }).getAttribute('value');
    await page.locator('[data-testid=filter-connection] select').selectOption(second!);
    await waitFor('only the second server', () => page.locator('[data-testid=tile]').evaluateAll((t) => t.map((x) => x.getAttribute('data-connection'))), (c) => c.length >= 50 && c.every((x) => x === second));
    await waitFor('its thumbnails', loadedThumbs, (n) => n >= 50);
    await shot('13-second-server');
    await page.locator('[data-testid=filter-connection] select').selectOption('');
    await page.locator('[data-testid=toggle-filters]').click();
  });

  test('that server stopped: a clear message, and what was browsed still shows', async () => {
    await stopChild(library2);
    await search('');
    const status = page.locator('[data-testid=source-status]');
    await status.first().waitFor({ timeout: 60_000 });
    const said = (await status.allTextContents()).join(' ');
    assert.match(said, /Second studio (is offline|failed|is slow)/);
    await waitFor('demo thumbnails still there', loadedThumbs, (n) => n >= 20);
    if (/kept on this computer/.test(said)) {
      // Answered from the agent's mirror: the second server's pictures, thumbnails from its cache.
      await page.locator('[data-testid=toggle-filters]').click();
      const second = await page.locator('[data-testid=filter-connection] select option', { hasText: 'Second studio' }).getAttribute('value');
      await page.locator('[data-testid=filter-connection] select').selectOption(second!);
      await waitFor('the offline server browsed from the cache', loadedThumbs, (n) => n >= 50, 60_000);
      await shot('14a-offline-cached');
      await page.locator('[data-testid=filter-connection] select').selectOption('');
      await page.locator('[data-testid=toggle-filters]').click();
    } else {
      console.log(`no mirror answered for the stopped server: "${said}"`);
    }
    await shot('14-search-server-offline');
    await goTab('connections');
    await page.locator('[data-testid=connection][data-state=offline]').waitFor({ timeout: 30_000 });
    await shot('14b-servers-offline');
    await goTab('search');
  });

  test('an asset deleted meanwhile: the detail says so and offers a way back', async () => {
    await search('Candy stripes');
    const tile = page.locator('[data-testid=tile]', { hasText: 'Candy stripes' }).first();
    await tile.waitFor();
    const id = (await tile.getAttribute('data-asset'))!;
    const deleted = await api(companion.url, `/api/v1/assets/${id}`, { method: 'DELETE' });
    assert.ok([200, 204].includes(deleted.status), String(deleted.status));
    await tile.click();
    const error = page.locator('[data-testid=detail-error]');
    await error.waitFor({ timeout: 30_000 });
    assert.match((await error.getAttribute('data-code'))!, /ERR_ASSET_(GONE|NOT_FOUND)/);
    await shot('15-asset-deleted');
    await error.locator('sp-button', { hasText: 'Back' }).click();
    await waitFor('the deleted asset gone from the results', resultIds, (ids) => !ids.includes(id));
  });

  test('a broken thumbnail shows a placeholder, not a broken image', async () => {
    await page.route('**/agent/v1/thumbs/**', (route) => route.fulfill({ status: 500, body: 'broken' }));
    await search('Mint tiles');
    await page.locator('[data-testid=tile]', { hasText: 'Mint tiles' }).locator('[data-testid=thumb-missing]').waitFor({ timeout: 30_000 });
    await shot('16-broken-thumbnail');
    await page.unroute('**/agent/v1/thumbs/**');
    await search('');
  });

  test('IIIF: a manifest browsed read-only', async () => {
    const { body } = await api<{ items: { id: string }[] }>(companion.url, '/api/v1/assets?limit=1');
    await goTab('iiif');
    await page.locator('[data-testid=iiif-url] input').fill(`${companion.url}/iiif/manifests/${body.items[0]!.id}`);
    await page.locator('[data-testid=iiif-browse]').click();
    await page.locator('[data-testid=iiif-source], [data-testid=iiif-error]').first().waitFor({ timeout: 30_000 });
    const error = await page.locator('[data-testid=iiif-error]').count();
    assert.equal(error, 0, (await page.locator('[data-testid=iiif-error]').allTextContents()).join(' '));
    assert.ok((await page.locator('[data-testid=iiif-item]').count()) >= 1);
    // Its thumbnail comes relayed (and signed) by the agent: the only origin the panel talks to.
    await waitFor(
      'the IIIF thumbnail',
      () => page.locator('[data-testid=iiif-item] img').evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0).map((i) => (i as HTMLImageElement).src)),
      (srcs) => srcs.length >= 1,
    );
    assert.ok((await page.locator('[data-testid=iiif-item] img').first().getAttribute('src'))!.startsWith(`${companion.url}/agent/v1/iiif/image?`));
    await shot('17-iiif');
    await goTab('search');
  });

  test('the companion stopped: a banner, the save kept in the panel, sent when it is back', async () => {
    const id = await openDetail('Blue rhythm');
    const path = await checkout('open', 'original');
    await stopChild(companion);
    await page.locator('[data-testid=agent-banner][data-code=ERR_AGENT_NOT_RUNNING]').waitFor({ timeout: 30_000 });
    await edit(path, 13);
    await page.locator('[data-testid=save-comment] textarea').fill('Saved while the companion was down');
    await page.locator('[data-testid=save-back-button]').click();
    await page.locator('[data-testid=save-kept]').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid=banner-pending]').waitFor();
    await shot('18-companion-down');
    await goTab('queue');
    const kept = page.locator('[data-testid=pending-save]', { hasText: 'Saved while the companion was down' });
    await kept.waitFor();
    await shot('19-queue-pending');
    companion = await serve(['--demo', '--data', data, '--port', String(companion.port)], { timeoutMs: 180_000 });
    await waitFor(
      'the kept save on the server',
      async () => (await api<any>(companion.url, `/api/v1/assets/${id}`)).body.versions?.length ?? 0,
      (n) => n === 2,
      120_000,
    );
    const versions = (await api<any>(companion.url, `/api/v1/assets/${id}`)).body.versions;
    assert.equal(versions[1].comment, 'Saved while the companion was down');
    await goTab('queue');
    await kept.waitFor({ state: 'detached', timeout: 30_000 });
    await shot('20-queue-after-restart');
  });
});
