/** A minimal Photoshop file writer for tests: the composite image only, no layers. */

export interface PsdOptions {
  width: number;
  height: number;
  /** 1 grayscale, 3 RGB, 4 CMYK */
  mode: 1 | 3 | 4;
  depth?: 8 | 16;
  rle?: boolean;
  psb?: boolean;
  /** A JPEG thumbnail stored as image resource 0x040C. */
  thumbnail?: Buffer;
  /** Interleaved 8-bit samples, mode channels per pixel (CMYK given as ink, 255 = full). */
  pixels: Buffer;
}

function packBits(row: Buffer): Buffer {
  const out: number[] = [];
  let i = 0;
  while (i < row.length) {
    let run = 1;
    while (i + run < row.length && run < 128 && row[i + run] === row[i]) run++;
    if (run > 1) {
      out.push((1 - run) & 0xff, row[i]!);
      i += run;
    } else {
      const start = i;
      while (i < row.length && i - start < 128 && !(i + 1 < row.length && row[i + 1] === row[i])) i++;
      if (i === start) i++;
      out.push(i - start - 1, ...row.subarray(start, i));
    }
  }
  return Buffer.from(out);
}

/** Writes a minimal Photoshop file: no layers, the composite only (what tests need). */
export function writePsd(o: PsdOptions): Buffer {
  const channels = o.mode === 1 ? 1 : o.mode === 3 ? 3 : 4;
  const depth = o.depth ?? 8;
  const header = Buffer.alloc(26);
  header.write('8BPS', 0, 'latin1');
  header.writeUInt16BE(o.psb ? 2 : 1, 4);
  header.writeUInt16BE(channels, 12);
  header.writeUInt32BE(o.height, 14);
  header.writeUInt32BE(o.width, 18);
  header.writeUInt16BE(depth, 22);
  header.writeUInt16BE(o.mode === 1 ? 1 : o.mode, 24);
  let resources = Buffer.alloc(0);
  if (o.thumbnail) {
    const info = Buffer.alloc(28);
    info.writeUInt32BE(1, 0);
    const data = Buffer.concat([info, o.thumbnail]);
    const head = Buffer.alloc(12);
    head.write('8BIM', 0, 'latin1');
    head.writeUInt16BE(0x040c, 4);
    head.writeUInt32BE(data.length, 8); // name: empty Pascal string padded (2 bytes at 6..7)
    resources = Buffer.concat([head, data, Buffer.alloc(data.length & 1)]);
  }
  const len = (n: number, size = 4) => {
    const b = Buffer.alloc(size);
    if (size === 4) b.writeUInt32BE(n);
    else b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const rows: Buffer[] = [];
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < o.height; y++) {
      const row = Buffer.alloc(o.width * (depth / 8));
      for (let x = 0; x < o.width; x++) {
        let v = o.pixels[(y * o.width + x) * channels + c]!;
        if (o.mode === 4) v = 255 - v;
        if (depth === 8) row[x] = v;
        else row.writeUInt16BE(v * 257, x * 2);
      }
      rows.push(row);
    }
  }
  let imageData: Buffer;
  if (o.rle) {
    const packed = rows.map(packBits);
    const counts = Buffer.alloc(packed.length * (o.psb ? 4 : 2));
    packed.forEach((p, i) => (o.psb ? counts.writeUInt32BE(p.length, i * 4) : counts.writeUInt16BE(p.length, i * 2)));
    imageData = Buffer.concat([Buffer.from([0, 1]), counts, ...packed]);
  } else {
    imageData = Buffer.concat([Buffer.from([0, 0]), ...rows]);
  }
  return Buffer.concat([header, len(0), len(resources.length), resources, len(0, o.psb ? 8 : 4), imageData]);
}

