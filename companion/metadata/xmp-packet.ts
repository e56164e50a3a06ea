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
 *
 * A JPEG is read only up to its image data (the first SOS marker: its metadata segments, often
 * a few KiB), other files in 1 MiB pieces. `scanXmp` does that reading once, so the two callers
 * of one new file (library.ts: the metadata read and the packet extraction) share it.
 */
import { open, readFile } from 'node:fs/promises';
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
    const step = jpegStep(data, pos);
    if (!step) break;
    if (step.marker === 0xe1) {
      const segment = data.subarray(pos + 4, Math.min(step.next, data.length));
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
    pos = step.next;
  }
  return out;
}

/**
 * One step of a walk through a JPEG's markers, at `pos` (4 bytes there): where the next marker
 * starts, and the marker of the segment at `pos` when there is one (fill bytes, SOI, RST and TEM
 * have none). Undefined at the image data (SOS), the end (EOI) or anything that is not a marker.
 */
function jpegStep(data: Buffer, pos: number): { next: number; marker?: number } | undefined {
  if (data[pos] !== 0xff) return undefined;
  const marker = data[pos + 1]!;
  if (marker === 0xff) return { next: pos + 1 };
  if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) return { next: pos + 2 };
  if (marker === 0xda || marker === 0xd9) return undefined;
  return { next: pos + 2 + data.readUInt16BE(pos + 2), marker };
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

/** What `scanXmp` read of a file: enough to find its XMP, shared by the functions below. */
export interface XmpScan {
  size: number;
  /** The XMP segments of a JPEG (its segments up to the image data); undefined for other files. */
  jpeg?: JpegXmp;
  /** The first bytes of the file (at most 512), to recognise an XMP sidecar. */
  start: Buffer;
}

/** Reads of a JPEG's segments start with this much and grow as its segments need. */
const JPEG_FIRST_READ = 64 * 1024;
/** Piece size of the packet scan of other files. */
const SCAN_CHUNK = 1024 * 1024;

type Handle = Awaited<ReturnType<typeof open>>;

/**
 * The bytes of a JPEG up to its first SOS (or EOI, or SCAN_BYTES, whichever comes first), read
 * as its segment lengths ask; undefined when the file is not a JPEG.
 */
async function readJpegSegments(handle: Handle, size: number): Promise<Buffer | undefined> {
  const limit = Math.min(size, SCAN_BYTES);
  let buffer = Buffer.allocUnsafe(Math.min(limit, JPEG_FIRST_READ));
  let have = 0;
  const ensure = async (wanted: number): Promise<void> => {
    const target = Math.min(wanted, limit);
    if (target <= have) return;
    if (target > buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.min(limit, Math.max(target, buffer.length * 2)));
      buffer.copy(bigger, 0, 0, have);
      buffer = bigger;
    }
    while (have < target) {
      const { bytesRead } = await handle.read(buffer, have, buffer.length - have, have);
      if (bytesRead === 0) break;
      have += bytesRead;
    }
  };
  await ensure(4);
  if (have < 4 || buffer[0] !== 0xff || buffer[1] !== 0xd8) return undefined;
  let pos = 2;
  while (pos < limit) {
    await ensure(pos + 4);
    if (pos + 4 > have) break;
    const step = jpegStep(buffer, pos);
    if (!step) break;
    pos = step.next;
    if (step.marker !== undefined) await ensure(pos);
  }
  return buffer.subarray(0, have);
}

/**
 * Reads what finding a file's XMP needs (see the module comment): a JPEG's segments up to its
 * image data, else the first bytes. Rejects when the file cannot be read.
 */
export async function scanXmp(path: string): Promise<XmpScan> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const segments = await readJpegSegments(handle, size);
    if (segments) return { size, jpeg: readJpegXmp(segments), start: Buffer.from(segments.subarray(0, 512)) };
    const start = Buffer.alloc(Math.min(size, 512));
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    return { size, start: start.subarray(0, bytesRead) };
  } finally {
    await handle.close();
  }
}

const PACKET_OPEN = Buffer.from('<x:xmpmeta', 'latin1');
const PACKET_CLOSE = Buffer.from('</x:xmpmeta>', 'latin1');

/**
 * UTF-8 packets in bytes `from`..`to` of a file (the XMP specification's packet scanning), read
 * in SCAN_CHUNK pieces: a packet runs from `<x:xmpmeta` to `</x:xmpmeta>`, or to `to` when it
 * does not end there. Only the piece being read and a packet being collected are in memory.
 */
async function packetsInRange(handle: Handle, from: number, to: number): Promise<string[]> {
  const out: string[] = [];
  let packet: Buffer[] | undefined;
  let carried = Buffer.alloc(0);
  // One buffer for every piece (a new one per MiB left up to 32 MiB for the garbage collector
  // while a 1 GiB upload was prepared); what must outlive a piece is copied out of it.
  const piece = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, to - from));
  for (let at = from; at < to; ) {
    const { bytesRead } = await handle.read(piece, 0, Math.min(piece.length, to - at), at);
    if (bytesRead === 0) break;
    at += bytesRead;
    const data = carried.length ? Buffer.concat([carried, piece.subarray(0, bytesRead)]) : piece.subarray(0, bytesRead);
    carried = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      if (packet) {
        const close = data.indexOf(PACKET_CLOSE, pos);
        if (close === -1) {
          // Keep the last bytes back: an end tag may start in them.
          const cut = Math.max(pos, data.length - (PACKET_CLOSE.length - 1));
          packet.push(Buffer.from(data.subarray(pos, cut)));
          carried = Buffer.from(data.subarray(cut));
          break;
        }
        packet.push(data.subarray(pos, close + PACKET_CLOSE.length));
        out.push(Buffer.concat(packet).toString('utf8'));
        packet = undefined;
        pos = close + PACKET_CLOSE.length;
      } else {
        const openAt = data.indexOf(PACKET_OPEN, pos);
        if (openAt === -1) {
          carried = Buffer.from(data.subarray(Math.max(pos, data.length - (PACKET_OPEN.length - 1))));
          break;
        }
        packet = [];
        pos = openAt;
      }
    }
  }
  if (packet) {
    packet.push(carried);
    out.push(Buffer.concat(packet).toString('utf8'));
  }
  return out;
}

/**
 * Takes the XMP packet out of a file (see the module comment). Problems are warnings. `scan`:
 * the file's `scanXmp`, when the caller has it already.
 */
export async function extractXmpPacket(path: string, options: { scan?: Promise<XmpScan> } = {}): Promise<XmpPacketResult> {
  const warnings: string[] = [];
  try {
    const { size, jpeg, start } = await (options.scan ?? scanXmp(path));
    let packet: Buffer | undefined;
    if (jpeg) {
      packet = jpegPacket(jpeg, warnings);
    } else if (/^\s*(<\?xpacket|<x:xmpmeta|<rdf:RDF)/.test(start.toString('utf8').replace(/^\ufeff/, ''))) {
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
 * JPEG (read.ts reads JPEG with `-fast2`). A JPEG's segments are checked; other files are
 * scanned for packets in their first and last SCAN_BYTES. `scan`: the file's `scanXmp`, when
 * the caller has it already.
 */
export async function findXmpHazards(path: string, scan?: Promise<XmpScan>): Promise<{ hazards: string[]; jpeg: boolean }> {
  const { size, jpeg } = await (scan ?? scanXmp(path));
  const texts: string[] = [];
  if (jpeg) {
    if (jpeg.standard) texts.push(decodeXmpText(jpeg.standard));
    for (const entry of jpeg.extended.values()) {
      const ext = assembleExtended(entry);
      if (ext) texts.push(decodeXmpText(ext));
    }
  } else {
    const handle = await open(path, 'r');
    try {
      texts.push(...(await packetsInRange(handle, 0, Math.min(size, SCAN_BYTES))));
      if (size > SCAN_BYTES) texts.push(...(await packetsInRange(handle, size - Math.min(SCAN_BYTES, size - SCAN_BYTES), size)));
    } finally {
      await handle.close();
    }
  }
  const hazards: string[] = [];
  for (const text of texts) {
    const depth = nestingDepth(text);
    if (depth > MAX_XMP_DEPTH) hazards.push(`XMP nests ${depth} levels deep (at most ${MAX_XMP_DEPTH} are read)`);
  }
  return { hazards, jpeg: jpeg !== undefined };
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
