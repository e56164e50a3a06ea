/**
 * The receiving side of this server's webhooks, for whoever consumes them (another server, the
 * agent, a test): verify the Standard Webhooks signature and timestamp, then process each
 * `webhook-id` once. A bad signature or a stale timestamp throws ERR_WEBHOOK_SIGNATURE_INVALID
 * (answer 401, store nothing); a repeat answers `duplicate` (answer 2xx so the sender stops).
 *
 * @example
 *   const receive = createWebhookReceiver({ secret });
 *   const result = receive(request.headers, rawBody);
 *   if (result.status === 'accepted') handle(result.message);
 */
import { ProtocolError } from '../../shared/errors.ts';
import { DEFAULT_TOLERANCE_SECONDS, ReplayGuard, verifyWebhook } from './standard-webhooks.ts';

export interface WebhookMessage {
  type: string;
  timestamp?: string;
  data?: Record<string, unknown>;
  challenge?: string;
}

export type ReceiveResult =
  | { status: 'accepted'; id: string; timestamp: number; message: WebhookMessage }
  | { status: 'duplicate'; id: string };

export interface WebhookReceiverOptions {
  secret: string | readonly string[];
  toleranceSeconds?: number;
  /** Shared between receivers of the same messages; one per receiver by default. */
  guard?: ReplayGuard;
  /** Unix seconds (tests). */
  now?: () => number;
}

export function createWebhookReceiver(options: WebhookReceiverOptions) {
  const toleranceSeconds = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const guard = options.guard ?? new ReplayGuard({ toleranceSeconds });
  return (headers: Record<string, string | string[] | undefined>, body: string | Uint8Array): ReceiveResult => {
    const { id, timestamp } = verifyWebhook({ headers, body, secret: options.secret, toleranceSeconds, now: options.now?.() });
    let message: WebhookMessage;
    try {
      message = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8')) as WebhookMessage;
    } catch (error) {
      throw new ProtocolError('ERR_BAD_REQUEST', 'webhook body is not JSON', { cause: error });
    }
    if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
      throw new ProtocolError('ERR_BAD_REQUEST', 'webhook body has no type');
    }
    // Remembered only once verified, so forged messages cannot fill the guard or shadow real ids.
    if (!guard.firstTime(id)) return { status: 'duplicate', id };
    return { status: 'accepted', id, timestamp, message };
  };
}
