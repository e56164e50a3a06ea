/**
 * The raw XMP packet of a file: found, checked and taken out whole, so every version's packet
 * can be stored and served as it was (custom namespaces, history and all).
 *
 * JPEG is read here, segment by segment: the standard packet (APP1 `http://ns.adobe.com/xap/1.0/`)
 * and, when it names one in `xmpNote:HasExtendedXMP`, the extended packet (APP1
 * `http://ns.adobe.com/xmp/extension/`, GUID + full length + offset + chunk) are joined into one
 * logical packet. Other formats go through exiftool (`-XMP:XMP -b`); an XMP sidecar is its
 * own packet. Packets may be UTF-8, UTF-16 or UTF-32; what is returned is UTF-8.
 *
 * `findXmpHazards` looks for packets that would make exiftool itself misbehave (it takes
 * quadratic time on deeply nested XMP: 2,000 levels cost it ~7 s) before the file is handed
 * to exiftool; it scans JPEG segments, or the head and tail of other files for packets.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { readGroupedTags, pickTag } from './exiftool.ts';
import { childElements, parseXml, serializeXml, XmlError, type XmlElement } from './xmp-xml.ts';

/** Packets larger than this are neither stored nor merged (a warning says so). */
export const MAX_XMP_PACKET_BYTES = 32 * 1024 * 1024;
/** Deeper XMP is refused: real packets nest about ten levels. */
export const MAX_XMP_DEPTH = 100;
/** How much of the head and the tail of a non-JPEG file `findXmpHazards` scans. */
const SCAN_BYTES = 16 * 1024 * 1024;

const XMP_NS = 'http://ns.adobe.com/xap/1.0/\0';
const EXT_NS = 'http://ns.adobe.com/xmp/extension/\0';
const RDF = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';

export interface XmpPacketResult {
  /** The packet, UTF-8, when the file has one. */
  packet?: Buffer;
  warnings: string[];
}

/** Decodes a packet's bytes (UTF-8, UTF-16 or UTF-32, with or without a byte-order mark). */
export function decodeXmpText(bytes: Uint8Array): string {
  const b = bytes;
  let encoding = 'utf-8';
  if (b[0] === 0 && b[1] === 0 && (b[2] === 0xfe || b[3] === 0x3c)) encoding = 'utf-32be';
  else if (b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) encoding = 'utf-32le';
  else if ((b[0] === 0xfe && b[1] === 0xff) || (b[0] === 0 && b[1] === 0x3c)) encoding = 'utf-16be';
  else if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0x3c && b[1] === 0)) encoding = 'utf-16le';
  if (encoding.startsWith('utf-32')) return decodeUtf32(b, encoding === 'utf-32be');
  return new TextDecoder(encoding).decode(b);
}

function decodeUtf32(b: Uint8Array, bigEndian: boolean): string {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let out = '';
  for (let i = 0; i + 4 <= b.byteLength; i += 4) {
    const cp = view.getUint32(i, !bigEndian);
    if (cp !== 0xfeff && cp <= 0x10ffff) out += String.fromCodePoint(cp);
  }
  return out;
}

interface JpegXmp {
  standard?: Buffer;
  /** Extended packets by GUID: chunks placed at their offsets. */
  extended: Map<string, { size: number; chunks: Array<{ offset: number; data: Buffer }> }>;
}

/** The XMP segments of a JPEG (up to the first SOS); undefined when `data` is not a JPEG. */
export function readJpegXmp(data: Buffer): JpegXmp | undefined {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return undefined;
  const out: JpegXmp = { extended: new Map() };
  let pos = 2;
  while (pos + 4 <= data.length) {
    if (data[pos] !== 0xff) break;
    const marker = data[pos + 1]!;
    if (marker === 0xff) {
      pos++;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      pos += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const length = data.readUInt16BE(pos + 2);
    const start = pos + 4;
    const end = Math.min(pos + 2 + length, data.length);
    if (marker === 0xe1) {
      const segment = data.subarray(start, end);
      if (segment.subarray(0, XMP_NS.length).toString('latin1') === XMP_NS) {
        out.standard ??= segment.subarray(XMP_NS.length);
      } else if (segment.subarray(0, EXT_NS.length).toString('latin1') === EXT_NS && segment.length > EXT_NS.length + 40) {
        const head = EXT_NS.length;
        const guid = segment.subarray(head, head + 32).toString('latin1');
        const size = segment.readUInt32BE(head + 32);
        const offset = segment.readUInt32BE(head + 36);
        const entry = out.extended.get(guid) ?? { size, chunks: [] };
        entry.chunks.push({ offset, data: segment.subarray(head + 40) });
        out.extended.set(guid, entry);
      }
    }
    pos = pos + 2 + length;
  }
  return out;
}

function assembleExtended(entry: { size: number; chunks: Array<{ offset: number; data: Buffer }> }): Buffer | undefined {
  if (entry.size > MAX_XMP_PACKET_BYTES) return undefined;
  const out = Buffer.alloc(entry.size);
  let filled = 0;
  for (const { offset, data } of entry.chunks.sort((a, b) => a.offset - b.offset)) {
    if (offset + data.length > entry.size) return undefined;
    data.copy(out, offset);
    filled += data.length;
  }
  return filled === entry.size ? out : undefined;
}

const rdfOf = (root: XmlElement): XmlElement | undefined =>
  root.name.endsWith('RDF') ? root : childElements(root).find((e) => e.name.endsWith(':RDF'));

/**
 * Joins a standard packet with its extended packet: the extended packet's descriptions move
 * into the standard packet's rdf:RDF, and `xmpNote:HasExtendedXMP` goes (it describes the
 * split, not the picture).
 */
export function joinExtendedXmp(standard: string, extended: string): string {
  const main = parseXml(standard, { maxDepth: MAX_XMP_DEPTH, maxNodes: 2_000_000 });
  const ext = parseXml(extended, { maxDepth: MAX_XMP_DEPTH, maxNodes: 2_000_000 });
  const mainRdf = rdfOf(main);
  const extRdf = rdfOf(ext);
  if (!mainRdf || !extRdf) throw new XmlError('no rdf:RDF element');
  const inherited = [...main.attrs, ...mainRdf.attrs].filter(([n]) => n.startsWith('xmlns')).map(([n]) => n);
  for (const description of childElements(mainRdf)) {
    description.attrs = description.attrs.filter(([n]) => !n.endsWith(':HasExtendedXMP'));
    description.children = description.children.filter((c) => !(c.kind === 'element' && c.name.endsWith(':HasExtendedXMP')));
  }
  const extScope = [...ext.attrs, ...extRdf.attrs].filter(([n]) => n.startsWith('xmlns') && !inherited.includes(n));
  for (const description of childElements(extRdf)) {
    const own = new Set(description.attrs.map(([n]) => n));
    description.attrs.push(...extScope.filter(([n]) => !own.has(n)));
    mainRdf.children.push({ kind: 'text', text: '\n' }, description);
  }
  return wrapPacket(serializeXml(main));
}

/** A complete packet around serialised x:xmpmeta (or rdf:RDF) XML. */
export function wrapPacket(xml: string): string {
  return `<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n${xml}\n<?xpacket end="w"?>`;
}

function jpegPacket(jpeg: JpegXmp, warnings: string[]): Buffer | undefined {
  if (!jpeg.standard) return undefined;
  const standard = decodeXmpText(jpeg.standard);
  const guid = /HasExtendedXMP(?:>|=["'])\s*([0-9A-Fa-f]{32})/.exec(standard)?.[1];
  if (!guid) return Buffer.from(standard, 'utf8');
  const entry = jpeg.extended.get(guid);
  const extended = entry && assembleExtended(entry);
  if (!extended) {
    warnings.push(`extended XMP ${guid} is missing or incomplete: only the standard packet was kept`);
    return Buffer.from(standard, 'utf8');
  }
  try {
    return Buffer.from(joinExtendedXmp(standard, decodeXmpText(extended)), 'utf8');
  } catch (error) {
    warnings.push(`extended XMP could not be joined (${(error as Error).message}): only the standard packet was kept`);
    return Buffer.from(standard, 'utf8');
  }
}

async function readHead(path: string, bytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Takes the XMP packet out of a file (see the module comment). Problems are warnings. */
export async function extractXmpPacket(path: string): Promise<XmpPacketResult> {
  const warnings: string[] = [];
  try {
    const size = (await stat(path)).size;
    const head = await readHead(path, Math.min(size, SCAN_BYTES));
    const jpeg = readJpegXmp(head);
    let packet: Buffer | undefined;
    if (jpeg) {
      packet = jpegPacket(jpeg, warnings);
    } else if (/^\s*(<\?xpacket|<x:xmpmeta|<rdf:RDF)/.test(head.subarray(0, 512).toString('utf8').replace(/^\ufeff/, ''))) {
      if (size > MAX_XMP_PACKET_BYTES) {
        warnings.push(`XMP packet of ${size} bytes is larger than ${MAX_XMP_PACKET_BYTES}: not stored`);
        return { warnings };
      }
      packet = Buffer.from(decodeXmpText(await readFile(path)), 'utf8');
    } else {
      const read = await readGroupedTags(path, ['-XMP:XMP']);
      warnings.push(...read.errors);
      const value = pickTag(read.tags, 'XMP:XMP');
      if (typeof value === 'string') {
        packet = value.startsWith('base64:')
          ? Buffer.from(decodeXmpText(Buffer.from(value.slice(7), 'base64')), 'utf8')
          : Buffer.from(value, 'utf8');
      }
    }
    if (packet && packet.length > MAX_XMP_PACKET_BYTES) {
      warnings.push(`XMP packet of ${packet.length} bytes is larger than ${MAX_XMP_PACKET_BYTES}: not stored`);
      return { warnings };
    }
    return packet?.length ? { packet, warnings } : { warnings };
  } catch (error) {
    warnings.push(`XMP packet could not be read: ${(error as Error).message}`);
    return { warnings };
  }
}

/**
 * Checks a packet: undefined when it is well-formed XMP within the limits, else the reason.
 * DOCTYPE/entity declarations, bad nesting and broken markup are all reasons.
 */
export function checkXmpPacket(text: string): string | undefined {
  try {
    const root = parseXml(text, { maxDepth: MAX_XMP_DEPTH, maxNodes: 2_000_000 });
    if (!rdfOf(root)) return 'the packet has no rdf:RDF element';
    const rdf = rdfOf(root)!;
    const rdfPrefix = rdf.name.includes(':') ? rdf.name.slice(0, rdf.name.indexOf(':')) : '';
    const bound = [...root.attrs, ...rdf.attrs].find(([n]) => n === `xmlns:${rdfPrefix}`)?.[1];
    if (rdfPrefix && bound !== undefined && bound !== RDF) return 'rdf:RDF is bound to the wrong namespace';
    return undefined;
  } catch (error) {
    return error instanceof XmlError ? error.message : String(error);
  }
}

/**
 * Problems that make it unsafe to give the file to exiftool at all (today: XMP nested deeper
 * than `MAX_XMP_DEPTH`, which exiftool takes quadratic time over), and whether the file is a
 * JPEG (read.ts reads JPEG with `-fast2`).
 */
export async function findXmpHazards(path: string): Promise<{ hazards: string[]; jpeg: boolean }> {
  const size = (await stat(path)).size;
  const head = await readHead(path, Math.min(size, SCAN_BYTES));
  const jpeg = readJpegXmp(head);
  const texts: string[] = [];
  if (jpeg) {
    if (jpeg.standard) texts.push(decodeXmpText(jpeg.standard));
    for (const entry of jpeg.extended.values()) {
      const ext = assembleExtended(entry);
      if (ext) texts.push(decodeXmpText(ext));
    }
  } else {
    const regions = [head];
    if (size > SCAN_BYTES) {
      const handle = await open(path, 'r');
      try {
        const tail = Buffer.alloc(Math.min(SCAN_BYTES, size - SCAN_BYTES));
        await handle.read(tail, 0, tail.length, size - tail.length);
        regions.push(tail);
      } finally {
        await handle.close();
      }
    }
    for (const region of regions) texts.push(...packetsIn(region));
  }
  const hazards: string[] = [];
  for (const text of texts) {
    const depth = nestingDepth(text);
    if (depth > MAX_XMP_DEPTH) hazards.push(`XMP nests ${depth} levels deep (at most ${MAX_XMP_DEPTH} are read)`);
  }
  return { hazards, jpeg: jpeg !== undefined };
}

/** UTF-8 packets found by scanning bytes (the XMP specification's packet scanning). */
function packetsIn(region: Buffer): string[] {
  const out: string[] = [];
  let from = 0;
  for (;;) {
    const start = region.indexOf('<x:xmpmeta', from, 'latin1');
    if (start === -1) break;
    const endTag = region.indexOf('</x:xmpmeta>', start, 'latin1');
    const end = endTag === -1 ? region.length : endTag + 12;
    out.push(region.subarray(start, end).toString('utf8'));
    from = end;
  }
  return out;
}

/** Deepest element nesting of XML text, counted without parsing it. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  const tag = /<(\/?)([!?]?)[^>]*?(\/?)>/g;
  for (let m = tag.exec(text); m; m = tag.exec(text)) {
    if (m[2]) continue;
    if (m[1]) depth--;
    else if (!m[3]) max = Math.max(max, ++depth);
  }
  return max;
}
