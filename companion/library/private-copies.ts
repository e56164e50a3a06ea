/**
 * Privacy-filtered copies of originals, for callers who may not learn where a picture was taken
 * (the public, guests, other servers): the stored original is never touched; the copy is made
 * once per (original, disclosure) by the metadata engine's `writePrivateCopy`, stored in the
 * blob store like any file (content-addressed, so its sha256 goes into the download ticket),
 * and remembered in `<data>/private-copies.json`. An original with nothing to hide is served
 * as it is.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, writeJsonFile } from '../agent/json-file.ts';
import { writePrivateCopy, type PrivacyPolicy } from '../metadata/privacy.ts';
import type { BlobStore } from './blob-store.ts';

export interface PrivateCopy {
  sha256: string;
  size: number;
  /** false when the original had nothing to hide: it is served as it is. */
  filtered: boolean;
}

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': '.jpg',
  'image/png': '.png',
  'image/tiff': '.tif',
  'image/webp': '.webp',
  'image/heic': '.heic',
  'image/heif': '.heif',
  'image/avif': '.avif',
  'image/gif': '.gif',
  'image/vnd.adobe.photoshop': '.psd',
  'image/x-adobe-dng': '.dng',
};

type Index = Record<string, { sha256: string; size: number } | 'same'>;

export class PrivateCopies {
  readonly #blobs: BlobStore;
  readonly #indexPath: string;
  #index: Index;
  readonly #making = new Map<string, Promise<PrivateCopy>>();

  private constructor(blobs: BlobStore, indexPath: string, index: Index) {
    this.#blobs = blobs;
    this.#indexPath = indexPath;
    this.#index = index;
  }

  static async open(blobs: BlobStore, dataDir: string): Promise<PrivateCopies> {
    const indexPath = join(dataDir, 'private-copies.json');
    return new PrivateCopies(blobs, indexPath, await readJsonFile<Index>(indexPath, {}));
  }

  /** The copy of the original `sha256` that `policy` allows (made on first use). */
  async of(original: { sha256: string; size: number; mediaType: string }, policy: PrivacyPolicy): Promise<PrivateCopy> {
    if (policy.location === 'full') return { sha256: original.sha256, size: original.size, filtered: false };
    const key = `${original.sha256}:${policy.location}`;
    const known = this.#index[key];
    if (known === 'same') return { sha256: original.sha256, size: original.size, filtered: false };
    if (known && (await this.#blobs.has(known.sha256))) return { ...known, filtered: true };
    let making = this.#making.get(key);
    if (!making) {
      making = this.#make(key, original, policy).finally(() => this.#making.delete(key));
      this.#making.set(key, making);
    }
    return making;
  }

  async #make(key: string, original: { sha256: string; size: number; mediaType: string }, policy: PrivacyPolicy): Promise<PrivateCopy> {
    const tmp = this.#blobs.tempPath(EXTENSIONS[original.mediaType] ?? '');
    try {
      const { removed } = await writePrivateCopy(this.#blobs.pathOf(original.sha256), tmp, policy);
      let copy: PrivateCopy;
      if (removed.length === 0) {
        this.#index = { ...this.#index, [key]: 'same' };
        copy = { sha256: original.sha256, size: original.size, filtered: false };
      } else {
        const stored = await this.#blobs.put(createReadStream(tmp));
        this.#index = { ...this.#index, [key]: { sha256: stored.sha256, size: stored.size } };
        copy = { sha256: stored.sha256, size: stored.size, filtered: true };
      }
      await writeJsonFile(this.#indexPath, this.#index);
      return copy;
    } finally {
      await rm(tmp, { force: true });
    }
  }
}
