import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodePsdComposite, parsePsdHeader, psdPreview, PsdError } from './psd.ts';
import { writePsd } from '../../test/helpers/psd.ts';

/** 40x20 RGB: left half red, right half blue, with a diagonal of noise to exercise RLE literals. */
function picture(width = 40, height = 20): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (x === y) out.set([x * 5, 99, 200 - x], i);
      else out.set(x < width / 2 ? [255, 0, 0] : [0, 0, 255], i);
    }
  }
  return out;
}

describe('Photoshop composites', () => {
  for (const [name, options] of [
    ['8-bit RGB raw', { rle: false }],
    ['8-bit RGB RLE', { rle: true }],
    ['16-bit RGB RLE', { rle: true, depth: 16 }],
    ['PSB RLE', { rle: true, psb: true }],
  ] as const) {
    test(`${name} decodes to the same pixels`, () => {
      const pixels = picture();
      const psd = writePsd({ width: 40, height: 20, mode: 3, pixels, ...options });
      assert.deepEqual(parsePsdHeader(psd), { version: 'psb' in options ? 2 : 1, channels: 3, width: 40, height: 20, depth: options.depth ?? 8, mode: 3 });
      const decoded = decodePsdComposite(psd);
      assert.equal(decoded.channels, 3);
      assert.ok(decoded.pixels.equals(pixels));
    });
  }

  test('grayscale and CMYK', () => {
    const gray = Buffer.alloc(40 * 20, 77);
    const g = decodePsdComposite(writePsd({ width: 40, height: 20, mode: 1, pixels: gray, rle: true }));
    assert.equal(g.channels, 1);
    assert.ok(g.pixels.equals(gray));
    // CMYK ink: full cyan → (0, 255, 255); full black → (0, 0, 0).
    const ink = Buffer.alloc(2 * 1 * 4);
    ink.set([255, 0, 0, 0], 0);
    ink.set([0, 0, 0, 255], 4);
    const c = decodePsdComposite(writePsd({ width: 2, height: 1, mode: 4, pixels: ink }));
    assert.deepEqual([...c.pixels], [0, 255, 255, 0, 0, 0]);
  });

  test('truncated, garbage and unsupported files throw PsdError', () => {
    const psd = writePsd({ width: 40, height: 20, mode: 3, pixels: picture(), rle: true });
    for (const bad of [psd.subarray(0, psd.length - 10), psd.subarray(0, 30), Buffer.from('8BPS nonsense'), Buffer.alloc(100)]) {
      assert.throws(() => decodePsdComposite(bad), PsdError);
    }
    const huge = Buffer.from(psd);
    huge.writeUInt32BE(29_999, 14);
    huge.writeUInt32BE(29_999, 18);
    assert.throws(() => decodePsdComposite(huge), /too large/);
  });

  test('the embedded thumbnail is found when there is one', async () => {
    const thumbnail = await sharp({ create: { width: 16, height: 8, channels: 3, background: '#0f0' } }).jpeg().toBuffer();
    const psd = writePsd({ width: 40, height: 20, mode: 3, pixels: picture(), thumbnail });
    assert.ok(psdPreview(psd)?.equals(thumbnail));
    assert.equal(psdPreview(writePsd({ width: 4, height: 2, mode: 3, pixels: picture(4, 2) })), undefined);
  });
});
