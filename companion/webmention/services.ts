/**
 * Webmention (W3C Recommendation) for IIIF supplements, both ways.
 *
 * Receiving (`POST /webmention`): `source` and `target` are checked at once (http(s) URLs that
 * differ; the target a manifest, canvas or asset URL of this server, for an asset the caller
 * may read; the source's host resolving only to allowed addresses), then the request is
 * answered 202 and verified in the background: the source is fetched SSRF-safe (size cap,
 * deadline, at most 3 redirects, each re-checked) and must link to the target (an exact `href`
 * in HTML; a string value in JSON, e.g. an AnnotationPage's `target` or a `partOf`/`within`).
 * A verified source is stored as a supplement of the asset and shown in its manifest: a IIIF
 * AnnotationPage as a referenced page in `annotations`, anything else in `seeAlso`. A source
 * that answers 404/410 or no longer links removes an earlier supplement (§3.2.3 updates).
 *
 * Publishing: `publish()` records a supplement of one of our assets about another server's
 * resource, served as a Presentation 3 AnnotationPage (a `linking` annotation: body our
 * manifest, target theirs), then discovers the target's endpoint and sends the webmention.
 * Withdrawing makes the document answer 410 and sends the webmention again.
 */
import { ProtocolError } from '../../shared/errors.ts';
import type { Config } from '../config.ts';
import type { Actor, Auth } from '../library/auth.ts';
import { newId } from '../library/ids.ts';
import type { Library } from '../library/library.ts';
import { API_PREFIX, IIIF_PREFIX } from '../routes/api-context.ts';
import { addressPolicy, parseHttpUrl, resolveChecked, safeFetch, type AddressPolicy } from '../events/safe-fetch.ts';
import type { EventLog } from '../events/worker.ts';
import { discoverEndpoint, htmlTitle, kindOf, linksTo, plainLabel } from './links.ts';
import {
  MAX_SUPPLEMENTS_PER_ASSET,
  openWebmentionStore,
  type PublishedRecord,
  type SupplementRecord,
  type WebmentionStore,
} from './store.ts';

export type WebmentionConfig = Pick<Config, 'dataDir' | 'allowPrivateWebmention' | 'webmentionTimeoutMs' | 'webmentionMaxBytes'>;

export const WEBMENTION_PATH = '/webmention';
export const SUPPLEMENTS_PATH = `${IIIF_PREFIX}/supplements`;

export type MentionState = 'queued' | 'verifying' | 'accepted' | 'updated' | 'removed' | 'refused';

export interface MentionStatus {
  id: string;
  source: string;
  target: string;
  state: MentionState;
  received: string;
  finished?: string;
  /** Why it was refused. */
  error?: { code: string; detail: string };
  /** The supplement it made or updated. */
  supplement?: string;
}

/** Verifications queued or running at most; more are answered 429. */
const MAX_QUEUE = 100;
const CONCURRENCY = 2;
/** Statuses of received webmentions kept (in memory), newest. */
const STATUSES_KEPT = 1000;
const MAX_REDIRECTS = 3;
const ACCEPT = 'application/ld+json, application/json;q=0.9, text/html;q=0.8, application/xhtml+xml;q=0.8';

function invalid(detail: string): ProtocolError {
  return new ProtocolError('ERR_WEBMENTION_INVALID', detail);
}

/** The asset a target URL of this server names: `{iiif}/manifests/{id}[@v][/canvas/...]` or `{api}/assets/{id}`. */
export function targetAssetId(target: URL, origin: string): string | undefined {
  if (target.origin !== origin) return undefined;
  const path = target.pathname;
  const manifest = new RegExp(`^${IIIF_PREFIX}/manifests/([^/]+)(?:/canvas/[^/]+(?:/.*)?)?$`).exec(path);
  const asset = new RegExp(`^${API_PREFIX}/assets/([^/]+)$`).exec(path);
  const raw = manifest?.[1] ?? asset?.[1];
  if (!raw) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (manifest) id = id.split('@')[0]!;
  return /^[A-Za-z0-9._~-]{1,100}$/.test(id) ? id : undefined;
}

export class WebmentionServices {
  readonly store: WebmentionStore;
  readonly #library: Library;
  readonly #auth: Auth;
  readonly #config: WebmentionConfig;
  readonly #policy: AddressPolicy;
  readonly #log: EventLog;
  readonly #statuses = new Map<string, MentionStatus>();
  readonly #queue: Array<{ status: MentionStatus; assetId: string }> = [];
  readonly #running = new Set<Promise<void>>();
  readonly #controller = new AbortController();
  #closed = false;

  constructor(options: { store: WebmentionStore; library: Library; auth: Auth; config: WebmentionConfig; log: EventLog; policy?: AddressPolicy }) {
    this.store = options.store;
    this.#library = options.library;
    this.#auth = options.auth;
    this.#config = options.config;
    this.#policy = options.policy ?? addressPolicy(options.config.allowPrivateWebmention);
    this.#log = options.log;
  }

  /** Verified supplements of an asset, oldest first. */
  supplementsFor(assetId: string): SupplementRecord[] {
    return this.store.data.supplements.filter((s) => s.assetId === assetId);
  }

  status(id: string): MentionStatus {
    const status = this.#statuses.get(id);
    if (!status) throw new ProtocolError('ERR_WEBMENTION_NOT_FOUND', `no webmention "${id}"`);
    return status;
  }

  /**
   * Checks a webmention and queues its verification. Throws ERR_WEBMENTION_INVALID,
   * ERR_ADDRESS_FORBIDDEN or ERR_RATE_LIMITED, having stored nothing.
   */
  async receive(input: { source: unknown; target: unknown; origin: string; actor: Actor }): Promise<MentionStatus> {
    if (this.#closed) throw new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'shutting down');
    if (typeof input.source !== 'string' || typeof input.target !== 'string') {
      throw invalid('source and target must each be given once');
    }
    if (input.source.length > 2048 || input.target.length > 2048) throw invalid('source and target are at most 2048 characters');
    const source = this.#parse(input.source, 'source');
    const target = this.#parse(input.target, 'target');
    if (source.href === target.href) throw invalid('source and target must differ');
    const assetId = targetAssetId(target, input.origin);
    const asset = assetId ? this.#library.catalog.asset(assetId) : undefined;
    // One answer for unknown, deleted and unreadable assets: no way to probe for private ones.
    if (!asset || asset.deleted || !this.#auth.canRead(input.actor, asset)) {
      throw invalid('target is not a manifest, canvas or asset of this server that accepts webmentions');
    }
    await resolveChecked(source, this.#policy, this.#config.webmentionTimeoutMs);
    if (this.#queue.length + this.#running.size >= MAX_QUEUE) {
      throw new ProtocolError('ERR_RATE_LIMITED', 'too many webmentions waiting for verification; try again later');
    }
    const status: MentionStatus = {
      id: newId(16),
      source: source.href,
      target: target.href,
      state: 'queued',
      received: new Date().toISOString(),
    };
    this.#remember(status);
    this.#queue.push({ status, assetId: asset.id });
    this.#pump();
    return status;
  }

  #parse(value: string, what: string): URL {
    try {
      return parseHttpUrl(value, what);
    } catch (error) {
      throw invalid(error instanceof Error ? error.message : `${what} is not valid`);
    }
  }

  #remember(status: MentionStatus): void {
    this.#statuses.set(status.id, status);
    if (this.#statuses.size > STATUSES_KEPT) {
      const oldest = this.#statuses.keys().next().value;
      if (oldest !== undefined) this.#statuses.delete(oldest);
    }
  }

  #pump(): void {
    while (!this.#closed && this.#running.size < CONCURRENCY && this.#queue.length) {
      const job = this.#queue.shift()!;
      const run = this.#verify(job.status, job.assetId)
        .catch((error: unknown) => this.#log.warn({ err: error, webmention: job.status.id }, 'webmention verification crashed'))
        .finally(() => {
          this.#running.delete(run);
          this.#pump();
        });
      this.#running.add(run);
    }
  }

  /** Resolves when no verification is queued or running (tests). */
  async idle(): Promise<void> {
    while (this.#running.size) await Promise.allSettled([...this.#running]);
  }

  async #verify(status: MentionStatus, assetId: string): Promise<void> {
    status.state = 'verifying';
    const refuse = (code: string, detail: string) => {
      status.state = 'refused';
      status.error = { code, detail };
      this.#log.warn({ webmention: status.id, source: status.source, target: status.target, code, detail }, 'webmention refused');
    };
    const existing = () => this.store.data.supplements.find((s) => s.assetId === assetId && s.source === status.source);
    const remove = async (why: string) => {
      const found = existing();
      if (!found) return false;
      await this.store.mutate((data) => {
        data.supplements = data.supplements.filter((s) => s.id !== found.id);
      });
      status.state = 'removed';
      status.supplement = found.id;
      this.#log.info({ webmention: status.id, source: status.source, supplement: found.id, why }, 'webmention supplement removed');
      return true;
    };
    try {
      let answer;
      try {
        answer = await safeFetch(status.source, {
          headers: { accept: ACCEPT },
          timeoutMs: this.#config.webmentionTimeoutMs,
          maxBytes: this.#config.webmentionMaxBytes,
          maxRedirects: MAX_REDIRECTS,
          policy: this.#policy,
          signal: this.#controller.signal,
        });
      } catch (error) {
        if (this.#closed) return;
        const e = error instanceof ProtocolError ? error : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'source could not be fetched');
        return refuse(e.code, `source: ${e.message}`);
      }
      if (answer.status === 404 || answer.status === 410) {
        if (!(await remove(`source answered ${answer.status}`))) refuse('ERR_WEBMENTION_INVALID', `source answered ${answer.status}`);
        return;
      }
      if (answer.status < 200 || answer.status > 299) return refuse('ERR_UPSTREAM_INVALID', `source answered ${answer.status}`);
      const contentType = String(answer.headers['content-type'] ?? '');
      const kind = kindOf(contentType);
      const text = answer.body.toString('utf8');
      let json: unknown;
      if (kind === 'json') {
        try {
          json = JSON.parse(text);
        } catch {
          return refuse('ERR_UPSTREAM_INVALID', 'source says JSON but is not');
        }
      } else if (kind === 'other') {
        return refuse('ERR_WEBMENTION_INVALID', `source is ${contentType.split(';')[0] || 'untyped'}, not HTML or JSON`);
      }
      if (!linksTo({ kind, text, json, url: answer.url }, status.target)) {
        if (!(await remove('source no longer links to the target'))) refuse('ERR_WEBMENTION_INVALID', 'source does not link to target');
        return;
      }
      const format = contentType.split(';')[0]!.trim().toLowerCase();
      const doc = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
      const isPage = kind === 'json' && (doc.type === 'AnnotationPage' || doc['@type'] === 'sc:AnnotationList');
      const label = kind === 'json' ? plainLabel(doc.label) : plainLabel(htmlTitle(text));
      const now = new Date().toISOString();
      const before = existing();
      const refused = await this.store.mutate((data) => {
        const current = data.supplements.find((s) => s.assetId === assetId && s.source === status.source);
        const record: SupplementRecord = current ?? {
          id: newId(16),
          assetId,
          source: status.source,
          target: status.target,
          kind: 'seeAlso',
          type: 'Dataset',
          format,
          received: now,
          verified: now,
        };
        if (!current) {
          if (data.supplements.filter((s) => s.assetId === assetId).length >= MAX_SUPPLEMENTS_PER_ASSET) return true;
          data.supplements.push(record);
        }
        record.target = status.target;
        record.kind = isPage ? 'annotations' : 'seeAlso';
        record.type = isPage ? 'AnnotationPage' : kind === 'html' ? 'Text' : 'Dataset';
        record.format = format;
        record.verified = now;
        if (label) record.label = label;
        else delete record.label;
        status.supplement = record.id;
        return false;
      });
      if (refused) return refuse('ERR_RATE_LIMITED', `the asset has ${MAX_SUPPLEMENTS_PER_ASSET} supplements already`);
      status.state = before ? 'updated' : 'accepted';
      this.#log.info({ webmention: status.id, source: status.source, supplement: status.supplement }, 'webmention verified: supplement stored');
    } finally {
      status.finished = new Date().toISOString();
    }
  }

  // Publishing -------------------------------------------------------------------------------

  published(id: string): PublishedRecord {
    const record = this.store.data.published.find((p) => p.id === id);
    if (!record) throw new ProtocolError('ERR_WEBMENTION_NOT_FOUND', `no supplement "${id}"`);
    return record;
  }

  publishedList(): readonly PublishedRecord[] {
    return this.store.data.published;
  }

  /** The URL of a published supplement's document. */
  supplementUrl(record: PublishedRecord): string {
    return `${record.origin}${SUPPLEMENTS_PATH}/${record.id}`;
  }

  /** The Presentation 3 document of a published supplement. */
  supplementDocument(record: PublishedRecord): Record<string, unknown> {
    const id = this.supplementUrl(record);
    const manifest = `${record.origin}${IIIF_PREFIX}/manifests/${encodeURIComponent(record.assetId)}`;
    const page: Record<string, unknown> = {
      '@context': 'http://iiif.io/api/presentation/3/context.json',
      id,
      type: 'AnnotationPage',
    };
    if (record.label) page.label = { none: [record.label] };
    page.items = [
      {
        id: `${id}/linking`,
        type: 'Annotation',
        motivation: 'linking',
        body: { id: manifest, type: 'Manifest' },
        target: record.target,
      },
    ];
    return page;
  }

  /** Records a supplement about `target` and sends the webmention (in the background). */
  async publish(input: { assetId: string; target: string; label?: string; origin: string; createdBy?: string }): Promise<PublishedRecord> {
    const target = parseHttpUrl(input.target, 'target');
    if (target.origin === input.origin) throw new ProtocolError('ERR_VALIDATION', 'target must be a resource of another server');
    const record: PublishedRecord = {
      id: newId(16),
      assetId: input.assetId,
      target: target.href,
      origin: input.origin,
      created: new Date().toISOString(),
      send: { state: 'sending' },
    };
    const label = plainLabel(input.label);
    if (label) record.label = label;
    if (input.createdBy) record.createdBy = input.createdBy;
    await this.store.mutate((data) => {
      data.published.push(record);
    });
    this.#track(this.#send(record.id));
    return record;
  }

  /** Withdraws a published supplement: its document answers 410, and the target is told again. */
  async withdraw(id: string): Promise<void> {
    this.published(id);
    await this.store.mutate((data) => {
      const record = data.published.find((p) => p.id === id);
      if (record && !record.deleted) {
        record.deleted = new Date().toISOString();
        record.send = { state: 'sending' };
      }
    });
    this.#track(this.#send(id));
  }

  #track(run: Promise<void>): void {
    const tracked = run
      .catch((error: unknown) => this.#log.warn({ err: error }, 'webmention not sent'))
      .finally(() => this.#running.delete(tracked));
    this.#running.add(tracked);
  }

  async #send(id: string): Promise<void> {
    const record = this.published(id);
    const common = {
      timeoutMs: this.#config.webmentionTimeoutMs,
      policy: this.#policy,
      signal: this.#controller.signal,
    };
    let send: PublishedRecord['send'];
    try {
      const page = await safeFetch(record.target, {
        ...common,
        headers: { accept: 'text/html, application/ld+json;q=0.9, application/json;q=0.9, */*;q=0.1' },
        maxBytes: this.#config.webmentionMaxBytes,
        maxRedirects: MAX_REDIRECTS,
      });
      const html = kindOf(String(page.headers['content-type'] ?? '')) === 'html' ? page.body.toString('utf8') : undefined;
      const endpoint = discoverEndpoint({ linkHeader: page.headers.link, html, url: page.url });
      if (!endpoint) send = { state: 'no-endpoint' };
      else {
        const form = new URLSearchParams({ source: this.supplementUrl(record), target: record.target }).toString();
        const answer = await safeFetch(parseHttpUrl(endpoint, 'webmention endpoint'), {
          ...common,
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: form,
          maxBytes: 64 * 1024,
        });
        const ok = answer.status >= 200 && answer.status < 300;
        send = { state: ok ? 'sent' : 'failed', endpoint, status: answer.status };
      }
    } catch (error) {
      if (this.#closed) return;
      send = { state: 'failed', error: error instanceof ProtocolError ? `${error.code}: ${error.message}` : 'not sent' };
    }
    send.at = new Date().toISOString();
    await this.store.mutate((data) => {
      const current = data.published.find((p) => p.id === id);
      if (current) current.send = send;
    });
    const log = { supplement: id, target: record.target, ...send };
    if (send.state === 'sent') this.#log.info(log, 'webmention sent');
    else this.#log.warn(log, 'webmention not delivered');
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#queue.length = 0;
    this.#controller.abort(new ProtocolError('ERR_SERVICE_UNAVAILABLE', 'shutting down'));
    await this.idle();
    await this.store.flush();
  }
}

export async function openWebmention(
  config: WebmentionConfig,
  services: { library: Library; auth: Auth },
  log: EventLog,
): Promise<WebmentionServices> {
  const store = await openWebmentionStore(config.dataDir);
  return new WebmentionServices({ store, library: services.library, auth: services.auth, config, log });
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Webmention: received supplements and published ones (library and both roles). */
    webmention?: WebmentionServices;
  }
}
