/**
 * The IIIF service as a viewer meets it: `imagine serve` as a child process on 127.0.0.1, the
 * library prepared with the CLI, every request over HTTP. Pixels are compared (regions,
 * rotation, mirroring, EXIF orientation, gray), every advertised tile of a pyramid-backed image
 * is fetched the way OpenSeadragon computes them, and hostile requests get their 4xx.
 *
 * The data folder's config.json lowers the pyramid threshold (1 MP) and the limits so small
 * pictures exercise the pyramid and the limits.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { endExiftool, getExiftool } from '../companion/metadata/exiftool.ts';
import {
  blobPath,
  json,
  killChildren,
  lastLine,
  rawRequest,
  readCatalog,
  runCli,
  startServer,
  type RawResponse,
  type Server,
} from './helpers/integration.ts';

const CONFIG = {
  iiifPyramidThreshold: 1_000_000,
  iiifMaxWidth: 5000,
  iiifMaxHeight: 5000,
  iiifMaxArea: 12_000_000,
  iiifTileSize: 256,
};
const RED = [255, 0, 0];
const GREEN = [0, 255, 0];
const BLUE = [0, 0, 255];
const WHITE = [255, 255, 255];

let root: string;
let data: string;
let server: Server;
let token: string;
const idOf = new Map<string, string>();
let publicCollection: string;

/** width x height: red | green over blue | white. */
async function quadrants(width: number, height: number): Promise<Sharp> {
  const w = width / 2;
  const h = height / 2;
  const block = (c: number[]) =>
    sharp({ create: { width: w, height: h, channels: 3, background: { r: c[0]!, g: c[1]!, b: c[2]! } } }).png().toBuffer();
  const [r, g, b, white] = await Promise.all([block(RED), block(GREEN), block(BLUE), block(WHITE)]);
  const png = await sharp({ create: { width, height, channels: 3, background: '#000' } })
    .composite([
      { input: r!, left: 0, top: 0 },
      { input: g!, left: w, top: 0 },
      { input: b!, left: 0, top: h },
      { input: white!, left: w, top: h },
    ])
    .removeAlpha()
    .png()
    .toBuffer();
  return sharp(png);
}

async function makeImages(dir: string, privateDir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await mkdir(privateDir, { recursive: true });
  // 2400x1600 = 3.84 MP: above the 1 MP threshold, served from a pyramid.
  await (await quadrants(2400, 1600)).jpeg({ quality: 95 }).toFile(join(dir, 'big.jpg'));
  // 300x200 as seen, stored sideways with EXIF orientation 6.
  const small = await (await quadrants(300, 200)).png().toBuffer();
  await sharp(small).rotate(270).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(join(dir, 'oriented.jpg'));
  await (await quadrants(400, 200)).png().toFile(join(dir, 'plain.png'));
  await (await quadrants(200, 100)).jpeg({ quality: 95 }).toFile(join(dir, 'licensed.jpg'));
  await getExiftool().write(join(dir, 'licensed.jpg'), {
    'XMP-xmpRights:WebStatement': 'https://creativecommons.org/licenses/by/4.0/',
    'XMP-dc:Title': 'Licensed quadrants',
  } as never);
  await (await quadrants(320, 240)).jpeg({ quality: 90 }).toFile(join(dir, 'to-corrupt.jpg'));
  await (await quadrants(200, 200)).jpeg({ quality: 90 }).toFile(join(privateDir, 'secret.jpg'));
}

function get(target: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return rawRequest(server.url, target, { headers });
}

async function pixels(response: RawResponse) {
  assert.equal(response.status, 200, response.body.toString('utf8').slice(0, 300));
  const { data: raw, info } = await sharp(response.body).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => Array.from(raw.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  return { info, at };
}

function near(actual: number[], expected: number[], tolerance = 12) {
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) <= tolerance, `${actual} vs ${expected}`));
}

function assertText(response: RawResponse, status: number) {
  assert.equal(response.status, status, response.body.toString('utf8'));
  assert.match(String(response.headers['content-type']), /^text\/plain/);
  assert.equal(response.headers['access-control-allow-origin'], '*');
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-it-iiif-'));
  data = join(root, 'data');
  const pictures = join(root, 'pictures');
  const privatePictures = join(root, 'private');
  await makeImages(pictures, privatePictures);
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'config.json'), JSON.stringify(CONFIG));
  for (const [dir, args] of [
    [pictures, ['--collection', 'Open', '--public']],
    [privatePictures, ['--collection', 'Closed']],
  ] as const) {
    const ingest = await runCli(['ingest', '--data', data, ...args, '--json', dir], { timeoutMs: 180_000 });
    assert.equal(ingest.code, 0, ingest.stderr);
    for (const file of JSON.parse(lastLine(ingest.stdout)).files as { path: string; assetId: string }[]) {
      idOf.set(file.path.split('/').pop()!, file.assetId);
    }
  }
  assert.equal((await runCli(['users', 'add', 'admin', '--admin', '--data', data])).code, 0);
  const tokens = await runCli(['tokens', 'create', '--user', 'admin', '--data', data, '--json']);
  token = (JSON.parse(lastLine(tokens.stdout)) as { token: string }).token;
  const catalog = await readCatalog(data);
  publicCollection = catalog.collections.find((c) => c.name === 'Open')!.id;
  // Damage one stored original behind the catalog's back (a disk fault).
  const damaged = catalog.assets.find((a) => a.id === idOf.get('to-corrupt.jpg'))!;
  await truncate(blobPath(data, damaged.versions[0]!.sha256), 600);
  server = await startServer(data);
}, { timeout: 300_000 });

after(async () => {
  killChildren();
  await endExiftool();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('IIIF Image API over HTTP', { timeout: 300_000 }, () => {
  test('the asset advertises its image service, and the base URI redirects to info.json', async () => {
    const id = idOf.get('plain.png')!;
    const asset = json(await get(`/api/v1/assets/${id}`));
    assert.equal(asset.iiif, `${server.url}/iiif/3/${id}`);
    const base = await get(`/iiif/3/${id}`);
    assert.equal(base.status, 303);
    assert.equal(base.headers.location, `${server.url}/iiif/3/${id}/info.json`);
  });

  test('info.json 3.0: id is the request URL, integers, tiles, sizes, limits, CORS, JSON-LD negotiation', async () => {
    const id = idOf.get('big.jpg')!;
    const response = await get(`/iiif/3/${id}/info.json`);
    assert.equal(response.status, 200);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.equal(response.headers['access-control-allow-origin'], '*');
    assert.match(String(response.headers.link), /level2\.json>;rel="profile"/);
    const info = json(response);
    assert.equal(info['@context'], 'http://iiif.io/api/image/3/context.json');
    assert.equal(info.id, `${server.url}/iiif/3/${id}`);
    assert.equal(info.type, 'ImageService3');
    assert.equal(info.protocol, 'http://iiif.io/api/image');
    assert.equal(info.profile, 'level2');
    assert.deepEqual([info.width, info.height], [2400, 1600]);
    assert.deepEqual([info.maxWidth, info.maxHeight, info.maxArea], [5000, 5000, 12_000_000]);
    assert.deepEqual(info.tiles, [{ width: 256, height: 256, scaleFactors: [1, 2, 4, 8, 16] }]);
    assert.ok(info.sizes.every((s: { width: number; height: number }) => Number.isInteger(s.width) && Number.isInteger(s.height)));
    assert.ok(info.extraFeatures.includes('mirroring'));
    const ld = await get(`/iiif/3/${id}/info.json`, { accept: 'application/ld+json' });
    assert.match(String(ld.headers['content-type']), /^application\/ld\+json;\s*profile="http:\/\/iiif\.io\/api\/image\/3\/context\.json"/);
  });

  test('info.json 2.1, with the licence; %40 and @version identifiers', async () => {
    const id = idOf.get('licensed.jpg')!;
    const info = json(await get(`/iiif/2/${id}%40v1/info.json`));
    assert.equal(info['@context'], 'http://iiif.io/api/image/2/context.json');
    assert.equal(info['@id'], `${server.url}/iiif/2/${id}%40v1`);
    assert.equal(info.profile[0], 'http://iiif.io/api/image/2/level2.json');
    assert.ok(info.profile[1].supports.includes('sizeAboveFull'));
    assert.equal(info.license, 'https://creativecommons.org/licenses/by/4.0/');
    const three = json(await get(`/iiif/3/${id}@v1/info.json`));
    assert.equal(three.rights, 'https://creativecommons.org/licenses/by/4.0/');
    assert.equal((await get(`/iiif/3/${id}@v9/info.json`)).status, 404);
  });

  test('regions, sizes, rotation, mirroring and gray render the right pixels', async () => {
    const id = idOf.get('plain.png')!;
    const green = await pixels(await get(`/iiif/3/${id}/200,0,200,100/max/0/default.png`));
    assert.deepEqual([green.info.width, green.info.height], [200, 100]);
    near(green.at(100, 50), GREEN);
    const pct = await pixels(await get(`/iiif/2/${id}/pct:50,50,50,50/50,/0/default.png`));
    assert.deepEqual([pct.info.width, pct.info.height], [50, 25]);
    near(pct.at(25, 12), WHITE);
    const rotated = await pixels(await get(`/iiif/3/${id}/full/max/90/default.png`));
    assert.deepEqual([rotated.info.width, rotated.info.height], [200, 400]);
    near(rotated.at(10, 10), BLUE);
    const mirrored = await pixels(await get(`/iiif/3/${id}/full/max/!0/default.jpg`));
    near(mirrored.at(10, 10), GREEN);
    near(mirrored.at(390, 10), RED);
    const gray = await get(`/iiif/3/${id}/full/100,/0/gray.jpg`);
    assert.equal((await sharp(gray.body).metadata()).channels, 1);
    const canonical = await get(`/iiif/3/${id}/pct:0,0,50,50/!100,100/0/default.jpg`);
    assert.equal(canonical.status, 200);
    assert.match(String(canonical.headers.link), new RegExp(`<${server.url}/iiif/3/${id}/0,0,200,100/100,50/0/default.jpg>;rel="canonical"`));
  });

  test('EXIF orientation is applied before the region is cut', async () => {
    const id = idOf.get('oriented.jpg')!;
    const info = json(await get(`/iiif/3/${id}/info.json`));
    assert.deepEqual([info.width, info.height], [300, 200]);
    const green = await pixels(await get(`/iiif/3/${id}/150,0,150,100/max/0/default.png`));
    assert.deepEqual([green.info.width, green.info.height], [150, 100]);
    near(green.at(75, 50), GREEN);
  });

  test('every advertised tile of a pyramid-backed image loads, as OpenSeadragon computes them', async () => {
    const id = idOf.get('big.jpg')!;
    const info = json(await get(`/iiif/3/${id}/info.json`));
    const tile = info.tiles[0].width as number;
    let count = 0;
    for (const sf of info.tiles[0].scaleFactors as number[]) {
      for (let y = 0; y < info.height; y += tile * sf) {
        for (let x = 0; x < info.width; x += tile * sf) {
          const w = Math.min(tile * sf, info.width - x);
          const h = Math.min(tile * sf, info.height - y);
          const size = `${Math.ceil(w / sf)},${Math.ceil(h / sf)}`;
          const response = await get(`/iiif/3/${id}/${x},${y},${w},${h}/${size}/0/default.jpg`);
          const { info: out } = await pixels(response);
          assert.deepEqual([out.width, out.height], [Math.ceil(w / sf), Math.ceil(h / sf)]);
          count++;
        }
      }
    }
    assert.ok(count > 60, `${count} tiles`);
    // Tile colours are right across levels: the bottom-right tile at full resolution is white.
    const corner = await pixels(await get(`/iiif/3/${id}/2304,1536,96,64/96,64/0/default.png`));
    near(corner.at(48, 32), WHITE);
    const overview = await pixels(await get(`/iiif/3/${id}/full/150,100/0/default.png`));
    near(overview.at(20, 20), RED);
    near(overview.at(130, 20), GREEN);
    near(overview.at(20, 80), BLUE);
    // The pyramid is on disk, once.
    const pyramids = (await import('./helpers/integration.ts')).listTree(join(data, 'cache', 'iiif', 'pyramids'));
    assert.equal((await pyramids).filter((p) => p.endsWith('.tif')).length, 1);
  });

  test('ETag and If-None-Match: a repeated request is a 304', async () => {
    const id = idOf.get('plain.png')!;
    const first = await get(`/iiif/3/${id}/0,0,100,100/max/0/default.jpg`);
    assert.equal(first.status, 200);
    assert.match(String(first.headers.etag), /^"[0-9a-f]{64}"$/);
    assert.match(String(first.headers['cache-control']), /^public, max-age=60/);
    const again = await get(`/iiif/3/${id}/0,0,100,100/max/0/default.jpg`, { 'if-none-match': String(first.headers.etag) });
    assert.equal(again.status, 304);
    const pinned = await get(`/iiif/3/${id}@v1/0,0,100,100/max/0/default.jpg`);
    assert.match(String(pinned.headers['cache-control']), /immutable/);
  });

  test('errors: 400, 404, 501 as plain text; problem+json when asked', async () => {
    const id = idOf.get('plain.png')!;
    for (const [path, status] of [
      [`/iiif/3/${id}/full/full/0/default.jpg`, 400],
      [`/iiif/3/${id}/nonsense/max/0/default.jpg`, 400],
      [`/iiif/3/${id}/full/max/0/default.bmp`, 400],
      [`/iiif/3/${id}/full/max/0/fancy.jpg`, 400],
      [`/iiif/3/${id}/full/max/400/default.jpg`, 400],
      [`/iiif/3/${id}/400,0,10,10/max/0/default.jpg`, 400],
      [`/iiif/3/${id}/0,0,10,10/20,/0/default.jpg`, 400],
      [`/iiif/3/${id}/full/pct:101/0/default.jpg`, 400],
      [`/iiif/3/${id}/full/^5001,/0/default.jpg`, 404],
      [`/iiif/3/nothere/full/max/0/default.jpg`, 404],
      [`/iiif/3/..%2F..%2Fcatalog.json/full/max/0/default.jpg`, 404],
      [`/iiif/3/${id}/full/max/0/default.jp2`, 501],
    ] as const) {
      assertText(await get(path), status);
    }
    const problem = await get(`/iiif/3/${id}/full/full/0/default.jpg`, { accept: 'application/problem+json' });
    assert.equal(problem.status, 400);
    assert.equal(json(problem).code, 'ERR_BAD_REQUEST');
    const limit = await get(`/iiif/3/${id}/full/^5001,/0/default.jpg`, { accept: 'application/problem+json' });
    assert.equal(json(limit).code, 'ERR_IMAGE_SIZE_LIMIT');
    const info = await get(`/iiif/3/nothere/info.json`);
    assert.equal(info.status, 404);
    assert.match(String(info.headers['content-type']), /^application\/problem\+json/);
  });

  test('a damaged original is a 415, not a 500, and the server keeps serving', async () => {
    const id = idOf.get('to-corrupt.jpg')!;
    assertText(await get(`/iiif/3/${id}/full/max/0/default.jpg`), 415);
    assert.equal((await get(`/iiif/3/${idOf.get('plain.png')}/full/64,/0/default.jpg`)).status, 200);
  });

  test('private images: bearer token, and a signed prefix for <img> tags', async () => {
    const id = idOf.get('secret.jpg')!;
    assertText(await get(`/iiif/3/${id}/full/max/0/default.jpg`), 401);
    assert.equal((await get(`/iiif/3/${id}/info.json`)).status, 401);
    const withToken = await get(`/iiif/3/${id}/full/max/0/default.jpg`, { authorization: `Bearer ${token}` });
    assert.equal(withToken.status, 200);
    assert.match(String(withToken.headers['cache-control']), /^private/);
    assertText(await get(`/iiif/3/${id}/full/max/0/default.jpg`, { authorization: 'Bearer imt_nope' }), 401);

    const signed = await rawRequest(server.url, `/iiif/sign/${id}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(signed.status, 200, signed.body.toString());
    const { iiif } = json(signed);
    assert.match(iiif, new RegExp(`^${server.url}/iiif/s/[^/]+/3/${id}$`));
    const prefix = iiif.slice(server.url.length);
    const info = json(await get(`${prefix}/info.json`));
    assert.equal(info.id, iiif, 'tiles are asked for under the same prefix');
    const image = await get(`${prefix}/full/50,/0/default.jpg`);
    assert.equal(image.status, 200);
    // The prefix opens that asset only, and a changed signature opens nothing.
    const other = idOf.get('plain.png')!;
    assertText(await get(`${prefix.replace(`/3/${id}`, `/3/${other}`)}/full/50,/0/default.jpg`), 403);
    const tampered = prefix.replace(/\.([A-Za-z0-9_-])([A-Za-z0-9_-]*)\/3\//, (_m: string, c: string, rest: string) => `.${c === 'A' ? 'B' : 'A'}${rest}/3/`);
    assertText(await get(`${tampered}/full/50,/0/default.jpg`), 403);
    assert.equal((await rawRequest(server.url, `/iiif/sign/${id}`, { method: 'POST' })).status, 401);
  });

  test('Presentation 3 manifests for an asset and a collection link the image service', async () => {
    const id = idOf.get('licensed.jpg')!;
    const manifest = json(await get(`/iiif/manifests/${id}`));
    assert.equal(manifest['@context'], 'http://iiif.io/api/presentation/3/context.json');
    assert.equal(manifest.type, 'Manifest');
    assert.equal(manifest.id, `${server.url}/iiif/manifests/${id}`);
    assert.deepEqual(manifest.label, { none: ['Licensed quadrants'] });
    assert.equal(manifest.rights, 'https://creativecommons.org/licenses/by/4.0/');
    const canvas = manifest.items[0];
    assert.deepEqual([canvas.type, canvas.width, canvas.height], ['Canvas', 200, 100]);
    const body = canvas.items[0].items[0].body;
    assert.equal(body.service[0].id, `${server.url}/iiif/3/${id}`);
    assert.equal(body.service[0].type, 'ImageService3');
    assert.equal((await get(new URL(body.id).pathname)).status, 200);
    assert.equal((await get(new URL(manifest.thumbnail[0].id).pathname)).status, 200);

    const collection = json(await get(`/iiif/collections/${publicCollection}`));
    assert.equal(collection.type, 'Collection');
    const listed = collection.items.map((m: { id: string }) => m.id.split('/').pop());
    assert.ok(listed.includes(id));
    assert.ok(!listed.includes(idOf.get('secret.jpg')), 'private assets are not listed');
    assert.equal((await get(`/iiif/manifests/${idOf.get('secret.jpg')}`)).status, 401);
  });

  test('CORS preflight for viewers that send a token', async () => {
    const response = await rawRequest(server.url, `/iiif/3/x/info.json`, {
      method: 'OPTIONS',
      headers: { origin: 'https://viewer.example', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers['access-control-allow-origin'], '*');
    assert.match(String(response.headers['access-control-allow-headers']), /Authorization/);
  });
});
