/**
 * Opens a data folder as a library: takes the writer lock, loads the catalog, prepares the
 * blob store (sweeping temp files a crash left) and the URL-signing keys. `close()` releases
 * everything in the reverse order.
 */
import { PrivateCopies } from './private-copies.ts';
import { mkdir } from 'node:fs/promises';
import type { Config } from '../config.ts';
import { Auth } from './auth.ts';
import { BlobStore } from './blob-store.ts';
import { openCatalog } from './catalog.ts';
import { Library } from './library.ts';
import { acquireWriterLock, type WriterLock } from './lock.ts';
import { loadOrCreateSigningKeys, UrlSigner } from './signed-url.ts';

export interface LibraryServicesOptions {
  dataDir: string;
  /** What holds the lock, shown to a second writer that is refused. */
  command: string;
  maxUploadBytes: number;
  signedUrlTtlSeconds: number;
  clockSkewSeconds: number;
}

export interface LibraryServices {
  library: Library;
  auth: Auth;
  signer: UrlSigner;
  /** Originals without the location some callers may not learn (made on first use). */
  privateCopies: PrivateCopies;
  lock: WriterLock;
  close(): Promise<void>;
}

/** The options of a data folder's library, from the configuration. */
export function libraryServicesOptions(config: Config, command: string): LibraryServicesOptions {
  return {
    dataDir: config.dataDir,
    command,
    maxUploadBytes: config.maxUploadBytes,
    signedUrlTtlSeconds: config.signedUrlTtlSeconds,
    clockSkewSeconds: config.clockSkewSeconds,
  };
}

export async function openLibraryServices(options: LibraryServicesOptions): Promise<LibraryServices> {
  await mkdir(options.dataDir, { recursive: true });
  const lock = await acquireWriterLock(options.dataDir, options.command);
  try {
    const blobs = new BlobStore(options.dataDir);
    await blobs.init();
    await blobs.sweepTemp();
    const catalog = await openCatalog(options.dataDir);
    const library = new Library({ catalog, blobs, maxUploadBytes: options.maxUploadBytes });
    const auth = new Auth(catalog);
    const signer = new UrlSigner({
      keys: await loadOrCreateSigningKeys(options.dataDir),
      ttlSeconds: options.signedUrlTtlSeconds,
      clockSkewSeconds: options.clockSkewSeconds,
    });
    const privateCopies = await PrivateCopies.open(blobs, options.dataDir);
    return {
      library,
      auth,
      signer,
      privateCopies,
      lock,
      async close() {
        await catalog.mutate(() => undefined); // waits for pending writes
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
