/**
 * `<data>/webmention/webmention.json`: supplements received (verified webmentions, shown in
 * the target asset's IIIF manifest) and supplements this server published about resources of
 * other servers (with the state of the webmention sent for each).
 */
import { join } from 'node:path';
import { openJsonStore, openMemoryJsonStore, type JsonStore } from '../events/json-store.ts';

export const WEBMENTION_DIR = 'webmention';
export const WEBMENTION_FILE = 'webmention.json';
/** Supplements kept per asset; more are refused. */
export const MAX_SUPPLEMENTS_PER_ASSET = 100;

/** A verified webmention: the source document supplements one of our assets. */
export interface SupplementRecord {
  id: string;
  assetId: string;
  /** The source URL: the supplement itself. */
  source: string;
  /** The target URL it was sent for (a manifest, canvas or asset URL of this server). */
  target: string;
  /** How the manifest shows it: a referenced AnnotationPage, or a `seeAlso` resource. */
  kind: 'annotations' | 'seeAlso';
  /** Presentation 3 type: `AnnotationPage`, `Dataset` (other JSON) or `Text` (HTML). */
  type: string;
  /** Media type of the source. */
  format: string;
  label?: string;
  received: string;
  verified: string;
}

export type SendState = 'sending' | 'sent' | 'no-endpoint' | 'failed';

/** A supplement this server publishes about another server's resource. */
export interface PublishedRecord {
  id: string;
  /** Our asset the supplement links to the target. */
  assetId: string;
  target: string;
  label?: string;
  /** Origin the supplement's URL was made with (where it was published). */
  origin: string;
  created: string;
  createdBy?: string;
  /** Set when withdrawn: the document then answers 410 Gone. */
  deleted?: string;
  send: {
    state: SendState;
    endpoint?: string;
    /** Status the endpoint answered. */
    status?: number;
    error?: string;
    at?: string;
  };
}

export interface WebmentionData {
  schemaVersion: 1;
  supplements: SupplementRecord[];
  published: PublishedRecord[];
}

export type WebmentionStore = JsonStore<WebmentionData>;

function empty(): WebmentionData {
  return { schemaVersion: 1, supplements: [], published: [] };
}

export async function openWebmentionStore(dataDir: string): Promise<WebmentionStore> {
  const path = join(dataDir, WEBMENTION_DIR, WEBMENTION_FILE);
  const store = await openJsonStore(path, empty);
  if (store.data.schemaVersion !== 1 || !Array.isArray(store.data.supplements)) throw new Error(`${path} has an unknown layout`);
  return store;
}

export function openMemoryWebmentionStore(): Promise<WebmentionStore> {
  return openMemoryJsonStore(empty);
}
