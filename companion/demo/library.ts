/**
 * The demo library of `imagine serve --demo`: on first run, the demo pictures are made and
 * ingested into public collections, and a `demo` administrator gets a token kept in
 * `<data>/demo-token` (mode 0600) for the local agent and the panel preview. Later runs find
 * the catalog filled and do nothing.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestFiles } from '../library/ingest.ts';
import type { LibraryServices } from '../library/services.ts';
import { seedDemoImages } from './seed.ts';

export const DEMO_USER = 'demo';

export async function ensureDemoLibrary(services: LibraryServices, dataDir: string): Promise<{ seeded: boolean; token: string }> {
  const { library, auth } = services;
  const tokenPath = join(dataDir, 'demo-token');
  let seeded = false;
  if (library.catalog.data.assets.length === 0) {
    const images = await seedDemoImages(join(dataDir, 'demo-source'));
    const byCollection = new Map<string, string[]>();
    for (const image of images) byCollection.set(image.collection, [...(byCollection.get(image.collection) ?? []), image.path]);
    for (const [collection, files] of byCollection) {
      await ingestFiles(library, files, { collection, public: true, user: DEMO_USER });
    }
    seeded = true;
  }
  let token = await readFile(tokenPath, 'utf8').then((t) => t.trim(), () => '');
  if (!token || !safeAuthenticate(services, token)) {
    if (!library.catalog.user(DEMO_USER)) await auth.addUser({ name: DEMO_USER, admin: true });
    token = (await auth.createToken(DEMO_USER, 'demo agent')).token;
    await writeFile(tokenPath, `${token}\n`, { mode: 0o600 });
  }
  return { seeded, token };
}

function safeAuthenticate(services: LibraryServices, token: string): boolean {
  try {
    return services.auth.authenticate(token) !== undefined;
  } catch {
    return false;
  }
}
