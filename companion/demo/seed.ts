/**
 * Writes the demo pictures into a folder, with real embedded XMP (and IPTC IIM in JPEG and
 * TIFF), the way a studio's files arrive. The folder appears whole or not at all: pictures are
 * made in a temporary sibling folder that is renamed into place at the end.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { WriteTags } from 'exiftool-vendored';
import { getExiftool } from '../metadata/exiftool.ts';
import { demoImages, type DemoImage } from './catalog.ts';
import { renderSceneSvg } from './scenes.ts';

export interface SeededImage {
  path: string;
  collection: string;
}

const MANIFEST = 'demo.json';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function renderImage(image: DemoImage, path: string, seed: number): Promise<void> {
  const svg = renderSceneSvg({ ...image, seed });
  const pipeline = sharp(Buffer.from(svg), { density: 72 }).flatten({ background: image.palette[0] });
  const ext = image.file.split('.').pop();
  const out =
    ext === 'png'
      ? pipeline.png({ compressionLevel: 6 })
      : ext === 'webp'
        ? pipeline.webp({ quality: 86 })
        : ext === 'tif'
          ? pipeline.tiff({ compression: 'jpeg', quality: 88 })
          : pipeline.jpeg({ quality: 88, mozjpeg: true });
  await out.withIccProfile('srgb').toFile(path);
}

function metadataTags(image: DemoImage): WriteTags {
  const { meta } = image;
  const year = 2026;
  const copyright = `© ${year} ${meta.creator}`;
  const usageTerms = meta.usageTerms ?? 'Licensed for use in Imagine demo layouts. Credit the creator.';
  const tags: Record<string, unknown> = {
    'XMP-dc:Creator': [meta.creator],
    'XMP-dc:Title': meta.title,
    'XMP-dc:Description': meta.description,
    'XMP-dc:Subject': meta.keywords,
    'XMP-dc:Rights': copyright,
    'XMP-xmpRights:Marked': true,
    'XMP-xmpRights:UsageTerms': usageTerms,
    'XMP-photoshop:Credit': `Imagine demo / ${meta.creator}`,
    'XMP-photoshop:Source': 'Imagine demo library',
    'XMP-photoshop:City': meta.city,
    'XMP-photoshop:Country': meta.country,
    'XMP-iptcCore:CountryCode': meta.countryCode,
    'XMP-photoshop:DateCreated': `${year}-0${1 + (meta.title.length % 9)}-1${meta.title.length % 9}`,
    'XMP-iptcExt:DigitalSourceType': 'http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia',
  };
  if (meta.licenseEndDate) tags['XMP-plus:LicenseEndDate'] = meta.licenseEndDate;
  if (/\.(jpg|tif)$/.test(image.file)) {
    Object.assign(tags, {
      'IPTC:By-line': meta.creator,
      'IPTC:ObjectName': meta.title,
      'IPTC:Caption-Abstract': meta.description,
      'IPTC:Keywords': meta.keywords,
      'IPTC:CopyrightNotice': copyright,
      'IPTC:Credit': `Imagine demo / ${meta.creator}`.slice(0, 32),
      'IPTC:City': meta.city,
      'IPTC:Country-PrimaryLocationName': meta.country,
      'IPTC:CodedCharacterSet': 'UTF8',
    });
  }
  return tags as WriteTags;
}

/**
 * Makes the demo pictures in `dir` unless they are already there; returns each picture with
 * the collection it belongs to.
 */
export async function seedDemoImages(dir: string): Promise<SeededImage[]> {
  const list = demoImages.map((image) => ({ path: join(dir, image.file), collection: image.collection }));
  if (await exists(join(dir, MANIFEST))) return list;

  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const exiftool = getExiftool();
  // Render two at a time: SVG rasterising is CPU-bound and the machine may be small.
  const queue = demoImages.map((image, index) => ({ image, index }));
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const path = join(tmp, next.image.file);
      await renderImage(next.image, path, 1000 + next.index);
      await exiftool.write(path, metadataTags(next.image));
    }
  };
  await Promise.all([worker(), worker()]);
  await writeFile(
    join(tmp, MANIFEST),
    JSON.stringify(demoImages.map(({ file, collection }) => ({ file, collection })), null, 2),
  );
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return list;
}
