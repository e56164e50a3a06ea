/**
 * What the demo library holds: 26 pictures of different sizes, orientations and formats, each
 * with the metadata a studio's images carry (creator, title, description, keywords,
 * copyright, usage terms, place, credit, and for some a licence end date or a
 * do-not-distribute notice, so rights warnings can be seen).
 */
import type { SceneKind } from './scenes.ts';

export interface DemoImage {
  file: string;
  kind: SceneKind;
  width: number;
  height: number;
  palette: readonly [string, string, string, string];
  collection: string;
  meta: {
    title: string;
    description: string;
    keywords: string[];
    creator: string;
    city?: string;
    country?: string;
    countryCode?: string;
    licenseEndDate?: string;
    usageTerms?: string;
  };
}

const PALETTES = {
  dusk: ['#1d2b53', '#ff8a5b', '#7e2553', '#ffcf70'],
  alpine: ['#9fd3ff', '#e8f4ff', '#35506b', '#20344a'],
  night: ['#05060d', '#1a1f3a', '#2b3358', '#ffd76a'],
  mint: ['#e9fff5', '#b8f2dc', '#2a9d8f', '#264653'],
  ocean: ['#74c0fc', '#d0ebff', '#1864ab', '#0b7285'],
  ember: ['#2b0f0e', '#9c2c1f', '#f76707', '#ffd43b'],
  moss: ['#dfe7c8', '#a7c48a', '#3b6b35', '#1e3d1b'],
  candy: ['#ffdeeb', '#fcc2d7', '#845ef7', '#f06595'],
} as const;

const CREATORS = ['Ada Moreau', 'Kenji Sato', 'Lena Fischer', 'Tomás Rivera', 'Priya Nair'];
const PLACES: Array<[string, string, string]> = [
  ['Marseille', 'France', 'FRA'],
  ['Kyoto', 'Japan', 'JPN'],
  ['Hamburg', 'Germany', 'DEU'],
  ['Valparaíso', 'Chile', 'CHL'],
  ['Kochi', 'India', 'IND'],
];

const COLLECTION_OF_KIND: Record<SceneKind, string> = {
  dunes: 'Landscapes',
  mountains: 'Landscapes',
  waves: 'Landscapes',
  forest: 'Landscapes',
  skyline: 'Cities',
  tiles: 'Patterns',
  stripes: 'Patterns',
  orbits: 'Patterns',
};

type Shape = [SceneKind, keyof typeof PALETTES, number, number, string, string, string[]];

/** kind, palette, width, height, extension, title, keywords */
const SHAPES: Shape[] = [
  ['dunes', 'dusk', 1800, 1200, 'jpg', 'Dunes at dusk', ['desert', 'sunset', 'landscape']],
  ['mountains', 'alpine', 1600, 1067, 'jpg', 'Alpine ridges', ['mountains', 'snow', 'landscape']],
  ['skyline', 'night', 2000, 1000, 'jpg', 'City lights', ['city', 'night', 'architecture']],
  ['tiles', 'mint', 1200, 1200, 'png', 'Mint tiles', ['pattern', 'geometric', 'texture']],
  ['waves', 'ocean', 1500, 1000, 'jpg', 'Open water', ['sea', 'waves', 'blue']],
  ['orbits', 'ember', 1000, 1000, 'jpg', 'Ember orbits', ['abstract', 'circles', 'orange']],
  ['forest', 'moss', 1000, 1500, 'jpg', 'Pine forest', ['forest', 'trees', 'nature']],
  ['stripes', 'candy', 1080, 1350, 'webp', 'Candy stripes', ['pattern', 'pink', 'stripes']],
  ['mountains', 'dusk', 2400, 800, 'jpg', 'Panorama at sundown', ['mountains', 'panorama', 'sunset']],
  ['skyline', 'dusk', 1200, 1600, 'jpg', 'Tower at dusk', ['city', 'architecture', 'portrait']],
  ['dunes', 'ember', 1600, 900, 'tif', 'Red sand', ['desert', 'red', 'landscape']],
  ['tiles', 'candy', 800, 800, 'png', 'Sweet grid', ['pattern', 'square', 'colour']],
  ['waves', 'mint', 900, 1200, 'jpg', 'Shallow lagoon', ['sea', 'green', 'calm']],
  ['orbits', 'night', 1400, 1400, 'jpg', 'Night orbits', ['abstract', 'space', 'night']],
  ['forest', 'alpine', 1920, 1080, 'jpg', 'Winter woods', ['forest', 'winter', 'snow']],
  ['stripes', 'ocean', 1600, 1000, 'jpg', 'Blue rhythm', ['abstract', 'blue', 'stripes']],
  ['mountains', 'moss', 1280, 1920, 'jpg', 'Green valley', ['mountains', 'valley', 'portrait']],
  ['skyline', 'ocean', 1920, 1280, 'webp', 'Harbour town', ['city', 'harbour', 'day']],
  ['dunes', 'mint', 1000, 700, 'jpg', 'Pale dunes', ['desert', 'minimal', 'calm']],
  ['tiles', 'ember', 1500, 1000, 'jpg', 'Terracotta', ['pattern', 'warm', 'texture']],
  ['waves', 'night', 1600, 1200, 'jpg', 'Night tide', ['sea', 'night', 'moody']],
  ['orbits', 'candy', 1200, 900, 'png', 'Pop circles', ['abstract', 'pink', 'circles']],
  ['forest', 'dusk', 2200, 1100, 'jpg', 'Evening pines', ['forest', 'sunset', 'panorama']],
  ['stripes', 'moss', 900, 1600, 'jpg', 'Garden stripes', ['pattern', 'green', 'portrait']],
  ['mountains', 'night', 1600, 1066, 'tif', 'Moonlit peaks', ['mountains', 'night', 'moon']],
  ['skyline', 'mint', 640, 480, 'jpg', 'Small town', ['city', 'small', 'day']],
];

function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export const demoImages: readonly DemoImage[] = SHAPES.map(
  ([kind, palette, width, height, ext, title, keywords], i) => {
    const [city, country, countryCode] = PLACES[i % PLACES.length]!;
    const orientation = width > height ? 'landscape' : width < height ? 'portrait' : 'square';
    const meta: DemoImage['meta'] = {
      title,
      description: `${title}: a ${orientation} ${kind} study in the ${palette} palette, made for the Imagine demo library.`,
      keywords: [...new Set([...keywords, orientation, 'demo'])],
      creator: CREATORS[i % CREATORS.length]!,
      city,
      country,
      countryCode,
    };
    if (i === 4) meta.licenseEndDate = '2024-12-31';
    if (i === 9) meta.usageTerms = 'Do not distribute. Internal layout use only.';
    return {
      file: `${String(i + 1).padStart(2, '0')}-${slug(title)}.${ext}`,
      kind,
      width,
      height,
      palette: PALETTES[palette],
      collection: COLLECTION_OF_KIND[kind],
      meta,
    };
  },
);
