/**
 * Webhooks of a library server: the events store, the dispatcher that follows the change feed,
 * the delivery worker, and subscriptions with intent verification. On subscribing, the URL
 * receives a signed `{"type":"webhook.challenge","challenge":...}` and must answer 200 with
 * JSON `{"challenge":...}` echoing it, so nobody can point this server's events at a third
 * party; otherwise nothing is stored (ERR_WEBHOOK_VERIFICATION_FAILED).
 */
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../../shared/errors.ts';
import type { ChangeEventType } from '../../shared/schemas/changes.ts';
import type { Config } from '../config.ts';
import type { Library } from '../library/library.ts';
import { newId } from '../library/ids.ts';
import { Dispatcher } from './dispatcher.ts';
import { openEventsStore, type EventsStore, type SubscriptionRecord } from './outbox.ts';
import { addressPolicy, parseHttpUrl, safeFetch, type AddressPolicy } from './safe-fetch.ts';
import { generateSecret, nowSeconds, signWebhook } from './standard-webhooks.ts';
import { DeliveryWorker, type EventLog } from './worker.ts';

export type EventsConfig = Pick<
  Config,
  'dataDir' | 'allowPrivateWebhooks' | 'webhookTimeoutMs' | 'webhookRetryBaseMs' | 'webhookRetryMaxMs' | 'webhookMaxAttempts'
>;

export interface NewSubscription {
  url: string;
  events: ChangeEventType[];
  /** A secret the receiver chose (`whsec_...`); generated when absent. */
  secret?: string;
  description?: string;
  /** Origin the payloads' URIs are made with. */
  origin: string;
  createdBy?: string;
  /** A peer server subscribing for itself (its origin). */
  peer?: string;
  /** Deliver only changes of this collection and its assets. */
  collection?: string;
}

/** Largest challenge answer read, bytes. */
const MAX_CHALLENGE_ANSWER = 16 * 1024;

export class EventServices {
  readonly store: EventsStore;
  readonly dispatcher: Dispatcher;
  readonly worker: DeliveryWorker;
  readonly #config: EventsConfig;
  readonly #policy: AddressPolicy;

  constructor(options: { store: EventsStore; library: Library; config: EventsConfig; log: EventLog; policy?: AddressPolicy }) {
    this.store = options.store;
    this.#config = options.config;
    this.#policy = options.policy ?? addressPolicy(options.config.allowPrivateWebhooks);
    this.worker = new DeliveryWorker({
      store: options.store,
      policy: this.#policy,
      timeoutMs: options.config.webhookTimeoutMs,
      retryBaseMs: options.config.webhookRetryBaseMs,
      retryMaxMs: options.config.webhookRetryMaxMs,
      maxAttempts: options.config.webhookMaxAttempts,
      log: options.log,
    });
    this.dispatcher = new Dispatcher({ store: options.store, library: options.library, onEnqueued: () => this.worker.kick() });
  }

  async start(): Promise<void> {
    await this.dispatcher.start();
    this.worker.kick();
  }

  subscriptions(): readonly SubscriptionRecord[] {
    return this.store.data.subscriptions;
  }

  subscription(id: string): SubscriptionRecord {
    const sub = this.store.data.subscriptions.find((s) => s.id === id);
    if (!sub) throw new ProtocolError('ERR_WEBHOOK_NOT_FOUND', `no webhook subscription "${id}"`);
    return sub;
  }

  /** Verifies the URL by challenge, then stores the subscription. Throws before storing anything. */
  async subscribe(input: NewSubscription): Promise<SubscriptionRecord> {
    const url = parseHttpUrl(input.url, 'webhook url');
    const events = [...new Set(input.events)];
    if (events.length === 0) throw new ProtocolError('ERR_VALIDATION', 'events must name at least one event type');
    const secret = input.secret ?? generateSecret();
    await this.#challenge(url, secret);
    const record: SubscriptionRecord = {
      id: `wh_${newId(16)}`,
      url: url.href,
      events,
      secret,
      origin: input.origin,
      created: new Date().toISOString(),
      afterSeq: 0,
      status: 'active',
    };
    if (input.description) record.description = input.description;
    if (input.createdBy) record.createdBy = input.createdBy;
    if (input.peer) record.peer = input.peer;
    if (input.collection) record.collection = input.collection;
    await this.store.mutate((data) => {
      // From the feed's position at this write: whatever is dispatched later is delivered.
      record.afterSeq = Math.max(data.dispatchedSeq, 0);
      data.subscriptions.push(record);
    });
    return record;
  }

  /** Removes a subscription; its pending deliveries are cancelled. */
  async unsubscribe(id: string): Promise<void> {
    this.subscription(id);
    await this.store.mutate((data) => {
      data.subscriptions = data.subscriptions.filter((s) => s.id !== id);
      const now = new Date().toISOString();
      for (const d of data.deliveries) {
        if (d.subscriptionId === id && d.status === 'pending') {
          d.status = 'cancelled';
          d.finished = now;
          delete d.nextAttempt;
        }
      }
    });
  }

  deliveries(subscriptionId: string) {
    this.subscription(subscriptionId);
    return this.store.data.deliveries.filter((d) => d.subscriptionId === subscriptionId);
  }

  async #challenge(url: URL, secret: string): Promise<void> {
    const challenge = randomBytes(24).toString('base64url');
    const body = JSON.stringify({ type: 'webhook.challenge', challenge });
    const headers = signWebhook({ id: `msg_challenge_${newId(16)}`, timestamp: nowSeconds(), body, secret });
    const failed = (why: string, cause?: unknown) =>
      new ProtocolError('ERR_WEBHOOK_VERIFICATION_FAILED', `${url.origin} did not confirm the subscription: ${why}`, { cause });
    let answer;
    try {
      answer = await safeFetch(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', accept: 'application/json' },
        body,
        timeoutMs: this.#config.webhookTimeoutMs,
        maxBytes: MAX_CHALLENGE_ANSWER,
        policy: this.#policy,
      });
    } catch (error) {
      if (error instanceof ProtocolError && (error.code === 'ERR_ADDRESS_FORBIDDEN' || error.code === 'ERR_VALIDATION')) throw error;
      throw failed(error instanceof ProtocolError ? `${error.code}: ${error.message}` : 'no answer', error);
    }
    if (answer.status !== 200) throw failed(`it answered ${answer.status} to the challenge (200 expected)`);
    let echoed: unknown;
    try {
      echoed = (JSON.parse(answer.body.toString('utf8')) as { challenge?: unknown }).challenge;
    } catch {
      throw failed('its answer to the challenge is not JSON');
    }
    if (echoed !== challenge) throw failed('its answer does not echo the challenge');
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
    await this.worker.close();
    await this.store.flush();
  }
}

export async function openEvents(config: EventsConfig, library: Library, log: EventLog): Promise<EventServices> {
  const store = await openEventsStore(config.dataDir);
  const events = new EventServices({ store, library, config, log });
  await events.start();
  return events;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Webhook subscriptions and their outbox (library and both roles). */
    events?: EventServices;
  }
}
