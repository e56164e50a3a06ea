/**
 * Web sources: images the IIIF service fetches from elsewhere, named `{source}:{name}`, as in
 * the NHM image server. Two kinds, configured in `iiifWebSources`:
 *
 *   web          url = "https://images.example.org/media/{name}"
 *                `{name}` is replaced by the name, percent-encoded as one path segment
 *                (encodeURIComponent), so a name cannot leave the template's place.
 *   trusted_web  pattern = "https://([a-z]+\\.)?example\\.org/.*"
 *                the name is a URL in base64url (RFC 4648 §5, padding optional); the decoded
 *                URL must be http(s), carry no credentials, and its normalised form (the
 *                WHATWG URL `href`, e.g. with the "/" path of a bare host) must match the
 *                pattern as a whole (the pattern is anchored here: `^(?:pattern)$`).
 *
 * Pure functions, no I/O. An identifier that names nothing (unknown source, bad base64url, a
 * URL outside the pattern) is 404, like every identifier the server cannot name (Image API 3.0
 * §7: "404 Not Found: the image resource specified by [identifier] does not exist").
 *
 * @example
 *   const sources = compileWebSources([{ name: 'nhm', type: 'web', url: 'https://x.org/{name}' }]);
 *   resolveWebUrl(sources, { source: 'nhm', name: 'a b' });
 *   // → { ok: true, value: URL('https://x.org/a%20b') }
 */
import { ProtocolError } from '../../shared/errors.ts';
import type { IiifError, Result, WebIdentifier } from './parse.ts';

export const WEB_SOURCE_TYPES = ['web', 'trusted_web'] as const;
export type WebSourceType = (typeof WEB_SOURCE_TYPES)[number];

/** One entry of `iiifWebSources`. */
export interface WebSourceConfig {
  /** The identifier prefix: 1-32 of a-z 0-9 "-". */
  name: string;
  type: WebSourceType;
  /** `web`: the URL template, with `{name}`. */
  url?: string;
  /** `trusted_web`: a regular expression the whole decoded URL must match. */
  pattern?: string;
}

export type CompiledWebSource =
  | { name: string; type: 'web'; template: string }
  | { name: string; type: 'trusted_web'; pattern: RegExp };

const SOURCE_NAME = /^[a-z0-9-]{1,32}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;
/** Longest URL a trusted_web name may decode to. */
const MAX_URL_LENGTH = 2048;

const notFound = (message: string): { ok: false; error: IiifError } => ({ ok: false, error: { status: 404, message } });

/**
 * Checks the configured sources and compiles them. Throws ERR_CONFIG_INVALID naming the entry
 * (`iiifWebSources[1] "nhm": ...`) for a bad name, a duplicate, a template without `{name}` or
 * that is not an http(s) URL, a missing or invalid pattern.
 */
export function compileWebSources(list: readonly WebSourceConfig[]): CompiledWebSource[] {
  const seen = new Set<string>();
  return list.map((entry, i) => {
    const where = `iiifWebSources[${i}] "${String(entry.name).slice(0, 40)}"`;
    const invalid = (message: string) => new ProtocolError('ERR_CONFIG_INVALID', `invalid configuration: ${where}: ${message}`);
    if (!SOURCE_NAME.test(entry.name)) throw invalid('name must be 1-32 of a-z, 0-9 and "-"');
    if (seen.has(entry.name)) throw invalid('name is used twice');
    seen.add(entry.name);
    if (entry.type === 'web') {
      if (entry.pattern !== undefined) throw invalid('"pattern" belongs to trusted_web sources');
      const template = entry.url ?? '';
      if (!template.includes('{name}')) throw invalid('url must be a template with {name}');
      if (!isHttpUrl(template.replaceAll('{name}', 'x'))) throw invalid('url must be an absolute http(s) URL');
      return { name: entry.name, type: 'web', template };
    }
    if (entry.type === 'trusted_web') {
      if (entry.url !== undefined) throw invalid('"url" belongs to web sources');
      if (!entry.pattern) throw invalid('pattern is required');
      let pattern: RegExp;
      try {
        pattern = new RegExp(`^(?:${entry.pattern})$`);
      } catch (error) {
        throw invalid(`pattern is not a valid regular expression (${(error as Error).message})`);
      }
      return { name: entry.name, type: 'trusted_web', pattern };
    }
    throw invalid(`type must be one of ${WEB_SOURCE_TYPES.join(', ')}`);
  });
}

/** As `compileWebSources`, returning a result instead of throwing. */
export function validateWebSources(list: readonly WebSourceConfig[]): { ok: true } | { ok: false; message: string } {
  try {
    compileWebSources(list);
    return { ok: true };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

/** The URL a web identifier names, or 404. */
export function resolveWebUrl(sources: readonly CompiledWebSource[], identifier: WebIdentifier): Result<URL> {
  const source = sources.find((s) => s.name === identifier.source);
  if (!source) return notFound(`no web source "${identifier.source}"`);
  if (source.type === 'web') {
    const url = toHttpUrl(source.template.replaceAll('{name}', encodeURIComponent(identifier.name)));
    return url ? { ok: true, value: url } : notFound('the name does not make a URL');
  }
  const text = decodeBase64Url(identifier.name);
  if (text === undefined) return notFound('the name is not a base64url-encoded URL');
  if (text.length > MAX_URL_LENGTH) return notFound('the URL is too long');
  const url = toHttpUrl(text);
  if (!url) return notFound('the name does not decode to an http(s) URL');
  // The pattern judges the URL that will be fetched: the normalised form (WHATWG `href`).
  if (!source.pattern.test(url.href)) {
    return notFound(`the URL is not one web source "${source.name}" serves`);
  }
  return { ok: true, value: url };
}

/** base64url (RFC 4648 §5) to UTF-8 text; undefined unless it is exactly that. */
export function decodeBase64Url(name: string): string | undefined {
  if (!BASE64URL.test(name) || name.replace(/=+$/, '').length % 4 === 1) return undefined;
  const bytes = Buffer.from(name, 'base64url');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  // Reject what does not round-trip (stray bits, invalid UTF-8).
  if (Buffer.from(text, 'utf8').toString('base64url') !== name.replace(/=+$/, '')) return undefined;
  return text;
}

/** The name of a URL for a trusted_web source (base64url, no padding). */
export function encodeBase64Url(url: string): string {
  return Buffer.from(url, 'utf8').toString('base64url');
}

function toHttpUrl(text: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || !url.hostname) return undefined;
  return url;
}

function isHttpUrl(text: string): boolean {
  return toHttpUrl(text) !== undefined;
}
