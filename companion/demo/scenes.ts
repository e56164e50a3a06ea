/**
 * Procedural scenes for the demo library: each is an SVG drawn from a small seeded random
 * generator, so every run produces the same pictures without shipping image files.
 */
import { seededRandom } from '../../shared/seeded-random.ts';

export type SceneKind = 'dunes' | 'mountains' | 'skyline' | 'tiles' | 'waves' | 'orbits' | 'forest' | 'stripes';

export interface SceneOptions {
  kind: SceneKind;
  width: number;
  height: number;
  palette: readonly [string, string, string, string];
  seed: number;
}


function ridge(rand: () => number, w: number, h: number, base: number, rough: number, steps: number): string {
  const points: string[] = [`0,${h}`];
  let y = base;
  for (let i = 0; i <= steps; i++) {
    y = Math.min(h, Math.max(h * 0.1, y + (rand() - 0.5) * rough));
    points.push(`${((i / steps) * w).toFixed(1)},${y.toFixed(1)}`);
  }
  points.push(`${w},${h}`);
  return points.join(' ');
}

function sky(id: string, top: string, bottom: string): string {
  return `<linearGradient id="${id}" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${top}"/><stop offset="1" stop-color="${bottom}"/></linearGradient>`;
}

export function renderSceneSvg({ kind, width: w, height: h, palette: [a, b, c, d], seed }: SceneOptions): string {
  const rand = seededRandom(seed);
  const defs: string[] = [sky('sky', a, b)];
  const body: string[] = [`<rect width="${w}" height="${h}" fill="url(#sky)"/>`];

  switch (kind) {
    case 'dunes':
      body.push(`<circle cx="${w * (0.2 + rand() * 0.6)}" cy="${h * 0.35}" r="${Math.min(w, h) * 0.09}" fill="${d}" opacity="0.9"/>`);
      for (let i = 0; i < 4; i++) {
        body.push(`<polygon points="${ridge(rand, w, h, h * (0.55 + i * 0.1), h * 0.06, 12)}" fill="${i % 2 ? c : d}" opacity="${0.55 + i * 0.12}"/>`);
      }
      break;
    case 'mountains':
      for (let i = 0; i < 5; i++) {
        body.push(`<polygon points="${ridge(rand, w, h, h * (0.35 + i * 0.12), h * 0.25, 9 + i * 3)}" fill="${[c, d, b, c, d][i]}" opacity="${0.35 + i * 0.15}"/>`);
      }
      break;
    case 'skyline': {
      let x = 0;
      while (x < w) {
        const bw = w * (0.03 + rand() * 0.07);
        const bh = h * (0.2 + rand() * 0.55);
        body.push(`<rect x="${x.toFixed(1)}" y="${(h - bh).toFixed(1)}" width="${bw.toFixed(1)}" height="${bh.toFixed(1)}" fill="${rand() > 0.5 ? c : '#10131c'}"/>`);
        for (let wy = h - bh + 8; wy < h - 8; wy += 14) {
          for (let wx = x + 4; wx < x + bw - 6; wx += 10) {
            if (rand() > 0.6) body.push(`<rect x="${wx.toFixed(1)}" y="${wy.toFixed(1)}" width="4" height="6" fill="${d}"/>`);
          }
        }
        x += bw + 2;
      }
      break;
    }
    case 'tiles': {
      const size = Math.max(w, h) / (6 + Math.floor(rand() * 6));
      for (let y = 0; y < h; y += size) {
        for (let x = 0; x < w; x += size) {
          const fill = [a, b, c, d][Math.floor(rand() * 4)];
          const r = rand();
          body.push(
            r < 0.33
              ? `<rect x="${x}" y="${y}" width="${size}" height="${size}" fill="${fill}"/>`
              : r < 0.66
                ? `<circle cx="${x + size / 2}" cy="${y + size / 2}" r="${size * 0.45}" fill="${fill}"/>`
                : `<polygon points="${x},${y + size} ${x + size / 2},${y} ${x + size},${y + size}" fill="${fill}"/>`,
          );
        }
      }
      break;
    }
    case 'waves':
      for (let i = 0; i < 9; i++) {
        const y0 = h * (0.3 + i * 0.08);
        const amp = h * (0.02 + rand() * 0.04);
        const len = w / (2 + rand() * 3);
        let dPath = `M0,${y0}`;
        for (let x = 0; x <= w + len; x += len) dPath += ` q${len / 4},${-amp} ${len / 2},0 t${len / 2},0`;
        body.push(`<path d="${dPath} V${h} H0 Z" fill="${i % 2 ? c : d}" opacity="0.35"/>`);
      }
      break;
    case 'orbits':
      for (let i = 0; i < 14; i++) {
        body.push(`<circle cx="${w / 2}" cy="${h / 2}" r="${(Math.min(w, h) / 2) * (0.1 + i * 0.065)}" fill="none" stroke="${i % 2 ? c : d}" stroke-width="${2 + rand() * 10}" opacity="0.8"/>`);
        const angle = rand() * Math.PI * 2;
        const r = (Math.min(w, h) / 2) * (0.1 + i * 0.065);
        body.push(`<circle cx="${w / 2 + Math.cos(angle) * r}" cy="${h / 2 + Math.sin(angle) * r}" r="${4 + rand() * 12}" fill="${b}"/>`);
      }
      break;
    case 'forest':
      for (let i = 0; i < 60; i++) {
        const x = rand() * w;
        const base = h * (0.6 + rand() * 0.4);
        const th = h * (0.15 + rand() * 0.3);
        body.push(`<polygon points="${x - th * 0.25},${base} ${x},${base - th} ${x + th * 0.25},${base}" fill="${rand() > 0.5 ? c : d}" opacity="${0.6 + rand() * 0.4}"/>`);
      }
      break;
    case 'stripes':
      defs.push(`<linearGradient id="band" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${c}"/><stop offset="1" stop-color="${d}"/></linearGradient>`);
      for (let i = 0; i < 18; i++) {
        const x = (i / 18) * w * 1.4 - w * 0.2;
        body.push(`<rect x="${x}" y="${-h * 0.2}" width="${w / 40 + rand() * (w / 25)}" height="${h * 1.4}" fill="url(#band)" transform="rotate(${15 + rand() * 10} ${w / 2} ${h / 2})" opacity="0.8"/>`);
      }
      break;
  }

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><defs>${defs.join('')}</defs>${body.join('')}</svg>`;
}
