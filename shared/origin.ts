/**
 * Server origins (`https://studio.example`): how servers name each other in discovery
 * documents, tokens (`iss`, `aud`) and configuration.
 */
import { ProtocolError } from './errors.ts';
import {
  checkAuthority,
  checkHost,
  describeType,
  findDisallowedCharacter,
  formatAuthority,
  ipv6Pieces,
  isIPv4Literal,
  quoteInput,
  type ValidationResult,
} from './host.ts';

/** Longest origin accepted: scheme, a 253-character host and a port fit with room to spare. */
export const MAX_ORIGIN_LENGTH = 300;

export interface OriginOptions {
  /** Accept plain `http` for any host, not only loopback ones (development, tests). */
  allowInsecure?: boolean;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

function invalid(input: string, reason: string): ProtocolError {
  return new ProtocolError('ERR_ORIGIN_INVALID', `invalid server origin ${quoteInput(input)}: ${reason}`);
}

/**
 * Whether `host` names this machine: `localhost`, an IPv4 address in 127.0.0.0/8, or the IPv6
 * loopback `[::1]` (also its IPv4-mapped forms `[::ffff:127.x.x.x]`). Brackets around IPv6 are
 * optional; anything that is not a valid host is not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  if (typeof host !== 'string') return false;
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const checked = checkHost(bracketed);
  if (!checked.ok) return false;
  const name = checked.value;
  if (name === 'localhost') return true;
  if (isIPv4Literal(name)) return name.startsWith('127.');
  const pieces = ipv6Pieces(name);
  if (!pieces) return false;
  const zeros = (from: number, to: number) => pieces.slice(from, to).every((p) => p === 0);
  if (zeros(0, 7) && pieces[7] === 1) return true;
  return zeros(0, 5) && pieces[5] === 0xffff && (pieces[6] ?? 0) >> 8 === 127;
}

/**
 * Parses a server origin and returns its normal form.
 *
 * Grammar (checked on the raw string first, then confirmed with `URL`):
 *
 *     origin = scheme "://" host [":" port] ["/"]
 *     scheme = "https" / "http"          ; case-insensitive; http only for loopback hosts
 *     host   = DNS name / IPv4 / "[" IPv6 "]"   ; as in imagine:// URIs
 *
 * No user information, path, query, fragment, backslash or percent-encoding; printable ASCII
 * only; at most 300 characters. The normal form is lowercase with no trailing slash and no
 * default port (443 for https, 80 for http): exactly what `new URL(x).origin` would give.
 *
 * @example
 *   parseOrigin('https://Studio.Example:443/') // 'https://studio.example'
 *   parseOrigin('http://localhost:7420')       // 'http://localhost:7420'
 *   parseOrigin('http://studio.example')       // throws: plain http needs a loopback host
 *   parseOrigin('http://studio.example', { allowInsecure: true }) // 'http://studio.example'
 *
 * @throws ProtocolError `ERR_ORIGIN_INVALID`, its message saying what is wrong.
 */
export function parseOrigin(input: string, options: OriginOptions = {}): string {
  if (typeof input !== 'string') {
    throw new ProtocolError('ERR_ORIGIN_INVALID', `invalid server origin: expected a string, got ${describeType(input)}`);
  }
  if (input === '') throw invalid(input, 'is empty');
  if (input.length > MAX_ORIGIN_LENGTH) {
    throw invalid(input, `is ${input.length} characters long; at most ${MAX_ORIGIN_LENGTH} are allowed`);
  }
  const badChar = findDisallowedCharacter(input);
  if (badChar) throw invalid(input, badChar);
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(input);
  if (!schemeMatch) throw invalid(input, "must start with 'https://' or 'http://'");
  const scheme = (schemeMatch[1] ?? '').toLowerCase();
  if (scheme !== 'https' && scheme !== 'http') {
    throw invalid(input, `scheme ${quoteInput(scheme)} is not allowed; only https and http are`);
  }
  const afterScheme = input.slice(schemeMatch[0].length);
  if (!afterScheme.startsWith('//')) throw invalid(input, `the scheme must be followed by '//'`);
  if (input.includes('\\')) throw invalid(input, "a backslash ('\\') is not allowed");
  if (input.includes('?')) throw invalid(input, "a query ('?') is not allowed");
  if (input.includes('#')) throw invalid(input, "a fragment ('#') is not allowed");
  if (input.includes('%')) throw invalid(input, "percent-encoding ('%') is not allowed");
  const rest = afterScheme.slice(2);
  const slash = rest.indexOf('/');
  const rawAuthority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (rawAuthority.includes('@')) throw invalid(input, "user information ('@') is not allowed");
  if (path !== '' && path !== '/') throw invalid(input, `a path (${quoteInput(path)}) is not allowed`);
  const authority = checkAuthority(rawAuthority);
  if (!authority.ok) throw invalid(input, authority.reason);
  const { host, port } = authority.value;
  if (scheme === 'http' && !options.allowInsecure && !isLoopbackHost(host)) {
    throw invalid(input, 'plain http is only allowed for loopback hosts (localhost, 127.0.0.0/8, [::1]); use https');
  }
  const keptPort = port === DEFAULT_PORTS[scheme] ? undefined : port;
  const normal = `${scheme}://${formatAuthority(keptPort === undefined ? { host } : { host, port: keptPort })}`;
  // Second opinion from the WHATWG parser every runtime ships: the two must agree.
  let whatwg: string | undefined;
  try {
    whatwg = new URL(normal).origin;
  } catch {
    whatwg = undefined;
  }
  if (whatwg !== normal) throw invalid(input, 'the URL parser reads this origin differently');
  return normal;
}

/** Like `parseOrigin`, but answers with a result instead of throwing. */
export function validateOrigin(input: unknown, options: OriginOptions = {}): ValidationResult<string> {
  try {
    return { ok: true, value: parseOrigin(input as string, options) };
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error };
    throw error;
  }
}

/** Whether `input` is a valid server origin (normal form or not). */
export function isValidOrigin(input: unknown, options: OriginOptions = {}): boolean {
  return validateOrigin(input, options).ok;
}

/** Throws `ERR_ORIGIN_INVALID` unless `input` is a valid server origin. */
export function ensureValidOrigin(input: unknown, options: OriginOptions = {}): asserts input is string {
  parseOrigin(input as string, options);
}
