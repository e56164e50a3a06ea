/**
 * Renders the panel's icons from the SVGs in plugin/icons/ with sharp. The PNGs are committed,
 * so building and packaging need no image tooling; run this only after changing an SVG:
 *
 *     node --import tsx plugin/build/icons.ts
 *
 * Sizes follow Adobe's rules: panel icons 23x23, the plugin-list icon 24x24, each at @1x and
 * @2x (`name@1x.png`, `name@2x.png`; the manifest names the path without the suffix). Panel
 * icons come in a light glyph for dark themes and a dark glyph for light themes.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import sharp from 'sharp';

export const ICONS_DIR = fileURLToPath(new URL('../icons/', import.meta.url));

export interface IconSpec {
  /** Output name without scale suffix and extension (`panel-dark` → `panel-dark@1x.png`). */
  name: string;
  source: 'glyph.svg' | 'plugin.svg';
  /** Replaces `currentColor` in the source. */
  color?: string;
  size: number;
}

export const ICON_SPECS: readonly IconSpec[] = Object.freeze([
  { name: 'panel-dark', source: 'glyph.svg', color: '#D6D6D6', size: 23 }, // for darkest/dark/medium
  { name: 'panel-light', source: 'glyph.svg', color: '#4A4A4A', size: 23 }, // for lightest/light
  { name: 'plugin', source: 'plugin.svg', size: 24 },
]);

export const ICON_SCALES = [1, 2] as const;

/** Renders one icon at one scale to PNG bytes (RGBA, exactly size*scale pixels square). */
export async function renderIcon(spec: IconSpec, scale: number, dir = ICONS_DIR): Promise<Buffer> {
  let svg = await readFile(join(dir, spec.source), 'utf8');
  if (spec.color) svg = svg.replaceAll('currentColor', spec.color);
  const pixels = spec.size * scale;
  // Rasterise large, then downsample: crisper edges at 23 px than rendering at 72 dpi.
  return sharp(Buffer.from(svg), { density: 72 * 16 })
    .resize(pixels, pixels, { fit: 'contain', background: { r: 0, g: 0, b: 0, alpha: 0 } })
    .ensureAlpha()
    .png({ compressionLevel: 9 })
    .toBuffer();
}

export async function renderIcons(dir = ICONS_DIR): Promise<string[]> {
  const written: string[] = [];
  for (const spec of ICON_SPECS) {
    for (const scale of ICON_SCALES) {
      const file = join(dir, `${spec.name}@${scale}x.png`);
      await writeFile(file, await renderIcon(spec, scale, dir));
      written.push(file);
    }
  }
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const file of await renderIcons()) console.log(file);
}
