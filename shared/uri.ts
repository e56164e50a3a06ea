/**
 * `imagine://` URIs: the stable name of an image, a collection or one version of an image,
 * independent of the HTTP URLs a server answers on.
 */
import { ProtocolError } from './errors.ts';
import {
  checkAuthority,
  describeType,
  findDisallowedCharacter,
  formatAuthority,
  quoteInput,
  type ValidationResult,
} from './host.ts';
import { parseOrigin } from './origin.ts';

export const URI_SCHEME = 'imagine://';
/** Longest URI accepted, checked before anything else. */
export const MAX_URI_LENGTH = 2048;
export const MAX_ID_LENGTH = 128;
export const MAX_VERSION_LENGTH = 100;

/** The resource types a URI can name. New types are added here, never renamed. */
export const URI_TYPES = ['images', 'collections'] as const;
export type UriType = (typeof URI_TYPES)[number];

export interface ImagineUri {
  /** `host` or `host:port`, normalised (lowercase host, canonical IPv6). */
  authority: string;
  host: string;
  port?: number;
  type: UriType;
  /** Case-sensitive id of the resource. */
  id: string;
  /** Version id, when the URI addresses one version (`...@v2`). */
  version?: string;
}

/** The parts `formatUri` assembles: an `authority`, or a `host` with an optional `port`. */
export type UriParts = { type: UriType; id: string; version?: string } & (
  | { authority: string }
  | { host: string; port?: number }
);

const ID_CHARS = /^[A-Za-z0-9._~-]+$/;

function invalid(input: string, reason: string): ProtocolError {
  return new ProtocolError('ERR_URI_INVALID', `invalid imagine:// URI ${quoteInput(input)}: ${reason}`);
}

/** Whether `type` is one of `URI_TYPES`. */
export function isKnownUriType(type: unknown): type is UriType {
  return typeof type === 'string' && (URI_TYPES as readonly string[]).includes(type);
}

/** Why `segment` is not a valid id or version id, or undefined when it is. */
function checkIdSegment(what: 'id' | 'version', segment: string, max: number): string | undefined {
  if (segment === '') return `${what} is empty`;
  if (segment.length > max) return `${what} is ${segment.length} characters long; at most ${max} are allowed`;
  if (segment === '.' || segment === '..') return `${what} must not be ${quoteInput(segment)}`;
  if (!ID_CHARS.test(segment)) {
    const bad = /[^A-Za-z0-9._~-]/.exec(segment)?.[0] ?? '';
    return `${what} contains ${quoteInput(bad)}; only A-Z, a-z, 0-9, '.', '_', '~' and '-' are allowed`;
  }
  return undefined;
}

/**
 * Parses an `imagine://` URI.
 *
 * Grammar (strict: no query, fragment, percent-encoding, user information, empty segment or
 * trailing slash; at most 2048 characters, printable ASCII only, both checked first):
 *
 *     uri       = "imagine://" authority "/" type "/" id ["@" version]
 *     authority = host [":" port]            ; host: DNS name, IPv4, or "[" IPv6 "]"
 *     type      = "images" / "collections"
 *     id        = 1*128(ALPHA / DIGIT / "." / "_" / "~" / "-")   ; not "." or ".."
 *     version   = 1*100(ALPHA / DIGIT / "." / "_" / "~" / "-")   ; not "." or ".."
 *
 * The host is case-insensitive and comes back lowercase; type, id and version are
 * case-sensitive.
 *
 * @example
 *   parseUri('imagine://Studio.Example/images/abc123@v2')
 *   // { authority: 'studio.example', host: 'studio.example', type: 'images', id: 'abc123', version: 'v2' }
 *   parseUri('imagine://localhost:7420/collections/summer')
 *   // { authority: 'localhost:7420', host: 'localhost', port: 7420, type: 'collections', id: 'summer' }
 *
 * @throws ProtocolError `ERR_URI_INVALID`, its message saying what is wrong.
 */
export function parseUri(input: string): ImagineUri {
  if (typeof input !== 'string') {
    throw new ProtocolError('ERR_URI_INVALID', `invalid imagine:// URI: expected a string, got ${describeType(input)}`);
  }
  if (input === '') throw invalid(input, 'is empty');
  if (input.length > MAX_URI_LENGTH) {
    throw invalid(input, `is ${input.length} characters long; at most ${MAX_URI_LENGTH} are allowed`);
  }
  const badChar = findDisallowedCharacter(input);
  if (badChar) throw invalid(input, badChar);
  if (!input.startsWith(URI_SCHEME)) {
    if (input.toLowerCase().startsWith(URI_SCHEME)) throw invalid(input, "the scheme must be lowercase 'imagine://'");
    throw invalid(input, "must start with 'imagine://'");
  }
  if (input.includes('?')) throw invalid(input, "a query ('?') is not allowed");
  if (input.includes('#')) throw invalid(input, "a fragment ('#') is not allowed");
  if (input.includes('%')) throw invalid(input, "percent-encoding ('%') is not allowed");

  const segments = input.slice(URI_SCHEME.length).split('/');
  const [rawAuthority = '', type = '', idAndVersion = ''] = segments;
  const authority = checkAuthority(rawAuthority);
  if (!authority.ok) throw invalid(input, authority.reason);
  if (segments.length < 3) throw invalid(input, 'must have a type and an id after the authority');
  if (segments.length > 3) {
    if (segments.length === 4 && segments[3] === '') throw invalid(input, "must not end with '/'");
    if (segments.some((s) => s === '')) throw invalid(input, 'has an empty path segment');
    throw invalid(input, `has ${segments.length - 1} path segments; exactly 2 (type and id) are allowed`);
  }
  if (type === '') throw invalid(input, 'has an empty path segment where the type belongs');
  if (!isKnownUriType(type)) {
    throw invalid(input, `unknown type ${quoteInput(type)}; expected one of ${URI_TYPES.join(', ')}`);
  }
  if (idAndVersion === '') throw invalid(input, 'id is empty');
  const at = idAndVersion.indexOf('@');
  const id = at === -1 ? idAndVersion : idAndVersion.slice(0, at);
  const version = at === -1 ? undefined : idAndVersion.slice(at + 1);
  const idProblem = checkIdSegment('id', id, MAX_ID_LENGTH);
  if (idProblem) throw invalid(input, idProblem);
  if (version !== undefined) {
    if (version.includes('@')) throw invalid(input, "has more than one '@' after the id");
    const versionProblem = checkIdSegment('version', version, MAX_VERSION_LENGTH);
    if (versionProblem) throw invalid(input, versionProblem);
  }

  const { host, port } = authority.value;
  return {
    authority: formatAuthority(authority.value),
    host,
    ...(port === undefined ? {} : { port }),
    type,
    id,
    ...(version === undefined ? {} : { version }),
  };
}

/** Like `parseUri`, but answers with a result instead of throwing. */
export function validateUri(input: unknown): ValidationResult<ImagineUri> {
  try {
    return { ok: true, value: parseUri(input as string) };
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error };
    throw error;
  }
}

/** Whether `input` is a valid `imagine://` URI. */
export function isValidUri(input: unknown): boolean {
  return validateUri(input).ok;
}

/** Throws `ERR_URI_INVALID` unless `input` is a valid `imagine://` URI. */
export function ensureValidUri(input: unknown): asserts input is string {
  parseUri(input as string);
}

/**
 * Writes a URI from its parts, in normal form. The result is parsed again, so parts that
 * would not survive the round trip (an unknown type, an id with '/', a bad port) throw.
 * When both `authority` and `host` are given, `authority` wins; a bare IPv6 `host` is
 * bracketed.
 *
 * @example
 *   formatUri({ host: 'Studio.Example', type: 'images', id: 'abc123', version: 'v2' })
 *   // 'imagine://studio.example/images/abc123@v2'
 *
 * @throws ProtocolError `ERR_URI_INVALID`
 */
export function formatUri(parts: UriParts): string {
  let authority: string;
  if ('authority' in parts && parts.authority !== undefined) {
    authority = parts.authority;
  } else {
    const { host, port } = parts as { host: string; port?: number };
    const bracketed = typeof host === 'string' && host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    authority = port === undefined ? String(bracketed) : `${bracketed}:${port}`;
  }
  const version = parts.version === undefined ? '' : `@${parts.version}`;
  const uri = parseUri(`${URI_SCHEME}${authority}/${parts.type}/${parts.id}${version}`);
  return `${URI_SCHEME}${uri.authority}/${uri.type}/${uri.id}${uri.version === undefined ? '' : `@${uri.version}`}`;
}

/**
 * The URI authority of a server origin: its host, with the port unless it is the scheme's
 * default (443 for https, 80 for http).
 *
 * @example
 *   uriAuthorityFromOrigin('https://A.Example:443') // 'a.example'
 *   uriAuthorityFromOrigin('http://127.0.0.1:7420') // '127.0.0.1:7420'
 *
 * @throws ProtocolError `ERR_ORIGIN_INVALID` when `origin` is not a valid origin.
 */
export function uriAuthorityFromOrigin(origin: string): string {
  const normal = parseOrigin(origin, { allowInsecure: true });
  return normal.slice(normal.indexOf('://') + 3);
}
