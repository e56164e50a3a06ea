/**
 * Reading links out of fetched documents, for Webmention (W3C Recommendation, 2017):
 * - `htmlHrefs`: the `href` of every `<a>`, `<link>` and `<area>` element, entity-decoded and
 *   resolved against the document's URL;
 * - `jsonMentions`: whether a JSON (IIIF, JSON-LD) document names the target as a string value
 *   anywhere (`target`, `partOf`, `within`, `id` of a referenced resource...);
 * - `linksTo`: the source-links-to-target check of §3.2.2, by content type;
 * - `discoverEndpoint`: the sender's endpoint discovery of §3.1.2: the HTTP `Link` header with
 *   `rel="webmention"` first, then the first `<link>` or `<a>` element with that rel; resolved
 *   against the target's URL (after redirects); an empty href is the target itself.
 * Regular expressions over the markup, not a DOM: enough for attributes, and bounded input
 * (the caller caps the document's size).
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Decodes the character references that can occur in an attribute value. */
export function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

interface Tag {
  name: string;
  attributes: Map<string, string>;
}

const LINK_ELEMENTS = new Set(['a', 'link', 'area']);

/**
 * The link elements of an HTML document, comments skipped, in document order. A linear scan:
 * each character is looked at a bounded number of times whatever the markup (an unclosed quote
 * runs to the end of the document, as in HTML parsers).
 */
function linkTags(html: string): Tag[] {
  const tags: Tag[] = [];
  let i = 0;
  const n = html.length;
  while (i < n) {
    const lt = html.indexOf('<', i);
    if (lt < 0) break;
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      if (end < 0) break;
      i = end + 3;
      continue;
    }
    let j = lt + 1;
    while (j < n && /[A-Za-z0-9]/.test(html[j]!)) j++;
    const name = html.slice(lt + 1, j).toLowerCase();
    if (!name) {
      i = lt + 1;
      continue;
    }
    // Attributes up to the closing '>', quotes respected.
    const attributes = new Map<string, string>();
    while (j < n && html[j] !== '>') {
      const c = html[j]!;
      if (/[\s/]/.test(c)) {
        j++;
        continue;
      }
      let k = j;
      while (k < n && !/[\s/>=]/.test(html[k]!)) k++;
      const attr = html.slice(j, k).toLowerCase();
      j = k;
      while (j < n && /\s/.test(html[j]!)) j++;
      let value = '';
      if (html[j] === '=') {
        j++;
        while (j < n && /\s/.test(html[j]!)) j++;
        const quote = html[j];
        if (quote === '"' || quote === "'") {
          const end = html.indexOf(quote, j + 1);
          const stop = end < 0 ? n : end;
          value = html.slice(j + 1, stop);
          j = stop + 1;
        } else {
          k = j;
          while (k < n && !/[\s>]/.test(html[k]!)) k++;
          value = html.slice(j, k);
          j = k;
        }
      }
      if (attr && !attributes.has(attr)) attributes.set(attr, decodeEntities(value));
      if (k === j && !attr && value === '') j++; // a stray character: skip it
    }
    if (LINK_ELEMENTS.has(name)) tags.push({ name, attributes });
    i = j + 1;
  }
  return tags;
}

function resolve(href: string, base: string): string | undefined {
  try {
    return new URL(href.trim(), base).href;
  } catch {
    return undefined;
  }
}

/** Absolute URLs of every `href` in the document. */
export function htmlHrefs(html: string, base: string): string[] {
  const out: string[] = [];
  for (const tag of linkTags(html)) {
    const href = tag.attributes.get('href');
    if (href === undefined) continue;
    const url = resolve(href, base);
    if (url) out.push(url);
  }
  return out;
}

/** The normalised form of a URL (scheme and host lower-cased, default port dropped), or the input. */
function normalise(url: string): string {
  try {
    return new URL(url).href;
  } catch {
    return url;
  }
}

/** Whether a JSON value names `target` as a string anywhere (depth and size bounded). */
export function jsonMentions(value: unknown, target: string): boolean {
  const wanted = normalise(target);
  let budget = 200_000;
  const visit = (node: unknown, depth: number): boolean => {
    if (--budget < 0 || depth > 64) return false;
    if (typeof node === 'string') return node === target || (node.startsWith('http') && normalise(node) === wanted);
    if (Array.isArray(node)) return node.some((item) => visit(item, depth + 1));
    if (node && typeof node === 'object') return Object.values(node).some((item) => visit(item, depth + 1));
    return false;
  };
  return visit(value, 0);
}

export type DocumentKind = 'json' | 'html' | 'other';

export function kindOf(contentType: string | undefined): DocumentKind {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type === 'application/ld+json' || type.endsWith('+json')) return 'json';
  if (type === 'text/html' || type === 'application/xhtml+xml') return 'html';
  return 'other';
}

/** Whether the source document links to the target: an exact href (HTML) or a string value (JSON). */
export function linksTo(document: { kind: DocumentKind; text: string; json?: unknown; url: string }, target: string): boolean {
  if (document.kind === 'json') return jsonMentions(document.json, target);
  if (document.kind === 'html') {
    const wanted = normalise(target);
    return htmlHrefs(document.text, document.url).some((href) => href === wanted);
  }
  return false;
}

/** The `<title>` of an HTML document, as plain text. */
export function htmlTitle(html: string): string | undefined {
  const match = /<title\b[^>]*>([\s\S]{0,2000}?)<\/title>/i.exec(html);
  return match ? decodeEntities(match[1]!.replace(/<[^>]*>/g, '')).replace(/\s+/g, ' ').trim() || undefined : undefined;
}

/** `rel` values of a Link header (RFC 8288) that carry `rel` = name, resolved against `base`. */
export function linkHeaderTargets(header: string | string[] | undefined, rel: string, base: string): string[] {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  const out: string[] = [];
  for (const value of values) {
    for (const match of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
      const params = match[2] ?? '';
      const relMatch = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
      const rels = (relMatch?.[1] ?? relMatch?.[2] ?? '').toLowerCase().split(/\s+/);
      if (!rels.includes(rel)) continue;
      const url = resolve(match[1]!, base);
      if (url) out.push(url);
    }
  }
  return out;
}

/** The Webmention endpoint a target advertises (§3.1.2), or undefined. */
export function discoverEndpoint(input: { linkHeader: string | string[] | undefined; html?: string; url: string }): string | undefined {
  const fromHeader = linkHeaderTargets(input.linkHeader, 'webmention', input.url)[0];
  if (fromHeader) return fromHeader;
  if (input.html === undefined) return undefined;
  for (const tag of linkTags(input.html)) {
    if (tag.name !== 'link' && tag.name !== 'a') continue;
    const rels = (tag.attributes.get('rel') ?? '').toLowerCase().split(/\s+/);
    const href = tag.attributes.get('href');
    if (!rels.includes('webmention') || href === undefined) continue;
    return resolve(href, input.url);
  }
  return undefined;
}

/** A label safe to show as plain text: no markup or control characters, at most 200 characters. */
export function plainLabel(value: unknown): string | undefined {
  let text: string | undefined;
  if (typeof value === 'string') text = value;
  else if (value && typeof value === 'object' && !Array.isArray(value)) {
    // A IIIF language map: the first value of the first language.
    const first = Object.values(value as Record<string, unknown>)[0];
    if (Array.isArray(first) && typeof first[0] === 'string') text = first[0];
  }
  if (text === undefined) return undefined;
  const clean = text.replace(/[\u0000-\u001f\u007f<>]/g, ' ').replace(/\s+/g, ' ').trim();
  return clean ? clean.slice(0, 200) : undefined;
}
