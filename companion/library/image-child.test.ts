import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { isProtocolError } from '../../shared/errors.ts';
import { buildPyramid, readPyramidLevels } from '../iiif/pyramid.ts';
import { endExiftool } from '../metadata/exiftool.ts';
import { ImageChildError, ISOLATE_PIXELS, runImageJob, setImageChildScript } from './image-child.ts';
import { thumbnailInChild, THUMBNAIL_SIZE } from './probe.ts';
import { openLibraryServices, type LibraryServices } from './services.ts';

let dir: string;
/** A uniform 8000 x 5001 TIFF: just above ISOLATE_PIXELS, small on disk. */
let big: string;
let small: string;
let dying: string;
let hanging: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-image-child-'));
  big = join(dir, 'big.tif');
  await sharp({ create: { width: 8000, height: 5001, channels: 3, background: { r: 200, g: 60, b: 20 } } })
    .tiff({ compression: 'lzw' })
    .toFile(big);
  small = join(dir, 'small.png');
  await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 10, g: 120, b: 220 } } }).png().toFile(small);
  dying = join(dir, 'dying.mjs');
  await writeFile(dying, "process.stdin.resume(); process.kill(process.pid, 'SIGKILL');\n");
  hanging = join(dir, 'hanging.mjs');
  await writeFile(hanging, 'process.stdin.resume(); setInterval(() => {}, 1000);\n');
});

after(async () => {
  await endExiftool();
  await rm(dir, { recursive: true, force: true });
});

describe('runImageJob', () => {
  test('runs the pipeline in a child and writes the output', async () => {
    const output = join(dir, 'out.jpg');
    await runImageJob({ input: small, ops: [['resize', 100, 100, { fit: 'inside' }], ['jpeg', { quality: 80 }]], output });
    const meta = await sharp(output).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.deepEqual([meta.width, meta.height], [100, 67]);
  });

  test("a pipeline that fails rejects with sharp's own message (not an ImageChildError)", async () => {
    const error = await runImageJob({ input: join(dir, 'missing.png'), ops: [['jpeg', {}]], output: join(dir, 'never.jpg') }).catch((e: Error) => e);
    assert.ok(error instanceof Error && !(error instanceof ImageChildError));
    assert.match(error.message, /missing\.png|does not exist/);
    await assert.rejects(stat(join(dir, 'never.jpg')));
  });

  test('only the listed sharp methods may be called', async () => {
    await assert.rejects(runImageJob({ input: small, ops: [['toBuffer']], output: join(dir, 'x.jpg') }), /not allowed/);
  });

  test('a child that dies is an ImageChildError of kind crash, with the signal', async () => {
    const restore = setImageChildScript(dying);
    try {
      const error = await runImageJob({ input: small, ops: [], output: join(dir, 'y.jpg') }).catch((e: Error) => e);
      assert.ok(error instanceof ImageChildError);
      assert.equal(error.kind, 'crash');
      assert.match(error.message, /SIGKILL/);
    } finally {
      restore();
    }
  });

  test('a child that takes too long is killed: kind timeout', async () => {
    const restore = setImageChildScript(hanging);
    try {
      const error = await runImageJob({ input: small, ops: [], output: join(dir, 'z.jpg') }, { timeoutMs: 300 }).catch((e: Error) => e);
      assert.ok(error instanceof ImageChildError);
      assert.equal(error.kind, 'timeout');
    } finally {
      restore();
    }
  });
});

describe('big images in the library', () => {
  let services: LibraryServices;
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'imagine-image-child-lib-'));
    services = await openLibraryServices({
      dataDir,
      command: 'test',
      maxUploadBytes: 1024 ** 3,
      signedUrlTtlSeconds: 300,
      clockSkewSeconds: 60,
    });
  });
  after(async () => {
    await services.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const blobCount = async (): Promise<number> => (await readdir(join(dataDir, 'blobs'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;

  test('only non-JPEG images above ISOLATE_PIXELS are thumbnailed in a child', () => {
    const probe = { mediaType: 'image/tiff', width: 8000, height: 5001, decodable: true };
    assert.ok(8000 * 5001 > ISOLATE_PIXELS);
    assert.equal(thumbnailInChild(probe), true);
    assert.equal(thumbnailInChild({ ...probe, mediaType: 'image/jpeg' }), false);
    assert.equal(thumbnailInChild({ ...probe, height: 4000 }), false);
    assert.equal(thumbnailInChild({ ...probe, decodable: false }), false);
  });

  test('a big TIFF gets its thumbnail from the child', async () => {
    const { asset } = await services.library.createAsset(createReadStream(big), { filename: 'big.tif' });
    const version = asset.versions[0]!;
    assert.deepEqual([version.width, version.height], [8000, 5001]);
    const thumb = await sharp(services.library.blobs.pathOf(version.thumbnailSha256!)).metadata();
    assert.deepEqual([thumb.format, thumb.width, thumb.height], ['jpeg', THUMBNAIL_SIZE, 320]);
  });

  test('a thumbnail child that dies refuses the file: ERR_NOT_AN_IMAGE, nothing stored, catalog unchanged', async () => {
    const other = join(dir, 'big2.tif');
    await sharp(big).tiff({ compression: 'deflate' }).toFile(other);
    const assets = services.library.catalog.data.assets.length;
    const changes = services.library.catalog.data.changes.length;
    const blobs = await blobCount();
    const restore = setImageChildScript(dying);
    try {
      const error = await services.library.createAsset(createReadStream(other), { filename: 'big2.tif' }).catch((e: Error) => e);
      assert.ok(isProtocolError(error), String(error));
      assert.equal(error.code, 'ERR_NOT_AN_IMAGE');
      assert.match(error.message, /image process died \(signal SIGKILL\)/);
    } finally {
      restore();
    }
    assert.equal(services.library.catalog.data.assets.length, assets);
    assert.equal(services.library.catalog.data.changes.length, changes);
    assert.equal(await blobCount(), blobs);
    assert.deepEqual(await readdir(join(dataDir, 'tmp')), []);
  });

  test('a truncated big image is refused with the decoder message, nothing left behind', async () => {
    const png = join(dir, 'cut.png');
    await sharp({ create: { width: 8000, height: 5001, channels: 3, background: { r: 90, g: 30, b: 160 } } })
      .png({ compressionLevel: 1 })
      .toFile(png);
    await truncate(png, Math.floor((await stat(png)).size / 2));
    const assets = services.library.catalog.data.assets.length;
    const blobs = await blobCount();
    const error = await services.library.createAsset(createReadStream(png), { filename: 'cut.png' }).catch((e: Error) => e);
    assert.ok(isProtocolError(error), String(error));
    assert.equal(error.code, 'ERR_NOT_AN_IMAGE');
    assert.match(error.message, /cannot be decoded/);
    assert.equal(services.library.catalog.data.assets.length, assets);
    assert.equal(await blobCount(), blobs);
    assert.deepEqual(await readdir(join(dataDir, 'tmp')), []);
  });
});

describe('pyramids of big images', () => {
  test('a pyramid child that dies rejects the build', async () => {
    const restore = setImageChildScript(dying);
    try {
      const target = join(dir, 'dead-pyramid.tif');
      const error = await buildPyramid(big, target, { tileSize: 512 }).catch((e: Error) => e);
      assert.ok(error instanceof ImageChildError);
      assert.equal(error.kind, 'crash');
    } finally {
      restore();
    }
  });

  test('built in a child; a pyramid wider than 16383 pixels can be read back', { timeout: 120_000 }, async () => {
    const wide = join(dir, 'wide.tif');
    // 16400 x 16400 (grey): above ISOLATE_PIXELS and above sharp's default pixel limit
    // (16383 x 16383), so the levels must be read with the library's own limit.
    await sharp({ create: { width: 16400, height: 16400, channels: 3, background: { r: 128, g: 128, b: 128 } }, limitInputPixels: false })
      .toColourspace('b-w')
      .tiff({ compression: 'lzw' })
      .toFile(wide);
    const pyramid = join(dir, 'wide-pyramid.tif');
    await buildPyramid(wide, pyramid, { tileSize: 512 });
    const levels = await readPyramidLevels(pyramid);
    assert.deepEqual(levels[0], { width: 16400, height: 16400 });
    assert.ok(levels.length > 5);
    assert.ok((await readFile(pyramid)).length > 0);
  });
});
