/**
 * Helpers for the metadata tests: the ExifTool corpus in test/fixtures/exiftool, scratch
 * copies in a temp folder, small JPEGs made with sharp, and exiftool run directly.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { runExiftool } from '../../companion/metadata/exiftool.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/exiftool/', import.meta.url));

export const fixture = (name: string) => join(FIXTURES, name);

export async function corpusFiles(): Promise<string[]> {
  return (await readdir(FIXTURES)).sort();
}

/** A scratch folder with `copy(name)` for fixtures and `path(name)` for new files. */
export async function scratch(prefix = 'imagine-metadata-') {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  let n = 0;
  return {
    dir,
    path: (name: string) => join(dir, `${n++}-${name}`),
    async copy(name: string): Promise<string> {
      const target = join(dir, `${n++}-${name}`);
      await copyFile(fixture(name), target);
      return target;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** A small JPEG (no metadata) at `path`. */
export async function makeJpeg(path: string, size = 64): Promise<string> {
  await sharp({ create: { width: size, height: size, channels: 3, background: { r: 120, g: 140, b: 160 } } })
    .jpeg({ quality: 80 })
    .toFile(path);
  return path;
}

/** Runs exiftool (tests only: arguments as given, `-overwrite_original` added for writes). */
export async function exiftool(...args: string[]): Promise<string> {
  const out = await runExiftool(args);
  if (out.errors.length) throw new Error(out.errors.join('; '));
  return out.stdout;
}

/** Writes an XMP packet into a file as a block. */
export async function writeXmpBlock(path: string, packet: string): Promise<void> {
  const file = `${path}.packet.xmp`;
  await writeFile(file, packet);
  try {
    await exiftool('-overwrite_original', `-XMP<=${file}`, path);
  } finally {
    await rm(file, { force: true });
  }
}

/** A complete XMP packet around rdf:Description content (namespaces declared on the description). */
export function xmpPacket(body: string, namespaces: Record<string, string> = {}): string {
  const ns = Object.entries({
    dc: 'http://purl.org/dc/elements/1.1/',
    xmpMM: 'http://ns.adobe.com/xap/1.0/mm/',
    stEvt: 'http://ns.adobe.com/xap/1.0/sType/ResourceEvent#',
    photoshop: 'http://ns.adobe.com/photoshop/1.0/',
    ...namespaces,
  })
    .map(([p, uri]) => ` xmlns:${p}="${uri}"`)
    .join('');
  return `<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about=""${ns}>
${body}
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>`;
}
