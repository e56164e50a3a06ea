/**
 * Syntax shared by the identifier parsers (`uri.ts`, `identity.ts`, `origin.ts`,
 * `extension-name.ts`): the host and port grammar, the printable-ASCII allow-list and the
 * result type of every `validateX`.
 *
 * The checks here never throw: they answer `{ ok: false, reason }` with a short English reason,
 * and each identifier module wraps that reason in a `ProtocolError` with its own code.
 */
import type { ProtocolError } from './errors.ts';

/** What every `validateX` returns. */
export type ValidationResult<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

/** What the internal checks return: a value, or why the input is wrong. */
export type SyntaxCheck<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface Authority {
  /** Lowercase host name, dotted IPv4 literal, or bracketed canonical IPv6 (`[::1]`). */
  host: string;
  /** Present only when the input named a port. */
  port?: number;
}

/** Longest DNS host name (RFC 1035, without the trailing dot). */
export const MAX_HOST_LENGTH = 253;
/** Longest DNS label. */
export const MAX_LABEL_LENGTH = 63;

const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_PIECE = /^[0-9a-f]{1,4}$/;

function ok<T>(value: T): SyntaxCheck<T> {
  return { ok: true, value };
}

function fail<T>(reason: string): SyntaxCheck<T> {
  return { ok: false, reason };
}

/** `U+0020`-style name of a code point. */
function codePointName(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The reason `input` breaks the printable-ASCII allow-list (0x21-0x7E: no space, no control
 * character, nothing outside ASCII), or `undefined` when every character is allowed.
 */
export function findDisallowedCharacter(input: string): string | undefined {
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      const cp = input.codePointAt(i) ?? c;
      const what = c === 0x20 ? 'a space' : c < 0x20 || c === 0x7f ? 'a control character' : 'a non-ASCII character';
      return `${what} (${codePointName(cp)}) at position ${i} is not allowed; only printable ASCII is`;
    }
  }
  return undefined;
}

/** The input as it appears in error messages: JSON-quoted, cut after 80 characters. */
export function quoteInput(input: string): string {
  return JSON.stringify(input.length > 80 ? `${input.slice(0, 77)}...` : input);
}

/** Describes a non-string input for error messages. */
export function describeType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * A dotted-decimal IPv4 literal: four parts 0-255, no leading zeros (`010` would be octal to
 * some parsers).
 */
function checkIPv4(host: string): SyntaxCheck<string> {
  const m = IPV4.exec(host);
  if (!m) return fail(`host ${quoteInput(host)} ends in a number but is not a dotted IPv4 address`);
  for (const part of m.slice(1)) {
    if (part.length > 1 && part.startsWith('0')) {
      return fail(`IPv4 address ${quoteInput(host)} has a part with a leading zero`);
    }
    if (Number(part) > 255) return fail(`IPv4 address ${quoteInput(host)} has a part above 255`);
  }
  return ok(host);
}

/** The eight 16-bit pieces of an IPv6 address (RFC 4291 §2.2 text forms), or undefined. */
function parseIPv6(text: string): number[] | undefined {
  const s = text.toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(s)) return undefined;
  const gap = s.indexOf('::');
  if (gap !== -1 && s.indexOf('::', gap + 1) !== -1) return undefined;
  const split = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = gap === -1 ? split(s) : split(s.slice(0, gap));
  const tail = gap === -1 ? [] : split(s.slice(gap + 2));
  const toPieces = (parts: string[], mayEndInIPv4: boolean): number[] | undefined => {
    const pieces: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] ?? '';
      if (mayEndInIPv4 && i === parts.length - 1 && part.includes('.')) {
        if (!checkIPv4(part).ok) return undefined;
        const [a = 0, b = 0, c = 0, d = 0] = part.split('.').map(Number);
        pieces.push((a << 8) | b, (c << 8) | d);
      } else if (HEX_PIECE.test(part)) {
        pieces.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return pieces;
  };
  const front = toPieces(head, gap === -1);
  const back = toPieces(tail, true);
  if (!front || !back) return undefined;
  const count = front.length + back.length;
  if (gap === -1) return count === 8 ? front : undefined;
  if (count > 7) return undefined;
  return [...front, ...new Array<number>(8 - count).fill(0), ...back];
}

/**
 * Canonical text of an IPv6 address as the WHATWG URL standard writes it (and RFC 5952 save
 * for embedded IPv4): lowercase hex without leading zeros, the first longest run of two or more
 * zero pieces written as `::`.
 */
function formatIPv6(pieces: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < pieces.length; ) {
    if (pieces[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < pieces.length && pieces[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((p) => p.toString(16)).join(':');
  if (bestStart === -1) return hex(pieces);
  return `${hex(pieces.slice(0, bestStart))}::${hex(pieces.slice(bestStart + bestLength))}`;
}

/**
 * Checks a host and returns its normal form.
 *
 * Grammar:
 *
 *     host     = dns-name / ipv4 / "[" ipv6 "]"
 *     dns-name = label *("." label)             ; at most 253 characters
 *     label    = alnum [*(alnum / "-") alnum]   ; 1-63 characters, case-insensitive
 *     ipv4     = dec "." dec "." dec "." dec    ; 0-255, no leading zeros
 *
 * A name whose last label is a number (or `0x...`) must be a dotted IPv4 literal, as in the
 * WHATWG URL parser, so `1.2.3` or `0x7f.1` never mean one thing here and another in `URL`.
 * Names are lowercased, IPv6 addresses written in canonical form.
 *
 * @example
 *   checkHost('Studio.Example') // { ok: true, value: 'studio.example' }
 *   checkHost('[0:0::1]')       // { ok: true, value: '[::1]' }
 *   checkHost('a_b.example')    // { ok: false, reason: '...' }
 */
export function checkHost(input: string): SyntaxCheck<string> {
  if (input === '') return fail('host is empty');
  if (input.startsWith('[')) {
    if (!input.endsWith(']')) return fail(`IPv6 address ${quoteInput(input)} has no closing ']'`);
    const pieces = parseIPv6(input.slice(1, -1));
    if (!pieces) return fail(`${quoteInput(input)} is not a valid IPv6 address`);
    return ok(`[${formatIPv6(pieces)}]`);
  }
  if (input.includes(']')) return fail(`host ${quoteInput(input)} has a ']' without '['`);
  if (input.includes(':')) return fail(`IPv6 address ${quoteInput(input)} must be enclosed in brackets`);
  const host = input.toLowerCase();
  if (host.length > MAX_HOST_LENGTH) {
    return fail(`host is ${host.length} characters long; at most ${MAX_HOST_LENGTH} are allowed`);
  }
  const labels = host.split('.');
  const last = labels[labels.length - 1] ?? '';
  if (/^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/.test(last)) return checkIPv4(host);
  for (const label of labels) {
    if (label === '') {
      return fail(`host ${quoteInput(input)} has an empty label (leading, trailing or double '.')`);
    }
    if (label.length > MAX_LABEL_LENGTH) {
      return fail(`host label is ${label.length} characters long; at most ${MAX_LABEL_LENGTH} are allowed`);
    }
    if (!LABEL.test(label)) {
      const bad = /[^a-z0-9-]/.exec(label);
      if (bad) return fail(`host ${quoteInput(input)} contains ${quoteInput(bad[0])}; only a-z, 0-9, '-' and '.' are allowed`);
      return fail(`host label ${quoteInput(label)} must not start or end with '-'`);
    }
  }
  return ok(host);
}

/** Checks a decimal port: 1-65535, no sign, no leading zeros. */
export function checkPort(input: string): SyntaxCheck<number> {
  if (input === '') return fail("port is empty (nothing after ':')");
  if (!/^[0-9]+$/.test(input)) return fail(`port ${quoteInput(input)} is not a decimal number`);
  if (input.length > 1 && input.startsWith('0')) return fail(`port ${quoteInput(input)} has a leading zero`);
  const port = Number(input);
  if (port < 1 || port > 65535) return fail(`port ${input} is out of range 1-65535`);
  return ok(port);
}

/**
 * Checks an authority: a host (see `checkHost`) with an optional port.
 *
 *     authority = host [":" port]      ; no user information, port 1-65535
 *
 * @example
 *   checkAuthority('Studio.Example:7420') // { ok: true, value: { host: 'studio.example', port: 7420 } }
 *   checkAuthority('[::1]')               // { ok: true, value: { host: '[::1]' } }
 */
export function checkAuthority(input: string): SyntaxCheck<Authority> {
  if (input === '') return fail('authority is empty');
  if (input.includes('@')) return fail(`authority ${quoteInput(input)} must not contain user information ('@')`);
  let hostPart = input;
  let portPart: string | undefined;
  if (input.startsWith('[')) {
    const close = input.indexOf(']');
    if (close === -1) return fail(`IPv6 address in ${quoteInput(input)} has no closing ']'`);
    hostPart = input.slice(0, close + 1);
    const rest = input.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return fail(`unexpected ${quoteInput(rest)} after the IPv6 address`);
      portPart = rest.slice(1);
    }
  } else {
    const colon = input.lastIndexOf(':');
    if (colon !== -1) {
      hostPart = input.slice(0, colon);
      portPart = input.slice(colon + 1);
      if (hostPart.includes(':')) return fail(`IPv6 address in ${quoteInput(input)} must be enclosed in brackets`);
    }
  }
  const host = checkHost(hostPart);
  if (!host.ok) return host;
  if (portPart === undefined) return ok({ host: host.value });
  const port = checkPort(portPart);
  if (!port.ok) return port;
  return ok({ host: host.value, port: port.value });
}

/** `host[:port]`; the inverse of `checkAuthority` for values it returned. */
export function formatAuthority(authority: Authority): string {
  return authority.port === undefined ? authority.host : `${authority.host}:${authority.port}`;
}

/** Whether `host` (already checked) is a dotted IPv4 literal. */
export function isIPv4Literal(host: string): boolean {
  return IPV4.test(host);
}

/** The eight 16-bit pieces of a bracketed IPv6 host, or undefined for any other host. */
export function ipv6Pieces(host: string): number[] | undefined {
  return host.startsWith('[') && host.endsWith(']') ? parseIPv6(host.slice(1, -1)) : undefined;
}
