/**
 * Pixels of Photoshop files, which libvips cannot read. A PSD/PSB file ends with the
 * composite image Photoshop saves with "Maximize compatibility" (on by default):
 *
 *   header      "8BPS" u16 version(1 PSD, 2 PSB) 6*0 u16 channels u32 height u32 width
 *               u16 depth u16 mode                                   ; 26 bytes
 *   colour mode data    u32 length, data
 *   image resources     u32 length, data        ; 0x040C: the JPEG thumbnail ("preview")
 *   layers and masks    u32 length (u64 in PSB), data
 *   image data  u16 compression (0 raw, 1 PackBits RLE), then for RLE one byte count per
 *               row per channel (u16; u32 in PSB), then the rows, channel after channel
 *
 * `decodePsdComposite` reads 8- and 16-bit Grayscale, RGB and CMYK composites (raw or RLE)
 * into interleaved 8-bit pixels; CMYK is converted to RGB without the document's profile
 * (an approximation). For anything else (bitmap, indexed, Lab, 32-bit, ZIP) or a file
 * without a composite, `psdPreview` falls back to the embedded JPEG thumbnail, which
 * exiftool also offers as `-b -PhotoshopThumbnail` (exiftool has no tag for the composite
 * itself). Callers say which one they used (info.json `imagineSource`).
 */
import { open } from 'node:fs/promises';

export const PSD_MEDIA_TYPES = new Set(['image/vnd.adobe.photoshop', 'application/vnd.adobe.photoshop', 'image/x-photoshop']);
/** Largest composite decoded into memory, pixels (about 400 MB of RGBA at most). */
export const MAX_PSD_PIXELS = 100_000_000;
/** Largest file read into memory for decoding, bytes. */
const MAX_PSD_BYTES = 2 * 1024 ** 3;

export interface PsdHeader {
  version: 1 | 2;
  channels: number;
  width: number;
  height: number;
  depth: number;
  mode: number;
}

export interface DecodedComposite {
  pixels: Buffer;
  width: number;
  height: number;
  channels: 1 | 3;
}

const MODE_CHANNELS: Record<number, number> = { 1: 1, 3: 3, 4: 4 };

export class PsdError extends Error {
  override readonly name = 'PsdError';
}

export function parsePsdHeader(bytes: Buffer): PsdHeader {
  if (bytes.length < 26 || bytes.toString('latin1', 0, 4) !== '8BPS') throw new PsdError('not a Photoshop file');
  const version = bytes.readUInt16BE(4);
  if (version !== 1 && version !== 2) throw new PsdError(`unknown Photoshop file version ${version}`);
  const header: PsdHeader = {
    version,
    channels: bytes.readUInt16BE(12),
    height: bytes.readUInt32BE(14),
    width: bytes.readUInt32BE(18),
    depth: bytes.readUInt16BE(22),
    mode: bytes.readUInt16BE(24),
  };
  const max = version === 1 ? 30_000 : 300_000;
  if (header.channels < 1 || header.channels > 56 || !header.width || !header.height || header.width > max || header.height > max) {
    throw new PsdError('invalid Photoshop header');
  }
  return header;
}

/** Offsets of the sections after the header; throws for a file cut short. */
function sections(bytes: Buffer, header: PsdHeader) {
  let at = 26;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new PsdError('Photoshop file is truncated');
  };
  need(4);
  at += 4 + bytes.readUInt32BE(at); // colour mode data
  need(4);
  const resourcesLength = bytes.readUInt32BE(at);
  const resources = { start: at + 4, end: at + 4 + resourcesLength };
  at = resources.end;
  if (header.version === 1) {
    need(4);
    at += 4 + bytes.readUInt32BE(at);
  } else {
    need(8);
    const length = Number(bytes.readBigUInt64BE(at));
    at += 8 + length;
  }
  need(2);
  return { resources, imageData: at };
}

/** Decodes the composite image. Throws `PsdError` when it cannot. */
export function decodePsdComposite(bytes: Buffer): DecodedComposite {
  const header = parsePsdHeader(bytes);
  const colourChannels = MODE_CHANNELS[header.mode];
  if (!colourChannels) throw new PsdError(`Photoshop colour mode ${header.mode} is not supported`);
  if (header.depth !== 8 && header.depth !== 16) throw new PsdError(`Photoshop ${header.depth}-bit images are not supported`);
  if (header.channels < colourChannels) throw new PsdError('Photoshop file has too few channels');
  const { width, height } = header;
  if (width * height > MAX_PSD_PIXELS) throw new PsdError('Photoshop composite is too large to decode');
  const { imageData } = sections(bytes, header);
  const compression = bytes.readUInt16BE(imageData);
  const bytesPerSample = header.depth / 8;
  const rowBytes = width * bytesPerSample;
  const planes = Buffer.alloc(width * height * colourChannels);
  const row = Buffer.alloc(rowBytes);
  let at = imageData + 2;
  const store = (channel: number, y: number) => {
    const base = y * width;
    for (let x = 0; x < width; x++) planes[(base + x) * colourChannels + channel] = row[x * bytesPerSample]!;
  };
  if (compression === 0) {
    for (let c = 0; c < colourChannels; c++) {
      for (let y = 0; y < height; y++) {
        if (at + rowBytes > bytes.length) throw new PsdError('Photoshop composite is truncated');
        bytes.copy(row, 0, at, at + rowBytes);
        at += rowBytes;
        store(c, y);
      }
    }
  } else if (compression === 1) {
    const countSize = header.version === 1 ? 2 : 4;
    const rows = header.channels * height;
    if (at + rows * countSize > bytes.length) throw new PsdError('Photoshop composite is truncated');
    const counts = (i: number) => (countSize === 2 ? bytes.readUInt16BE(at + i * 2) : bytes.readUInt32BE(at + i * 4));
    let data = at + rows * countSize;
    for (let c = 0; c < colourChannels; c++) {
      for (let y = 0; y < height; y++) {
        const length = counts(c * height + y);
        if (data + length > bytes.length) throw new PsdError('Photoshop composite is truncated');
        unpackBits(bytes, data, data + length, row);
        data += length;
        store(c, y);
      }
    }
  } else {
    throw new PsdError(`Photoshop compression ${compression} is not supported`);
  }
  if (colourChannels === 4) {
    // CMYK is stored inverted (255 = no ink); a plain conversion without the document profile.
    const rgb = Buffer.alloc(width * height * 3);
    for (let i = 0, j = 0; i < planes.length; i += 4, j += 3) {
      const k = planes[i + 3]!;
      rgb[j] = Math.round((planes[i]! * k) / 255);
      rgb[j + 1] = Math.round((planes[i + 1]! * k) / 255);
      rgb[j + 2] = Math.round((planes[i + 2]! * k) / 255);
    }
    return { pixels: rgb, width, height, channels: 3 };
  }
  return { pixels: planes, width, height, channels: colourChannels as 1 | 3 };
}

/** PackBits: a signed count n, then n+1 literal bytes (n >= 0) or one byte repeated 1-n times. */
function unpackBits(source: Buffer, start: number, end: number, target: Buffer): void {
  let i = start;
  let o = 0;
  while (i < end && o < target.length) {
    const n = source.readInt8(i++);
    if (n >= 0) {
      const count = Math.min(n + 1, target.length - o, end - i);
      source.copy(target, o, i, i + count);
      i += n + 1;
      o += count;
    } else if (n !== -128) {
      const count = Math.min(1 - n, target.length - o);
      target.fill(source[i++] ?? 0, o, o + count);
      o += count;
    }
  }
  if (o < target.length) throw new PsdError('Photoshop composite row is short');
}

/** The embedded JPEG thumbnail (image resource 0x040C, or the older 0x0409), if any. */
export function psdPreview(bytes: Buffer): Buffer | undefined {
  const header = parsePsdHeader(bytes);
  const { resources } = sections(bytes, header);
  let at = resources.start;
  let found: Buffer | undefined;
  while (at + 12 <= resources.end && bytes.toString('latin1', at, at + 4) === '8BIM') {
    const id = bytes.readUInt16BE(at + 4);
    const nameLength = bytes[at + 6]!;
    const nameEnd = at + 6 + ((nameLength + 2) & ~1); // Pascal string padded to even
    if (nameEnd + 4 > resources.end) break;
    const size = bytes.readUInt32BE(nameEnd);
    const data = nameEnd + 4;
    if ((id === 0x040c || id === 0x0409) && size > 28 && data + size <= resources.end && bytes.readUInt32BE(data) === 1) {
      found = bytes.subarray(data + 28, data + size);
      if (id === 0x040c) return found;
    }
    at = data + size + (size & 1);
  }
  return found;
}

/** Reads a Photoshop file for decoding (bounded). */
export async function readPsd(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > MAX_PSD_BYTES) throw new PsdError('Photoshop file is too large to decode');
    const bytes = Buffer.alloc(size);
    await handle.read(bytes, 0, size, 0);
    return bytes;
  } finally {
    await handle.close();
  }
}
