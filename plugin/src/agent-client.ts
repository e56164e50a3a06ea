/**
 * The panel's typed client of the companion agent's local API (`/agent/v1`, contract in
 * shared/schemas/agent.ts). The panel talks to nothing else: remote search, thumbnails and
 * downloads all go through the agent, so the UXP manifest only needs the agent's loopback origin.
 *
 * - Base URL: the page's own origin in the browser preview; `http://127.0.0.1:7420` in UXP
 *   unless the user set another (settings.ts).
 * - Every call carries the pairing token as `Authorization: Bearer`. Thumbnail URLs come
 *   signed by the agent, so `<img>` tags load them without it.
 * - Failures are `ProtocolError`s the screens `switch` on: a problem document keeps its code
 *   (`fromProblem`); no answer at all is `ERR_AGENT_NOT_RUNNING`; something that is not the
 *   agent answering is `ERR_UPSTREAM_INVALID`.
 *
 * Only types are imported from shared/schemas (the schemas themselves would pull TypeBox into
 * the bundle); shared/errors.ts is plain code.
 */
import { PROBLEM_CONTENT_TYPE, ProtocolError, fromProblem } from '../../shared/errors.ts';
import type {
  AddConnectionRequest,
  AgentAsset,
  AgentSearchPage,
  AgentStatus,
  Checkout,
  CheckoutRequest,
  Connection,
  IiifSource,
  PushRequest,
  QueueItem,
  ResolveConflictRequest,
  SyncStatus,
  UpdateConnectionRequest,
  WorkflowPolicy,
} from '../../shared/schemas/agent.ts';
import type { SearchQuery } from '../../shared/schemas/asset.ts';

/** Same as AGENT_PREFIX in shared/schemas/agent.ts (kept here so the bundle stays free of TypeBox). */
export const AGENT_API = '/agent/v1';
export const DEFAULT_AGENT_URL = 'http://127.0.0.1:7420';

export interface AgentClientOptions {
  /** The agent's origin, e.g. `http://127.0.0.1:7420`. */
  baseUrl: string;
  /** The pairing token (`imagine pair`). */
  token?: string;
  fetch?: typeof fetch;
  /** Time allowed for one call, milliseconds (default 20 000). */
  timeoutMs?: number;
}

/** A search through the agent: the protocol's query, optionally limited to one connection. */
export interface AgentSearchQuery extends SearchQuery {
  connection?: string;
}

interface CallOptions {
  method?: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  timeoutMs?: number;
}

export class AgentClient {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  constructor(options: AgentClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.#fetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
    this.#timeoutMs = options.timeoutMs ?? 20_000;
  }

  /** An absolute URL for an agent-relative one (thumbnails); other URLs are returned as they are. */
  url(relative: string): string {
    return relative.startsWith('/') ? this.baseUrl + relative : relative;
  }

  status(): Promise<AgentStatus> {
    return this.#call('/status');
  }

  async connections(): Promise<Connection[]> {
    return (await this.#call<{ items: Connection[] }>('/connections')).items;
  }

  addConnection(request: AddConnectionRequest): Promise<Connection> {
    return this.#call('/connections', { method: 'POST', json: request, timeoutMs: 30_000 });
  }

  /** A new token (checked by the agent first; `null` to drop it) and/or name, in place. */
  updateConnection(id: string, request: UpdateConnectionRequest): Promise<Connection> {
    return this.#call(`/connections/${segment(id)}`, { method: 'PATCH', json: request, timeoutMs: 30_000 });
  }

  async removeConnection(id: string): Promise<void> {
    await this.#call(`/connections/${segment(id)}`, { method: 'DELETE' });
  }

  search(query: AgentSearchQuery): Promise<AgentSearchPage> {
    return this.#call('/search', { query: { ...query } });
  }

  asset(connection: string, id: string): Promise<AgentAsset> {
    return this.#call(`/assets/${segment(connection)}/${segment(id)}`);
  }

  resolve(uri: string): Promise<AgentAsset> {
    return this.#call('/resolve', { query: { uri } });
  }

  iiif(url: string): Promise<IiifSource> {
    return this.#call('/iiif', { query: { url }, timeoutMs: 30_000 });
  }

  policy(connection: string): Promise<WorkflowPolicy> {
    return this.#call(`/policy/${segment(connection)}`);
  }

  checkout(request: CheckoutRequest): Promise<Checkout> {
    return this.#call('/checkouts', { method: 'POST', json: request, timeoutMs: 60_000 });
  }

  async checkouts(): Promise<Checkout[]> {
    return (await this.#call<{ items: Checkout[] }>('/checkouts')).items;
  }

  getCheckout(id: string): Promise<Checkout> {
    return this.#call(`/checkouts/${segment(id)}`);
  }

  /** Hands a checkout's file to the agent's durable queue; answers once it is on disk. */
  push(checkoutId: string, request: PushRequest): Promise<QueueItem> {
    return this.#call(`/checkouts/${segment(checkoutId)}/push`, { method: 'POST', json: request, timeoutMs: 60_000 });
  }

  async queue(): Promise<QueueItem[]> {
    return (await this.#call<{ items: QueueItem[] }>('/queue')).items;
  }

  queueItem(id: string): Promise<QueueItem> {
    return this.#call(`/queue/${segment(id)}`);
  }

  retry(id: string): Promise<QueueItem> {
    return this.#call(`/queue/${segment(id)}/retry`, { method: 'POST', json: {} });
  }

  resolveConflict(id: string, request: ResolveConflictRequest): Promise<QueueItem> {
    return this.#call(`/queue/${segment(id)}/resolve`, { method: 'POST', json: request });
  }

  async sync(): Promise<SyncStatus[]> {
    return (await this.#call<{ items: SyncStatus[] }>('/sync')).items;
  }

  async #call<T>(path: string, options: CallOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + AGENT_API + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: `application/json, ${PROBLEM_CONTENT_TYPE}` };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Raced as well as aborted: a fetch that ignores its signal (older UXP) still times out.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller?.abort();
        reject(notRunning(this.baseUrl, `did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
    });
    try {
      const exchange = async () => {
        let response: Response;
        try {
          response = await this.#fetch(url.href, {
            method: options.method ?? 'GET',
            headers,
            body: options.json === undefined ? undefined : JSON.stringify(options.json),
            signal: controller?.signal,
          });
        } catch (error) {
          throw notRunning(this.baseUrl, 'is not answering', error);
        }
        return readAnswer<T>(response);
      };
      return await Promise.race([exchange(), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function notRunning(baseUrl: string, what: string, cause?: unknown): ProtocolError {
  return new ProtocolError('ERR_AGENT_NOT_RUNNING', `The Imagine companion at ${baseUrl} ${what}.`, { cause });
}

async function readAnswer<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const type = (response.headers.get('content-type') ?? '').toLowerCase();
  const text = await response.text();
  const isJson = type.includes('json');
  let body: unknown;
  if (isJson && text !== '') {
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new ProtocolError('ERR_UPSTREAM_INVALID', 'The companion answered with broken JSON.', { cause: error });
    }
  }
  if (response.ok) {
    if (!isJson) {
      throw new ProtocolError('ERR_UPSTREAM_INVALID', `Something other than the Imagine companion answered (${type || 'no content type'}).`);
    }
    return body as T;
  }
  if (isJson && body && typeof body === 'object') return Promise.reject(fromProblem(body, response.status));
  throw new ProtocolError('ERR_UPSTREAM_ERROR', `The companion answered ${response.status}.`, {
    status: response.status,
    extensions: { remoteStatus: response.status },
  });
}

function segment(value: string): string {
  return encodeURIComponent(value);
}
