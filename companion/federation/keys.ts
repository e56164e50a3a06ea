/**
 * This server's identity for federation: Ed25519 key pairs in `<data>/federation/keys.json`
 * (mode 0600), published as a JWKS at `/.well-known/imagine/jwks.json`. The newest key signs;
 * after a rotation the previous keys stay published for `RETIRED_KEY_LIFE_MS`, so tokens signed
 * just before the rotation still verify at their receivers.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { readJsonFile, writeJsonFile } from '../agent/json-file.ts';

export const FEDERATION_DIR = 'federation';
export const KEYS_FILE = 'keys.json';
export const SIGNING_ALG = 'EdDSA';
/** A retired key stays in the JWKS one day: far longer than any token it signed (60 s). */
export const RETIRED_KEY_LIFE_MS = 24 * 3600 * 1000;

interface StoredKey {
  kid: string;
  alg: typeof SIGNING_ALG;
  created: string;
  retired?: string;
  privateJwk: JWK;
}

interface KeysFile {
  keys: StoredKey[];
}

export interface SigningKey {
  kid: string;
  alg: string;
  key: CryptoKey;
}

export interface ServerKeys {
  /** The key that signs now. */
  current(): SigningKey;
  /** The public keys to publish: the current one and those retired less than a day ago. */
  jwks(): { keys: JWK[] };
  /** Makes a new current key; the old one is retired (still published for a day). Returns the new kid. */
  rotate(): Promise<string>;
}

/** Opens the server's keys, creating the first key pair on first use. */
export async function openServerKeys(dataDir: string, now: () => number = Date.now): Promise<ServerKeys> {
  const path = join(dataDir, FEDERATION_DIR, KEYS_FILE);
  const file = await readJsonFile<KeysFile>(path, { keys: [] });
  let stored = file.keys.filter((k) => k && k.alg === SIGNING_ALG && k.privateJwk);
  if (stored.length === 0) {
    stored = [await newKey(now)];
    await writeJsonFile(path, { keys: stored });
  }
  let imported = await importAll(stored);
  // `imagine keys rotate` may write the file while a server runs: the server picks it up.
  let mtimeMs = statSync(path).mtimeMs;
  let checkedAt = now();
  let reloading: Promise<void> | undefined;
  const reloadIfChanged = () => {
    if (now() - checkedAt < 1000 || reloading) return;
    checkedAt = now();
    let current: number;
    try {
      current = statSync(path).mtimeMs;
    } catch {
      return;
    }
    if (current === mtimeMs) return;
    mtimeMs = current;
    reloading = (async () => {
      const next = (await readJsonFile<KeysFile>(path, { keys: [] })).keys.filter((k) => k && k.alg === SIGNING_ALG);
      if (next.length > 0) {
        const nextImported = await importAll(next);
        stored = next;
        imported = nextImported;
      }
    })()
      .catch(() => {})
      .finally(() => {
        reloading = undefined;
      });
  };

  const publicJwk = (k: StoredKey): JWK => {
    const { d: _private, ...pub } = k.privateJwk;
    return { ...pub, kid: k.kid, alg: k.alg, use: 'sig' };
  };

  return {
    current() {
      reloadIfChanged();
      const last = imported[imported.length - 1]!;
      return last;
    },
    jwks() {
      reloadIfChanged();
      const cutoff = now() - RETIRED_KEY_LIFE_MS;
      return { keys: stored.filter((k) => !k.retired || Date.parse(k.retired) > cutoff).map(publicJwk) };
    },
    async rotate() {
      const at = new Date(now()).toISOString();
      const cutoff = now() - RETIRED_KEY_LIFE_MS;
      const next = await newKey(now);
      stored = [
        ...stored
          .map((k) => (k.retired ? k : { ...k, retired: at }))
          .filter((k) => !k.retired || Date.parse(k.retired) > cutoff),
        next,
      ];
      await writeJsonFile(path, { keys: stored });
      imported = await importAll(stored);
      mtimeMs = statSync(path).mtimeMs;
      return next.kid;
    },
  };
}

async function newKey(now: () => number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { crv: 'Ed25519', extractable: true });
  return {
    kid: `k${new Date(now()).toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`,
    alg: SIGNING_ALG,
    created: new Date(now()).toISOString(),
    privateJwk: await exportJWK(privateKey),
  };
}

async function importAll(stored: StoredKey[]): Promise<SigningKey[]> {
  return Promise.all(
    stored.map(async (k) => ({ kid: k.kid, alg: k.alg, key: (await importJWK(k.privateJwk, k.alg)) as CryptoKey })),
  );
}
