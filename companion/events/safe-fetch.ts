/**
 * Outbound HTTP for URLs a stranger chose (webhook callbacks, webmention sources and targets):
 * safe against server-side request forgery. For each hop the host is resolved once (every
 * address, `dns.lookup` with `all`), every address must pass the address policy (by default:
 * no loopback, private, link-local, multicast, reserved or documentation range), and the socket
 * connects to the address that was checked, so a second DNS answer cannot switch it (rebinding).
 * One deadline covers resolution, connection, headers and body; the body is capped; redirects
 * are followed only when allowed, at most `maxRedirects`, and each new URL is checked again.
 *
 * Errors are ProtocolErrors: ERR_VALIDATION (not an http(s) URL), ERR_ADDRESS_FORBIDDEN,
 * ERR_UPSTREAM_UNREACHABLE, ERR_UPSTREAM_TIMEOUT, ERR_UPSTREAM_INVALID (too large, too many
 * redirects).
 *
 * @example
 *   const res = await safeFetch('https://example.org/page', { timeoutMs: 5000, maxBytes: 1 << 20 });
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { ProtocolError } from '../../shared/errors.ts';
import { SOFTWARE } from '../software.ts';

/** Ranges no stranger may make this server call (IANA special-purpose registries). */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (could reach any IPv4 address)
  ['64:ff9b:1::', 48], // local NAT64
  ['100::', 64], // discard
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds any IPv4 address)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/** Whether an IP address is publicly routable (IPv4-mapped IPv6 is judged as its IPv4). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6 && /^::ffff:/i.test(address)) {
    const v4 = address.slice(7);
    if (isIP(v4) === 4) return !BLOCKED.check(v4, 'ipv4');
  }
  return !BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export type AddressPolicy = (address: string) => boolean;

/** Every address is allowed (explicit development settings: tests on loopback). */
export const ALLOW_ALL: AddressPolicy = () => true;

/** The policy for a config switch: public addresses only unless private ones are allowed. */
export function addressPolicy(allowPrivate: boolean): AddressPolicy {
  return allowPrivate ? ALLOW_ALL : isPublicAddress;
}

/** An absolute http(s) URL without credentials; throws ERR_VALIDATION otherwise. */
export function parseHttpUrl(input: string, what = 'URL'): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ProtocolError('ERR_VALIDATION', `${what} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProtocolError('ERR_VALIDATION', `${what} must be http or https`);
  }
  if (url.username || url.password) throw new ProtocolError('ERR_VALIDATION', `${what} must not carry credentials`);
  if (!url.hostname) throw new ProtocolError('ERR_VALIDATION', `${what} has no host`);
  return url;
}

/** The host of a URL as a resolver or socket wants it (IPv6 without brackets). */
function bareHost(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * Resolves the URL's host and checks every address against the policy. Returns the address to
 * connect to. Throws ERR_ADDRESS_FORBIDDEN or ERR_UPSTREAM_UNREACHABLE.
 */
export async function resolveChecked(url: URL, policy: AddressPolicy, timeoutMs?: number): Promise<{ address: string; family: 4 | 6 }> {
  const host = bareHost(url);
  let addresses: { address: string; family: number }[];
  const literal = isIP(host);
  if (literal) addresses = [{ address: host, family: literal }];
  else {
    const resolving = lookup(host, { all: true, verbatim: true });
    try {
      // getaddrinfo cannot be cancelled; a deadline stops the wait for it.
      addresses = timeoutMs === undefined ? await resolving : await raceAbort(resolving, AbortSignal.timeout(timeoutMs));
    } catch (error) {
      if (error instanceof ProtocolError) throw new ProtocolError('ERR_UPSTREAM_TIMEOUT', `resolving ${host} took more than ${timeoutMs} ms`);
      throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `cannot resolve ${host}`, { cause: error });
    }
  }
  if (addresses.length === 0) throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${host} has no address`);
  const refused = addresses.find((a) => !policy(a.address));
  if (refused) {
    throw new ProtocolError('ERR_ADDRESS_FORBIDDEN', `${host} resolves to ${refused.address}, a private or reserved address`, {
      extensions: { host },
    });
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

export interface SafeFetchOptions {
  method?: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Deadline of the whole exchange, redirects included, milliseconds. */
  timeoutMs: number;
  /** Largest response body kept, bytes; larger answers fail with ERR_UPSTREAM_INVALID. */
  maxBytes: number;
  /** Redirects followed (GET and HEAD only); 0 = a redirect is the answer. */
  maxRedirects?: number;
  /** Which resolved addresses may be called; public ones only by default. */
  policy?: AddressPolicy;
  signal?: AbortSignal;
}

export interface SafeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export async function safeFetch(input: string | URL, options: SafeFetchOptions): Promise<SafeResponse> {
  const policy = options.policy ?? isPublicAddress;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new ProtocolError('ERR_UPSTREAM_TIMEOUT', `no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let url = typeof input === 'string' ? parseHttpUrl(input) : input;
    const method = options.method ?? 'GET';
    for (let redirects = 0; ; redirects++) {
      const target = await raceAbort(resolveChecked(url, policy), controller.signal);
      const response = await exchange(url, target, method, options, controller.signal);
      const location = response.headers.location;
      if (REDIRECTS.has(response.status) && location && method !== 'POST' && (options.maxRedirects ?? 0) > 0) {
        if (redirects >= (options.maxRedirects ?? 0)) {
          throw new ProtocolError('ERR_UPSTREAM_INVALID', `more than ${options.maxRedirects} redirects`);
        }
        url = parseHttpUrl(new URL(location, url).href, 'redirect location');
        continue;
      }
      return { ...response, url: url.href };
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (error) => (signal.removeEventListener('abort', onAbort), reject(error)),
    );
  });
}

function abortError(signal: AbortSignal): ProtocolError {
  const reason: unknown = signal.reason;
  return reason instanceof ProtocolError ? reason : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'request aborted', { cause: reason });
}

function exchange(
  url: URL,
  target: { address: string; family: 4 | 6 },
  method: string,
  options: SafeFetchOptions,
  signal: AbortSignal,
): Promise<Omit<SafeResponse, 'url'>> {
  // The socket connects to the checked address, whatever the resolver would answer now; the
  // name stays in Host and in TLS (SNI, certificate check).
  const pinned: LookupFunction = (_hostname, opts, callback) => {
    if ((opts as { all?: boolean }).all) (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const headers: Record<string, string> = {
    'user-agent': `${SOFTWARE.name}/${SOFTWARE.version}`,
    ...options.headers,
    host: url.host,
  };
  if (body) headers['content-length'] = String(body.length);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const req = send({
      protocol: url.protocol,
      hostname: bareHost(url),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      method,
      headers,
      lookup: pinned,
      agent: false,
      signal,
    });
    req.on('error', (error) => reject(signal.aborted ? abortError(signal) : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${url.host}: ${(error as Error).message}`, { cause: error })));
    req.on('response', (res: IncomingMessage) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > options.maxBytes) {
        res.destroy();
        return reject(new ProtocolError('ERR_UPSTREAM_INVALID', `answer of ${declared} bytes is larger than ${options.maxBytes}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) {
          res.destroy();
          reject(new ProtocolError('ERR_UPSTREAM_INVALID', `answer is larger than ${options.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => reject(signal.aborted ? abortError(signal) : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'answer cut off', { cause: error })));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('close', () => {
        if (!res.complete) reject(signal.aborted ? abortError(signal) : new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'answer cut off'));
      });
    });
    req.end(body);
  });
}
