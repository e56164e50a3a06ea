/**
 * Mulberry32: a tiny seeded generator of numbers in [0, 1), the same sequence for the same seed
 * on every runtime. For demo pictures, benchmarks and tests; never for anything secret.
 *
 * @example
 *   const random = seededRandom(42);
 *   const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
