/**
 * Guests' one-time sign-in links and sessions: `<data>/guests/guests.json`, a small lowdb
 * document of its own (not the catalog, so a sign-in never rewrites the catalog), written only
 * by the process that holds the data folder's writer lock (the server, or `imagine guests
 * invite` while no server runs).
 *
 * Tokens are 32 random bytes (`igl_` for links, `igs_` for sessions, then base64url); only
 * their SHA-256 is stored. A link is used once: it is marked used in the same write that creates
 * the session, and writes run one after another, so two concurrent uses cannot both sign in.
 * Expired sessions are dropped on every write, links 30 days after they expire.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ProtocolError } from '../../shared/errors.ts';
import { openJsonStore, openMemoryJsonStore, type JsonStore } from '../events/json-store.ts';
import { hashToken } from '../library/auth.ts';

export const LINK_PREFIX = 'igl_';
export const SESSION_PREFIX = 'igs_';
const TOKEN_PATTERN = /^ig[ls]_[A-Za-z0-9_-]{43}$/;
/** How long an expired or used link's hash is kept (30 days). */
const KEEP_EXPIRED_LINKS_MS = 30 * 86_400_000;

export interface GuestInviteRecord {
  /** SHA-256 (hex) of the link's token. */
  hash: string;
  /** The guest's identity: the e-mail address, lowercase (`name@domain`). */
  identity: string;
  collections: string[];
  created: string;
  createdBy?: string;
  expires: string;
  /** When the link was used (kept until it expires, so a second use is told apart from a forgery). */
  used?: string;
}

export interface GuestSessionRecord {
  hash: string;
  identity: string;
  created: string;
  expires: string;
}

interface GuestsData {
  invites: GuestInviteRecord[];
  sessions: GuestSessionRecord[];
}

const empty = (): GuestsData => ({ invites: [], sessions: [] });

function newToken(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export class GuestStore {
  readonly #store: JsonStore<GuestsData>;
  readonly #now: () => number;

  constructor(store: JsonStore<GuestsData>, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** Records a one-time sign-in link for `identity`; returns its token (the only time it is seen). */
  async createInvite(input: { identity: string; collections: string[]; ttlSeconds: number; createdBy?: string }): Promise<{ token: string; record: GuestInviteRecord }> {
    const token = newToken(LINK_PREFIX);
    const now = this.#now();
    const record: GuestInviteRecord = {
      hash: hashToken(token),
      identity: input.identity,
      collections: [...input.collections],
      created: new Date(now).toISOString(),
      ...(input.createdBy ? { createdBy: input.createdBy } : {}),
      expires: new Date(now + input.ttlSeconds * 1000).toISOString(),
    };
    await this.#store.mutate((data) => {
      this.#prune(data);
      data.invites.push(record);
    });
    return { token, record };
  }

  /**
   * The invite a link token belongs to, without using it (the sign-in page shows it).
   * @throws ERR_GUEST_LINK_INVALID (malformed or unknown), ERR_GUEST_LINK_EXPIRED (expired or used)
   */
  checkInvite(token: string | undefined): GuestInviteRecord {
    return this.#liveInvite(this.#store.data.invites, token);
  }

  /**
   * Uses a link: the invite is marked used and a session made in one write.
   * @throws ERR_GUEST_LINK_INVALID, ERR_GUEST_LINK_EXPIRED
   */
  async consumeInvite(token: string | undefined, sessionTtlSeconds: number): Promise<{ session: string; record: GuestSessionRecord }> {
    const session = newToken(SESSION_PREFIX);
    const record = await this.#store.mutate((data) => {
      const invite = this.#liveInvite(data.invites, token);
      const now = this.#now();
      const made: GuestSessionRecord = {
        hash: hashToken(session),
        identity: invite.identity,
        created: new Date(now).toISOString(),
        expires: new Date(now + sessionTtlSeconds * 1000).toISOString(),
      };
      invite.used = made.created;
      this.#prune(data);
      data.sessions.push(made);
      return made;
    });
    return { session, record };
  }

  /** The live session of a cookie value, or undefined (absent, malformed, unknown or expired). */
  session(token: string | undefined): GuestSessionRecord | undefined {
    if (!token || !TOKEN_PATTERN.test(token) || !token.startsWith(SESSION_PREFIX)) return undefined;
    const hash = hashToken(token);
    const found = this.#store.data.sessions.find((s) => s.hash === hash);
    return found && Date.parse(found.expires) > this.#now() ? found : undefined;
  }

  /** Ends a session (signing out); unknown tokens are ignored. */
  async endSession(token: string | undefined): Promise<void> {
    if (!token || !TOKEN_PATTERN.test(token)) return;
    const hash = hashToken(token);
    if (!this.#store.data.sessions.some((s) => s.hash === hash)) return;
    await this.#store.mutate((data) => {
      data.sessions = data.sessions.filter((s) => s.hash !== hash);
    });
  }

  /** Resolves once every pending write is on disk. */
  flush(): Promise<void> {
    return this.#store.flush();
  }

  #liveInvite(invites: readonly GuestInviteRecord[], token: string | undefined): GuestInviteRecord {
    if (!token || !TOKEN_PATTERN.test(token) || !token.startsWith(LINK_PREFIX)) {
      throw new ProtocolError('ERR_GUEST_LINK_INVALID', 'this sign-in link is not valid');
    }
    const hash = hashToken(token);
    const invite = invites.find((i) => i.hash === hash);
    if (!invite) throw new ProtocolError('ERR_GUEST_LINK_INVALID', 'this sign-in link is not valid');
    if (invite.used) {
      throw new ProtocolError('ERR_GUEST_LINK_EXPIRED', `this sign-in link was already used (${invite.used}): ask for a new one`);
    }
    if (Date.parse(invite.expires) <= this.#now()) {
      throw new ProtocolError('ERR_GUEST_LINK_EXPIRED', `this sign-in link expired on ${invite.expires}: ask for a new one`);
    }
    return invite;
  }

  #prune(data: GuestsData): void {
    const now = this.#now();
    // Expired links are kept a while, so using one says "expired" rather than "not valid".
    data.invites = data.invites.filter((i) => Date.parse(i.expires) + KEEP_EXPIRED_LINKS_MS > now);
    data.sessions = data.sessions.filter((s) => Date.parse(s.expires) > now);
  }
}

export const GUESTS_FILE = join('guests', 'guests.json');

export async function openGuestStore(dataDir: string, now?: () => number): Promise<GuestStore> {
  return new GuestStore(await openJsonStore<GuestsData>(join(dataDir, GUESTS_FILE), empty), now);
}

export async function openMemoryGuestStore(now?: () => number): Promise<GuestStore> {
  return new GuestStore(await openMemoryJsonStore<GuestsData>(empty), now);
}
