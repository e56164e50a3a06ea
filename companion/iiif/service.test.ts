import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { writePsd } from '../../test/helpers/psd.ts';
import { BlobStore } from '../library/blob-store.ts';
import { endExiftool } from '../metadata/exiftool.ts';
import { openMemoryCatalog } from '../library/catalog.ts';
import { Library } from '../library/library.ts';
import type { VersionRecord } from '../library/records.ts';
import { parseIiifPath } from './parse.ts';
import { resolveImageRequest } from './resolve.ts';
import { IiifService } from './service.ts';
import type { ImageOrigin } from './source.ts';

const LIMITS = { maxWidth: 4000, maxHeight: 4000, maxArea: 8_000_000 };
let dir: string;
let library: Library;
let service: IiifService;

/** Stores bytes as a version's blob and returns the version's origin (what the service renders). */
async function store(bytes: Buffer, version: Partial<VersionRecord>): Promise<ImageOrigin> {
  const blob = await library.blobs.put(Readable.from([bytes]));
  return service.origin({ id: 'v1', number: 1, created: new Date().toISOString(), sha256: blob.sha256, size: blob.size, mediaType: 'image/jpeg', metadata: {}, ...version });
}

function plan(path: string, size: { width: number; height: number }) {
  const request = parseIiifPath(3, `x/${path}`);
  assert.equal(request.kind, 'image');
  const resolved = resolveImageRequest(request as never, size, LIMITS);
  assert.ok(resolved.ok);
  return resolved.value;
}

async function pixel(bytes: Buffer, x: number, y: number) {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-iiif-service-'));
  const blobs = new BlobStore(dir);
  await blobs.init();
  library = new Library({ catalog: await openMemoryCatalog(), blobs, maxUploadBytes: 1e9 });
  service = new IiifService({
    library,
    dir: join(dir, 'cache'),
    cacheBytes: 50 * 1024 * 1024,
    pyramidBytes: 50 * 1024 * 1024,
    memoryBytes: 1024 * 1024,
    pyramidThreshold: 200_000,
    concurrency: 2,
    queue: 8,
    tileSize: 256,
    limits: LIMITS,
    prerender: true,
    timeoutSeconds: 30,
  });
  await service.init();
});
after(async () => {
  service.close();
  await endExiftool();
  await rm(dir, { recursive: true, force: true });
});

describe('IiifService', () => {
  test('renders once, then answers from the cache', async () => {
    const jpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#c03020' } }).jpeg().toBuffer();
    const version = await store(jpeg, { width: 300, height: 200, thumbnailSha256: 'f'.repeat(64) });
    const p = plan('0,0,100,100/50,50/0/default.png', { width: 300, height: 200 });
    const first = await service.render(version, p);
    assert.ok(first.ok && !first.cached);
    const again = await service.render(version, p);
    assert.ok(again.ok && again.cached);
    assert.equal(again.key, first.key);
  });

  test('a big image gets a pyramid and its advertised tiles are prepared', async () => {
    const jpeg = await sharp({ create: { width: 1024, height: 512, channels: 3, background: '#2050a0' } }).jpeg().toBuffer();
    const version = await store(jpeg, { width: 1024, height: 512, thumbnailSha256: 'e'.repeat(64) });
    await service.prepare(version);
    assert.ok(service.sources.hasPyramid(version));
    const plans = service.advertisedPlans({ width: 1024, height: 512 });
    assert.ok(plans.length >= 8 + 2 + 1);
    for (const p of plans) assert.ok(service.cache.has(service.key(version, p)), p.canonical);
    const tile = await service.render(version, plans[plans.length - 1]!);
    assert.ok(tile.ok && tile.cached);
  });

  test('ingest prepares a big image in the background; deleting the asset removes its pyramid', async () => {
    const jpeg = await sharp({ create: { width: 700, height: 500, channels: 3, background: '#804020' } }).jpeg().toBuffer();
    const { asset } = await library.createAsset(Readable.from([jpeg]), { filename: 'big.jpg' });
    const version = service.origin(asset.versions[0]!);
    await service.prepare(version); // joins the run the commit started
    assert.ok(service.sources.hasPyramid(version));
    await library.deleteAsset(asset.id);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(service.sources.hasPyramid(version), false);
  });

  test('a pyramid of an EXIF-rotated image is stored upright', async () => {
    // Seen as 800x400: left half red, right half blue; stored sideways with orientation 6.
    const seen = await sharp({ create: { width: 800, height: 400, channels: 3, background: '#f00' } })
      .composite([{ input: { create: { width: 400, height: 400, channels: 3, background: '#00f' } }, left: 400, top: 0 }])
      .png()
      .toBuffer();
    const stored = await sharp(seen).rotate(270).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const version = await store(stored, { width: 800, height: 400, thumbnailSha256: 'd'.repeat(64) });
    const result = await service.render(version, plan('400,0,400,400/100,100/0/default.png', { width: 800, height: 400 }));
    assert.ok(result.ok);
    assert.ok(service.sources.hasPyramid(version));
    const [r, , b] = await pixel(result.bytes, 50, 50);
    assert.ok(b! > 200 && r! < 40, `blue: ${r},${b}`);
  });

  test('a Photoshop file is shown through its composite', async () => {
    const width = 60;
    const height = 40;
    const pixels = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) pixels.set((i % width) < width / 2 ? [250, 10, 10] : [10, 10, 250], i * 3);
    const psd = writePsd({ width, height, mode: 3, pixels, rle: true });
    const version = await store(psd, { mediaType: 'application/vnd.adobe.photoshop', width, height });
    assert.deepEqual(await service.sources.describe(version), { width, height, source: 'photoshop-composite' });
    const result = await service.render(version, plan('30,0,30,40/max/0/default.png', { width, height }));
    assert.ok(result.ok, result.ok ? '' : result.message);
    const [r, , b] = await pixel(result.bytes, 10, 10);
    assert.ok(b! > 200 && r! < 40, `right half is blue: ${r},${b}`);
  });

  test('a Photoshop file the decoder cannot read falls back to its embedded preview, and says so', async () => {
    const thumbnail = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#10e010' } }).jpeg({ quality: 95 }).toBuffer();
    const psd = writePsd({ width: 60, height: 40, mode: 3, pixels: Buffer.alloc(60 * 40 * 3), thumbnail });
    psd.writeUInt16BE(9, 24); // Lab colour mode: not decoded here
    const version = await store(psd, { mediaType: 'application/vnd.adobe.photoshop', width: 60, height: 40 });
    assert.deepEqual(await service.sources.describe(version), { width: 30, height: 20, source: 'photoshop-preview' });
    const result = await service.render(version, plan('full/max/0/default.png', { width: 30, height: 20 }));
    assert.ok(result.ok);
    const [r, g] = await pixel(result.bytes, 5, 5);
    assert.ok(g! > 200 && r! < 60);
  });

  test('a Photoshop file with neither is not an image, and nothing throws', async () => {
    const psd = writePsd({ width: 8, height: 8, mode: 3, pixels: Buffer.alloc(8 * 8 * 3) });
    psd.writeUInt16BE(9, 24);
    const version = await store(psd, { mediaType: 'application/vnd.adobe.photoshop', width: 8, height: 8 });
    await assert.rejects(service.sources.describe(version), /cannot be shown/);
    const result = await service.render(version, plan('full/max/0/default.png', { width: 8, height: 8 }));
    assert.ok(!result.ok && result.status === 415);
  });
});
