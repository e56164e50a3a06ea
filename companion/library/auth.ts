/**
 * Users, API tokens and who may do what.
 *
 * Tokens are `imt_` + 43 base64url characters (256 random bits); only their SHA-256 is
 * stored, so a stolen catalog reveals no token. Rules:
 * - an administrator may do everything;
 * - anyone, without a token, may read the assets of public collections;
 * - a user may read the assets of collections granted to them (read or write), and change
 *   (push versions, edit metadata, delete, add to collections) where they hold write, and
 *   always the assets they created;
 * - new assets go into a collection the user may write; only administrators add assets
 *   outside any collection.
 * Reading depends only on an asset's collections, so search asks once per set of collections.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../../shared/errors.ts';
import type { Catalog } from './catalog.ts';
import { newId } from './ids.ts';
import type { AssetRecord, Permission, TokenRecord, UserRecord } from './records.ts';

export const TOKEN_PREFIX = 'imt_';
const TOKEN_PATTERN = /^imt_[A-Za-z0-9_-]{43}$/;
const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The user a request acts as; `undefined` for an anonymous request. */
export type Actor = UserRecord | undefined;

export function parseBearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(header.trim());
  if (!match) throw new ProtocolError('ERR_TOKEN_INVALID', 'Authorization must be "Bearer <token>"');
  return match[1];
}

export class Auth {
  constructor(private readonly catalog: Catalog) {}

  /** The user a bearer token belongs to. Throws ERR_TOKEN_INVALID for unknown or revoked tokens. */
  authenticate(token: string | undefined): Actor {
    if (token === undefined) return undefined;
    if (!TOKEN_PATTERN.test(token)) throw new ProtocolError('ERR_TOKEN_INVALID', 'token is not valid');
    const hash = hashToken(token);
    const record = this.catalog.tokenByHash(hash);
    // The lookup is by hash, so timing reveals nothing of the token; compare once more anyway.
    if (!record || !timingSafeEqual(Buffer.from(record.hash, 'hex'), Buffer.from(hash, 'hex'))) {
      throw new ProtocolError('ERR_TOKEN_INVALID', 'token is not valid');
    }
    const user = this.catalog.user(record.user);
    if (!user) throw new ProtocolError('ERR_TOKEN_INVALID', 'token is not valid');
    return user;
  }

  canRead(actor: Actor, asset: AssetRecord): boolean {
    if (actor?.admin) return true;
    return this.canReadCollections(actor, asset.collections);
  }

  /** Whether an asset in exactly these collections is readable (reading depends on nothing else). */
  canReadCollections(actor: Actor, collections: readonly string[]): boolean {
    if (actor?.admin) return true;
    for (const id of collections) {
      if (this.catalog.collection(id)?.public) return true;
      if (actor && actor.grants[id]) return true;
    }
    return false;
  }

  canCreateAsset(actor: Actor, collectionId: string | undefined): boolean {
    return collectionId ? this.canWriteCollection(actor, collectionId) : !!actor?.admin;
  }

  canWrite(actor: Actor, asset: AssetRecord): boolean {
    if (!actor) return false;
    if (actor.admin || asset.createdBy === actor.name) return true;
    return asset.collections.some((id) => actor.grants[id] === 'write');
  }

  canWriteCollection(actor: Actor, collectionId: string): boolean {
    return !!actor && (actor.admin || actor.grants[collectionId] === 'write');
  }

  canReadCollection(actor: Actor, collectionId: string): boolean {
    if (actor?.admin) return true;
    if (this.catalog.collection(collectionId)?.public) return true;
    return !!actor && actor.grants[collectionId] !== undefined;
  }

  /** Throws 401 for anonymous requests and 403 for users without the right. */
  require(allowed: boolean, actor: Actor, what: string): void {
    if (allowed) return;
    if (!actor) throw new ProtocolError('ERR_UNAUTHORIZED', `a token is required to ${what}`);
    throw new ProtocolError('ERR_FORBIDDEN', `${actor.name} may not ${what}`);
  }

  /** Read access that does not reveal whether a private asset exists: 404 for strangers. */
  requireRead(actor: Actor, asset: AssetRecord): void {
    if (this.canRead(actor, asset)) return;
    if (!actor) throw new ProtocolError('ERR_UNAUTHORIZED', 'a token is required to read this asset');
    throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${asset.id}"`);
  }

  async addUser(input: { name: string; email?: string; admin?: boolean; grants?: Record<string, Permission> }): Promise<UserRecord> {
    const name = input.name.toLowerCase();
    if (!USER_NAME.test(name)) {
      throw new ProtocolError('ERR_VALIDATION', 'a user name is 1-64 characters of a-z, 0-9, ".", "_" and "-"');
    }
    return this.catalog.mutate((tx) => {
      if (tx.data.users.some((u) => u.name === name)) {
        throw new ProtocolError('ERR_CONFLICT', `user "${name}" already exists`);
      }
      const user: UserRecord = { name, admin: input.admin ?? false, created: new Date().toISOString(), grants: input.grants ?? {} };
      if (input.email) user.email = input.email;
      tx.data.users.push(user);
      return user;
    });
  }

  async grant(name: string, collectionId: string, permission: Permission): Promise<void> {
    await this.catalog.mutate((tx) => {
      const user = tx.data.users.find((u) => u.name === name);
      if (!user) throw new ProtocolError('ERR_USER_NOT_FOUND', `no user "${name}"`);
      if (!tx.collection(collectionId)) throw new ProtocolError('ERR_COLLECTION_NOT_FOUND', `no collection "${collectionId}"`);
      user.grants[collectionId] = permission;
    });
  }

  /** Creates a token for a user and returns it: the only time it is ever seen. */
  async createToken(userName: string, label?: string): Promise<{ token: string; record: TokenRecord }> {
    const name = userName.toLowerCase();
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const record = await this.catalog.mutate((tx) => {
      if (!tx.data.users.some((u) => u.name === name)) throw new ProtocolError('ERR_USER_NOT_FOUND', `no user "${name}"`);
      const rec: TokenRecord = { id: newId(10), user: name, hash: hashToken(token), created: new Date().toISOString() };
      if (label) rec.label = label;
      tx.data.tokens.push(rec);
      return rec;
    });
    return { token, record };
  }
}
