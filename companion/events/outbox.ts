/**
 * The events store, `<data>/events/outbox.json`: webhook subscriptions, the outbox of
 * deliveries, and `dispatchedSeq`, the last change of the catalog's feed turned into
 * deliveries. The feed is the truth and the outbox follows it, so a change committed just
 * before the process died is dispatched after the restart; a delivery in flight then is sent
 * again with the same `webhook-id` (at least once: receivers de-duplicate).
 */
import { join } from 'node:path';
import type { ChangeEventType } from '../../shared/schemas/changes.ts';
import { openJsonStore, openMemoryJsonStore, type JsonStore } from './json-store.ts';

export const EVENTS_DIR = 'events';
export const OUTBOX_FILE = 'outbox.json';
/** Finished deliveries (delivered, failed, cancelled) kept for inspection, newest. */
export const FINISHED_KEPT = 1000;
/** Attempts kept per delivery, latest. */
export const ATTEMPTS_KEPT = 10;

export interface SubscriptionRecord {
  /** `wh_` + 16 base32 characters. */
  id: string;
  url: string;
  events: ChangeEventType[];
  /** `whsec_...`: shown once, to its creator; kept here to sign. */
  secret: string;
  /** Origin the `imagine://` URIs of its payloads are made with (where it was created). */
  origin: string;
  description?: string;
  created: string;
  createdBy?: string;
  /** Changes up to this sequence number came before the subscription and are not delivered. */
  afterSeq: number;
  /** A peer server's own subscription (its origin): only that peer may end it (federation mirrors). */
  peer?: string;
  /** Only changes of this collection and of assets in it are delivered (peer subscriptions). */
  collection?: string;
  status: 'active' | 'disabled';
  disabled?: string;
  disabledReason?: string;
}

export interface AttemptRecord {
  at: string;
  /** HTTP status, when the callback answered. */
  status?: number;
  /** Error code when it did not (timeout, refused address, connection). */
  error?: string;
  ms: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'cancelled';

export interface DeliveryRecord {
  /** The `webhook-id`: `msg_<subscription>_<seq>`, the same on every attempt. */
  id: string;
  subscriptionId: string;
  seq: number;
  type: ChangeEventType;
  /** The JSON body, fixed when enqueued so every attempt signs the same bytes. */
  body: string;
  status: DeliveryStatus;
  created: string;
  /** Number of attempts made. */
  attemptCount: number;
  attempts: AttemptRecord[];
  /** When the next attempt is due (pending only). */
  nextAttempt?: string;
  finished?: string;
}

export interface EventsData {
  schemaVersion: 1;
  subscriptions: SubscriptionRecord[];
  deliveries: DeliveryRecord[];
  /** Last change sequence number turned into deliveries; -1 until the store first meets a catalog. */
  dispatchedSeq: number;
}

export type EventsStore = JsonStore<EventsData>;

function emptyEvents(): EventsData {
  return { schemaVersion: 1, subscriptions: [], deliveries: [], dispatchedSeq: -1 };
}

export async function openEventsStore(dataDir: string): Promise<EventsStore> {
  const store = await openJsonStore(join(dataDir, EVENTS_DIR, OUTBOX_FILE), emptyEvents);
  if (store.data.schemaVersion !== 1 || !Array.isArray(store.data.deliveries)) {
    throw new Error(`${join(dataDir, EVENTS_DIR, OUTBOX_FILE)} has an unknown layout`);
  }
  return store;
}

export function openMemoryEventsStore(): Promise<EventsStore> {
  return openMemoryJsonStore(emptyEvents);
}

/** Drops the oldest finished deliveries beyond FINISHED_KEPT (pending ones are never dropped). */
export function pruneFinished(data: EventsData): void {
  let finished = 0;
  for (const d of data.deliveries) if (d.status !== 'pending') finished++;
  if (finished <= FINISHED_KEPT) return;
  let drop = finished - FINISHED_KEPT;
  data.deliveries = data.deliveries.filter((d) => {
    if (drop > 0 && d.status !== 'pending') {
      drop--;
      return false;
    }
    return true;
  });
}
