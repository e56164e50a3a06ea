/**
 * The collection mirrors of a library server: loads the declarations (and picks up those
 * `imagine peers mirror` adds while the server runs), runs each mirror one run at a time,
 * polls every `mirrorIntervalSeconds`, and runs at once on a webhook hint from the peer.
 * Hints are verified (Standard Webhooks signature, timestamp, `webhook-id` seen once) and only
 * trigger a read of the feed: their content is never trusted.
 */
import { ProtocolError } from '../../shared/errors.ts';
import { parseUri } from '../../shared/uri.ts';
import { createWebhookReceiver } from '../events/receiver.ts';
import type { Library } from '../library/library.ts';
import { CollectionMirror, type MirrorLog } from './collection-mirror.ts';
import { MirrorDeclarations, MirrorStateFile, type MirrorDeclaration, type MirrorState } from './mirror-store.ts';
import type { FederationServices } from './services.ts';

export interface MirrorServiceOptions {
  dataDir: string;
  federation: FederationServices;
  library: Library;
  intervalSeconds: number;
  maxBytes: number;
  log: MirrorLog;
  /** Path prefix of the protocol API (`/api/v1`): the hook URL is `<origin><prefix>/federation/mirrors/<id>/hook`. */
  apiPrefix: string;
  /** How often the declarations file is checked for changes, ms (default 2 s). */
  watchMs?: number;
}

export interface MirrorStatus {
  id: string;
  uri: string;
  peer: string;
  collection: string;
  created: string;
  state: 'waiting' | 'copying' | 'following' | 'error';
  localCollection: string | null;
  remoteName: string | null;
  items: number;
  cursor: string | null;
  subscription: { id: string; created: string } | null;
  subscriptionError: MirrorState['subscriptionError'];
  lastRun: MirrorState['lastRun'];
  lastError: MirrorState['lastError'];
  counters: MirrorState['counters'];
}

interface Entry {
  mirror: CollectionMirror;
  receive: ReturnType<typeof createWebhookReceiver>;
  running?: Promise<void>;
  again?: string;
  subscribeTried?: number;
}

export class MirrorService {
  readonly declarations: MirrorDeclarations;
  readonly #o: MirrorServiceOptions;
  readonly #entries = new Map<string, Entry>();
  #timers: NodeJS.Timeout[] = [];
  #reloading: Promise<void> | undefined;
  #closed = false;

  constructor(options: MirrorServiceOptions) {
    this.#o = options;
    this.declarations = new MirrorDeclarations(options.dataDir);
  }

  /** Loads the mirrors, runs each once, and starts polling. */
  async start(): Promise<void> {
    await this.reload();
    const poll = setInterval(() => {
      void this.reload().then(() => {
        for (const id of this.#entries.keys()) void this.#schedule(id, 'poll');
      });
    }, this.#o.intervalSeconds * 1000);
    const watch = setInterval(() => void this.reload(), this.#o.watchMs ?? 2_000);
    poll.unref();
    watch.unref();
    this.#timers = [poll, watch];
  }

  /** Reads the declarations again; new mirrors run at once. */
  reload(): Promise<void> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(): Promise<void> {
    if (this.#closed) return;
    let declared: MirrorDeclaration[];
    try {
      declared = await this.declarations.list();
    } catch (error) {
      this.#o.log.warn({ err: (error as Error).message }, 'collection mirrors: declarations unreadable');
      return;
    }
    const ids = new Set(declared.map((d) => d.id));
    for (const id of [...this.#entries.keys()]) if (!ids.has(id)) this.#entries.delete(id);
    for (const declaration of declared) {
      if (this.#entries.has(declaration.id)) continue;
      const store = await MirrorStateFile.open(this.#o.dataDir, declaration.id);
      if (this.#entries.has(declaration.id) || this.#closed) continue;
      const mirror = new CollectionMirror({
        declaration,
        store,
        federation: this.#o.federation,
        library: this.#o.library,
        maxBytes: this.#o.maxBytes,
        log: this.#o.log,
      });
      this.#entries.set(declaration.id, { mirror, receive: createWebhookReceiver({ secret: store.state.hookSecret }) });
      void this.#schedule(declaration.id, 'declared');
    }
  }

  /**
   * Declares a mirror of a peer's collection (`imagine://peer/collections/ID`) and starts its
   * initial copy. The peer must be an outgoing peer of this server.
   */
  async declare(input: { uri: string; localOrigin: string; subject?: string; createdBy?: string }): Promise<{ status: MirrorStatus; existed: boolean }> {
    const declaration = await declarationFor(this.#o.federation, input);
    const { mirror, existed } = await this.declarations.add(declaration);
    await this.reload();
    return { status: this.status(mirror.id), existed };
  }

  /** Stops mirroring (the local copies stay); the peer's subscription is ended when it answers. */
  async remove(id: string): Promise<MirrorStatus> {
    const entry = this.#entry(id);
    const status = this.status(id);
    await entry.running;
    await entry.mirror.unsubscribe().catch((error: unknown) => {
      this.#o.log.warn({ mirror: id, err: (error as Error).message }, 'collection mirror: the peer subscription could not be ended');
    });
    await this.declarations.remove(id);
    this.#entries.delete(id);
    return status;
  }

  /** Runs a mirror now (or after the run in progress) and answers its status. */
  async runNow(id: string, trigger = 'manual'): Promise<MirrorStatus> {
    this.#entry(id);
    await this.#schedule(id, trigger);
    return this.status(id);
  }

  /** One mirror's worker and state (inspection, tests). */
  mirror(id: string): CollectionMirror {
    return this.#entry(id).mirror;
  }

  /** Runs `change` on a mirror between two runs (no run in progress, none started before it returns). */
  async betweenRuns(id: string, change: (mirror: CollectionMirror) => void): Promise<void> {
    const entry = this.#entry(id);
    while (entry.running) await entry.running;
    change(entry.mirror);
  }

  list(): MirrorStatus[] {
    return [...this.#entries.keys()].map((id) => this.status(id));
  }

  status(id: string): MirrorStatus {
    const { mirror } = this.#entry(id);
    const d = mirror.declaration;
    const s = mirror.store.state;
    return {
      id: d.id,
      uri: d.uri,
      peer: d.peer,
      collection: d.collection,
      created: d.created,
      state: s.scan ? 'copying' : s.lastError ? 'error' : s.position ? 'following' : 'waiting',
      localCollection: s.localCollection,
      remoteName: s.remoteName,
      items: Object.keys(s.items).length,
      cursor: s.position?.cursor ?? null,
      subscription: s.subscription ? { id: s.subscription.id, created: s.subscription.created } : null,
      subscriptionError: s.subscriptionError,
      lastRun: s.lastRun,
      lastError: s.lastError,
      counters: { ...s.counters },
    };
  }

  /**
   * A webhook from the peer: verified, then a challenge is echoed or a run is scheduled.
   * @throws ERR_WEBHOOK_SIGNATURE_INVALID (bad signature or stale timestamp), ERR_COLLECTION_MIRROR_NOT_FOUND
   */
  receiveHint(id: string, headers: Record<string, string | string[] | undefined>, body: Uint8Array): { challenge?: string; duplicate?: boolean } {
    const entry = this.#entry(id);
    const counters = entry.mirror.store.state.counters;
    let result;
    try {
      result = entry.receive(headers, body);
    } catch (error) {
      counters.hintsRefused++;
      throw error;
    }
    if (result.status === 'duplicate') return { duplicate: true };
    if (result.message.type === 'webhook.challenge') {
      if (typeof result.message.challenge !== 'string') throw new ProtocolError('ERR_BAD_REQUEST', 'a challenge without its value');
      return { challenge: result.message.challenge };
    }
    counters.hints++;
    void this.#schedule(id, 'hint');
    return {};
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    await this.#reloading;
    await Promise.allSettled([...this.#entries.values()].map((e) => e.running));
  }

  #entry(id: string): Entry {
    const entry = this.#entries.get(id);
    if (!entry) throw new ProtocolError('ERR_COLLECTION_MIRROR_NOT_FOUND', `no collection mirror "${id}"`);
    return entry;
  }

  /** Runs the mirror; a trigger arriving during a run makes one more run after it. */
  #schedule(id: string, trigger: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry || this.#closed) return Promise.resolve();
    if (entry.running) {
      entry.again ??= trigger;
      return entry.running;
    }
    entry.running = (async () => {
      let next: string | undefined = trigger;
      while (next !== undefined && !this.#closed && this.#entries.get(id) === entry) {
        entry.again = undefined;
        try {
          await entry.mirror.run(next);
          await this.#subscribeIfDue(entry);
        } catch {
          // Recorded in the mirror's state (lastError) and logged by the mirror.
        }
        next = entry.again;
      }
    })().finally(() => {
      entry.running = undefined;
    });
    return entry.running;
  }

  /** Asks the peer for hints once the mirror follows the feed; retried once per poll interval. */
  async #subscribeIfDue(entry: Entry): Promise<void> {
    const { mirror } = entry;
    const state = mirror.store.state;
    if (state.subscription || !state.position) return;
    const now = Date.now();
    if (entry.subscribeTried !== undefined && now - entry.subscribeTried < this.#o.intervalSeconds * 1000) return;
    entry.subscribeTried = now;
    const d = mirror.declaration;
    const url = `${d.localOrigin}${this.#o.apiPrefix}/federation/mirrors/${encodeURIComponent(d.id)}/hook`;
    try {
      await mirror.subscribe(url);
      this.#o.log.info({ mirror: d.id, subscription: mirror.store.state.subscription?.id }, 'collection mirror: subscribed to the peer for hints');
    } catch (error) {
      const code = (error as ProtocolError).code ?? 'ERR_INTERNAL';
      state.subscriptionError = { code, message: (error as Error).message, at: new Date().toISOString() };
      await mirror.store.save(state).catch(() => undefined);
      this.#o.log.warn({ mirror: d.id, code, detail: (error as Error).message }, 'collection mirror: no hints from the peer (polling only)');
    }
  }
}

/** Checks a mirror request (`imagine://peer/collections/ID` of an outgoing peer) and makes its declaration. */
export async function declarationFor(
  federation: FederationServices,
  input: { uri: string; localOrigin: string; subject?: string; createdBy?: string },
): Promise<Omit<MirrorDeclaration, 'id' | 'created'>> {
  const uri = parseUri(input.uri);
  if (uri.type !== 'collections') throw new ProtocolError('ERR_URI_INVALID', 'a mirror copies a collection: imagine://peer/collections/ID');
  if (uri.version) throw new ProtocolError('ERR_URI_INVALID', 'a collection URI has no version');
  const peer = federation.resolver.originOf(uri.authority);
  if (peer === input.localOrigin) throw new ProtocolError('ERR_CONFLICT', 'this collection is already in this library');
  const known = await federation.peers.find('outgoing', peer);
  if (!known || (known.state !== 'requested' && known.state !== 'accepted')) {
    throw new ProtocolError('ERR_PEER_UNKNOWN', `${uri.authority} is not a peer: ask it to trust this server first (imagine peers request)`);
  }
  return {
    peer,
    collection: uri.id,
    uri: `imagine://${uri.authority}/collections/${uri.id}`,
    localOrigin: input.localOrigin,
    ...(input.subject ? { subject: input.subject } : {}),
    ...(input.createdBy ? { createdBy: input.createdBy } : {}),
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Collection mirrors of peers (library and both roles). */
    mirrors?: MirrorService;
  }
}
