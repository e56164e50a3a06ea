import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { parseIiifPath, type IiifVersion } from './parse.ts';
import { resolveImageRequest, type RenderPlan } from './resolve.ts';
import { renderImage, type RenderSource } from './render.ts';
import { buildPyramid, chooseLevel, readPyramidLevels } from './pyramid.ts';

const LIMITS = { maxWidth: 5000, maxHeight: 5000, maxArea: 10_000_000 };
const RED = [255, 0, 0];
const GREEN = [0, 255, 0];
const BLUE = [0, 0, 255];
const WHITE = [255, 255, 255];

/** 200x100: red | green over blue | white, each quadrant 100x50. */
function quadrants(): Promise<Buffer> {
  const block = (c: number[]) =>
    sharp({ create: { width: 100, height: 50, channels: 3, background: { r: c[0]!, g: c[1]!, b: c[2]! } } }).png().toBuffer();
  return Promise.all([block(RED), block(GREEN), block(BLUE), block(WHITE)]).then((blocks) =>
    sharp({ create: { width: 200, height: 100, channels: 3, background: '#000' } })
      .composite([
        { input: blocks[0]!, left: 0, top: 0 },
        { input: blocks[1]!, left: 100, top: 0 },
        { input: blocks[2]!, left: 0, top: 50 },
        { input: blocks[3]!, left: 100, top: 50 },
      ])
      .removeAlpha()
      .png()
      .toBuffer(),
  );
}

/** A PNG whose header claims 30000x30000 pixels (900 MP) in a few dozen bytes. */
function bombPng(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body) >>> 0, 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(30000, 0);
  ihdr.writeUInt32BE(30000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(30001 * 4))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

let dir: string;
let png: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-render-'));
  png = await quadrants();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function plan(path: string, width: number, height: number, version: IiifVersion = 3): RenderPlan {
  const request = parseIiifPath(version, `x/${path}`);
  assert.equal(request.kind, 'image');
  const resolved = resolveImageRequest(request as never, { width, height }, LIMITS);
  assert.ok(resolved.ok, resolved.ok ? '' : resolved.error.message);
  return resolved.value;
}

function source(input: string | Buffer, width: number, height: number): RenderSource {
  return { input, width, height, fullWidth: width, fullHeight: height, autoOrient: true };
}

async function render(src: RenderSource, path: string) {
  const result = await renderImage(src, plan(path, src.fullWidth, src.fullHeight));
  assert.ok(result.ok, result.ok ? '' : result.error.message);
  const { data, info } = await sharp(result.bytes).raw().toBuffer({ resolveWithObject: true });
  const pixel = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x + 1) * info.channels));
  return { info, pixel, bytes: result.bytes, contentType: result.contentType };
}

function near(actual: number[], expected: number[], tolerance = 6) {
  assert.equal(actual.length >= expected.length, true, `${actual} vs ${expected}`);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) <= tolerance, `channel ${i}: ${actual} vs ${expected}`));
}

describe('render: pixels', () => {
  test('region cuts the right quadrant, exact output size', async () => {
    const out = await render(source(png, 200, 100), '100,0,100,50/max/0/default.png');
    assert.deepEqual([out.info.width, out.info.height], [100, 50]);
    near(out.pixel(0, 0), GREEN);
    near(out.pixel(99, 49), GREEN);
  });

  test('pct region and size', async () => {
    const out = await render(source(png, 200, 100), 'pct:50,50,50,50/50,25/0/default.png');
    assert.deepEqual([out.info.width, out.info.height], [50, 25]);
    near(out.pixel(25, 12), WHITE);
  });

  test('mirroring flips left and right', async () => {
    const out = await render(source(png, 200, 100), 'full/max/!0/default.png');
    near(out.pixel(10, 10), GREEN);
    near(out.pixel(190, 10), RED);
    near(out.pixel(10, 90), WHITE);
  });

  test('rotation 90 is clockwise and swaps the size', async () => {
    const out = await render(source(png, 200, 100), 'full/max/90/default.png');
    assert.deepEqual([out.info.width, out.info.height], [100, 200]);
    near(out.pixel(10, 10), BLUE);
    near(out.pixel(90, 10), RED);
    near(out.pixel(10, 190), WHITE);
  });

  test('mirror then rotate (!90)', async () => {
    const out = await render(source(png, 200, 100), 'full/max/!90/default.png');
    near(out.pixel(10, 10), WHITE);
    near(out.pixel(90, 10), GREEN);
    near(out.pixel(90, 190), RED);
  });

  test('rotation 180 and 270', async () => {
    const r180 = await render(source(png, 200, 100), 'full/max/180/default.png');
    near(r180.pixel(10, 10), WHITE);
    const r270 = await render(source(png, 200, 100), 'full/max/270/default.png');
    assert.deepEqual([r270.info.width, r270.info.height], [100, 200]);
    near(r270.pixel(10, 10), GREEN);
  });

  test('arbitrary rotation: transparent corners in png, white in jpg, bounding box size', async () => {
    const out = await render(source(png, 200, 100), 'full/max/45/default.png');
    const side = Math.round((200 + 100) / Math.SQRT2);
    assert.ok(Math.abs(out.info.width - side) <= 2 && Math.abs(out.info.height - side) <= 2, `${out.info.width}x${out.info.height}`);
    assert.equal(out.info.channels, 4);
    assert.equal(out.pixel(0, 0)[3], 0);
    const jpg = await render(source(png, 200, 100), 'full/max/45/default.jpg');
    near(jpg.pixel(0, 0), WHITE);
  });

  test('gray and bitonal', async () => {
    const gray = await render(source(png, 200, 100), 'full/max/0/gray.png');
    assert.equal((await sharp(gray.bytes).metadata()).channels, 1);
    const g = gray.pixel(10, 10)[0]!;
    // libvips converts through CIE L*: pure red is a mid grey (L* 53), white stays white.
    assert.ok(g > 40 && g < 140, `red as grey: ${g}`);
    near(gray.pixel(150, 90), [255]);
    const bitonal = await render(source(png, 200, 100), 'full/max/0/bitonal.png');
    const { data } = await sharp(bitonal.bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
    assert.ok(data.every((v) => v === 0 || v === 255));
  });

  test('every format decodes with its content type', async () => {
    for (const [format, type, sharpFormat] of [
      ['jpg', 'image/jpeg', 'jpeg'],
      ['png', 'image/png', 'png'],
      ['webp', 'image/webp', 'webp'],
      ['tif', 'image/tiff', 'tiff'],
      ['gif', 'image/gif', 'gif'],
    ] as const) {
      const out = await render(source(png, 200, 100), `full/100,/0/default.${format}`);
      assert.equal(out.contentType, type);
      assert.equal((await sharp(out.bytes).metadata()).format, sharpFormat);
      assert.deepEqual([out.info.width, out.info.height], [100, 50]);
    }
  });

  test('every format x quality x rotation renders (no combination is refused)', async () => {
    const src = source(png, 200, 100);
    for (const format of ['jpg', 'png', 'webp', 'tif', 'gif']) {
      for (const quality of ['default', 'color', 'gray', 'bitonal']) {
        for (const rotation of ['0', '45', '!90', '!187.5']) {
          const result = await renderImage(src, plan(`10,10,100,50/50,/${rotation}/${quality}.${format}`, 200, 100));
          assert.ok(result.ok, `${rotation}/${quality}.${format}: ${result.ok ? '' : result.error.message}`);
          const meta = await sharp(result.bytes).metadata();
          assert.ok(meta.width > 0, `${rotation}/${quality}.${format} decodes`);
        }
      }
    }
  });

  test('colour output carries an sRGB profile', async () => {
    const out = await render(source(png, 200, 100), 'full/max/0/default.jpg');
    const meta = await sharp(out.bytes).metadata();
    assert.ok(meta.icc && meta.icc.length > 0);
    assert.equal(meta.space, 'srgb');
  });
});

describe('render: sources', () => {
  test('EXIF orientation is applied before the region is cut', async () => {
    // Stored sideways with orientation 6 (display = stored rotated 90° clockwise), so what a
    // viewer sees is the 200x100 quadrant picture.
    const stored = await sharp(png).rotate(270).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const file = join(dir, 'oriented.jpg');
    await writeFile(file, stored);
    const out = await render(source(file, 200, 100), '100,0,100,50/max/0/default.png');
    assert.deepEqual([out.info.width, out.info.height], [100, 50]);
    near(out.pixel(50, 25), GREEN, 12);
  });

  test('CMYK and 16-bit sources come out as 8-bit sRGB', async () => {
    const cmyk = await sharp(png).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const fromCmyk = await render(source(cmyk, 200, 100), 'full/max/0/default.png');
    assert.equal(fromCmyk.info.channels, 3);
    near(fromCmyk.pixel(150, 90), WHITE, 20);
    const deep = await sharp(png).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(deep).metadata()).depth, 'ushort');
    const from16 = await render(source(deep, 200, 100), 'full/max/0/default.png');
    assert.equal((await sharp(from16.bytes).metadata()).depth, 'uchar');
    near(from16.pixel(150, 10), GREEN);
  });

  test('pyramid levels render the same pixels as the original', async () => {
    const big = await sharp({ create: { width: 2048, height: 1024, channels: 3, background: '#000' } })
      .composite([{ input: await sharp(png).resize(2048, 1024, { kernel: 'nearest' }).toBuffer(), left: 0, top: 0 }])
      .png()
      .toBuffer();
    const file = join(dir, 'pyramid.tif');
    await buildPyramid(big, file, { tileSize: 256 });
    const levels = await readPyramidLevels(file);
    assert.deepEqual(levels.slice(0, 3), [
      { width: 2048, height: 1024 },
      { width: 1024, height: 512 },
      { width: 512, height: 256 },
    ]);
    assert.equal(chooseLevel(levels, 2048, 1), 0);
    assert.equal(chooseLevel(levels, 2048, 0.5), 1);
    assert.equal(chooseLevel(levels, 2048, 0.3), 1);
    assert.equal(chooseLevel(levels, 2048, 0.25), 2);
    const p = plan('1024,512,1024,512/256,128/0/default.png', 2048, 1024);
    const level = chooseLevel(levels, 2048, 256 / 1024);
    const fromPyramid = await renderImage({ input: file, page: level, ...levels[level]!, fullWidth: 2048, fullHeight: 1024, autoOrient: false }, p);
    assert.ok(fromPyramid.ok);
    const { data, info } = await sharp(fromPyramid.bytes).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [256, 128]);
    near(Array.from(data.subarray(0, 3)), WHITE);
  });

  test('corrupt and truncated sources are 415, never a throw', async () => {
    const jpeg = await sharp(png).jpeg().toBuffer();
    for (const bad of [Buffer.from('not an image at all'), jpeg.subarray(0, jpeg.length >> 1)]) {
      const result = await renderImage(source(bad, 200, 100), plan('full/max/0/default.jpg', 200, 100));
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.error.status, 415);
    }
  });

  test('decompression bomb: over the pixel limit is refused without decoding', async () => {
    const bomb = bombPng();
    assert.ok(bomb.length < 1000);
    const started = Date.now();
    const result = await renderImage(source(bomb, 30000, 30000), plan('0,0,10,10/max/0/default.jpg', 30000, 30000));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.error.status, 415);
    assert.ok(Date.now() - started < 2000);
  });
});
