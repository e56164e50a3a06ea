/**
 * Deterministic synthetic assets for benchmarks: a seeded generator over word lists, so every
 * run measures the same library.
 */
import type { AssetRecord } from '../../companion/library/records.ts';
import { seededRandom } from '../../shared/seeded-random.ts';

// ---------------------------------------------------------------------------------------------
// Deterministic data

/** The benchmarks' name for shared/seeded-random.ts. */
export { seededRandom as mulberry32 };

const words = (text: string): string[] => text.trim().split(/\s+/);

export const ADJECTIVES = words(`quiet golden misty early late old new bright dark wet frozen crowded empty distant
  narrow wide rusty painted broken hidden sunlit stormy calm red blue green white black amber silver
  wild urban rural coastal northern southern ancient modern fading blooming winding steep`);
export const SUBJECTS = words(`harbour lighthouse market bridge alley cathedral mountain lake forest meadow river
  beach dune canyon glacier volcano waterfall vineyard orchard village skyline station tram ferry
  boat fisherman baker cyclist dancer musician portrait crowd festival kitchen workshop library
  garden rooftop staircase window doorway street square fountain tower castle temple mosque
  factory warehouse farm barn horse dog cat heron gull owl fox deer bee butterfly tulip olive`);
export const SETTINGS = words(`dawn dusk night noon winter summer autumn spring rain fog snow storm sunset sunrise
  twilight midnight morning evening`);
export const PLACES = words(`Marseille Kyoto Hamburg Valparaiso Kochi Lisbon Oslo Napoli Porto Seville Tbilisi
  Hanoi Montreal Reykjavik Dakar Lima Cusco Krakow Tallinn Bergen Galway Trieste Palermo Sapporo`);
export const EXTRA_KEYWORDS = words(`travel architecture nature people food culture transport water light shadow
  texture pattern reflection silhouette colour monochrome aerial macro panorama documentary
  editorial lifestyle heritage industry agriculture wildlife flora weather sky clouds sea`);
export const FIRST = words(`Ada Kenji Lena Tomas Priya Omar Ines Sven Mei Lucas Amara Noah Yara Pablo Elif Jonas
  Aiko Mateo Zara Felix Nadia Hugo Leila Tariq Maren Diego Sofia Ravi Ingrid Kofi`);
export const LAST = words(`Moreau Sato Fischer Rivera Nair Haddad Costa Lindqvist Chen Martin Okafor Berg Aziz
  Romero Yilmaz Weber Tanaka Silva Khan Novak Dubois Ito Hansen Mensah Kowalski`);
const FORMATS: Array<[string, string, number]> = [
  ['image/jpeg', 'jpg', 0.7],
  ['image/png', 'png', 0.12],
  ['image/tiff', 'tif', 0.1],
  ['image/webp', 'webp', 0.08],
];
export const COLLECTIONS = Array.from({ length: 60 }, (_, i) => `col${String(i).padStart(2, '0')}`);

export function generateAssets(count: number, seed = 42): AssetRecord[] {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  // Zipf-like skew: some words much more common than others, as in real libraries.
  const skewed = <T>(list: readonly T[]): T => list[Math.floor(list.length * random() ** 2)] as T;
  const creators = Array.from({ length: 250 }, () => `${pick(FIRST)} ${pick(LAST)}`);
  const start = Date.parse('2015-01-01T00:00:00Z');
  const span = Date.parse('2025-06-01T00:00:00Z') - start;
  const assets: AssetRecord[] = [];
  for (let i = 0; i < count; i++) {
    const subject = skewed(SUBJECTS);
    const place = pick(PLACES);
    const title = `${pick(ADJECTIVES)} ${subject} at ${skewed(SETTINGS)}, ${place}`.replace(/^./, (c) => c.toUpperCase());
    const keywords = [...new Set([subject, place.toLowerCase(), ...Array.from({ length: 2 + int(7) }, () => skewed(EXTRA_KEYWORDS)), ...(random() < 0.5 ? [skewed(SUBJECTS)] : [])])];
    // One to three short sentences, about a third of the words function words.
    const description = Array.from({ length: 1 + int(3) }, () =>
      `${pick(['A', 'The', 'Two', 'Some'])} ${pick(ADJECTIVES)} ${pick(SUBJECTS)} ${pick(['in', 'near', 'by', 'at', 'of'])} the ${pick(SUBJECTS)} ${pick(['with', 'and', 'under', 'in'])} ${pick(ADJECTIVES)} ${pick(EXTRA_KEYWORDS)}.`,
    ).join(' ');
    const r = random();
    let acc = 0;
    const format = FORMATS.find(([, , share]) => (acc += share) >= r) ?? FORMATS[0]!;
    const landscape = random() < 0.6;
    const square = random() < 0.07;
    const long = 2000 + int(4000);
    const short = 1000 + int(1000);
    const width = square ? long : landscape ? long : short;
    const height = square ? long : landscape ? short : long;
    const created = start + int(span);
    const updated = created + (random() < 0.3 ? int(Date.parse('2025-06-01T00:00:00Z') - created) : 0);
    const collections = [...new Set([skewed(COLLECTIONS), ...(random() < 0.3 ? [pick(COLLECTIONS)] : [])])];
    const creator = random() < 0.1 ? [pick(creators), pick(creators)] : [skewed(creators)];
    const versionCount = random() < 0.15 ? 2 + int(2) : 1;
    const id = `a${i.toString(36).padStart(5, '0')}${int(1e6).toString(36)}`;
    const versions = Array.from({ length: versionCount }, (_, v) => ({
      id: `${id}-v${v + 1}`,
      number: v + 1,
      created: new Date(created + v * 86_400_000).toISOString(),
      sha256: (i * 7919 + v).toString(16).padStart(64, '0'),
      size: 200_000 + int(20_000_000),
      mediaType: format[0],
      width,
      height,
      metadata: {
        title,
        description,
        keywords,
        creator,
        creditLine: `${creator[0]} / Studio`,
        copyrightNotice: `© ${new Date(created).getUTCFullYear()} ${creator[0]}`,
        city: place,
        country: 'Somewhere',
        dateCreated: new Date(created).toISOString(),
        ...(random() < 0.1 ? { licenseEndDate: new Date(start + int(span + 5 * 365 * 86_400_000)).toISOString().slice(0, 10) } : {}),
        ...(random() < 0.05 ? { usageTerms: 'Editorial use only. Do not distribute.' } : {}),
        ...(random() < 0.2 ? { headline: `${pick(ADJECTIVES)} ${pick(SUBJECTS)}` } : {}),
      },
    }));
    assets.push({
      id,
      filename: random() < 0.6 ? `${pick(['IMG', 'DSC', 'DSCF', '_MG'])}_${String(int(10_000)).padStart(4, '0')}.${format[1]}` : `${subject}-${place.toLowerCase()}-${i}.${format[1]}`,
      created: new Date(created).toISOString(),
      updated: new Date(updated).toISOString(),
      versions,
      collections,
      ...(random() < 0.01 ? { deleted: new Date(updated).toISOString() } : {}),
    });
  }
  return assets;
}

