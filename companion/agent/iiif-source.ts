/**
 * Plain IIIF sources for the panel to browse read-only: a Presentation 3 or 2.1 manifest or
 * collection, or an Image API 3 or 2 `info.json`, normalised to the agent's `IiifSource`.
 * Framework-free: `readIiifSource(doc, url, thumb)` takes the parsed JSON and a function that
 * turns a remote thumbnail URL into the URL the panel should load (the agent signs a relay).
 *
 * What is read (and nothing else is needed):
 *
 *   Presentation 3  type Manifest | Collection; label (language map); items (Canvas → AnnotationPage
 *                   → painting Annotation → body Image with service ImageService3/2);
 *                   thumbnail; rights; requiredStatement {label, value}
 *   Presentation 2  @type sc:Manifest | sc:Collection; label (string | {@value} | [..]);
 *                   sequences[0].canvases[].images[0].resource(.service); manifests[],
 *                   collections[], members[]; thumbnail; license; attribution
 *   Image API 3/2   info.json: id | @id, type ImageService3 | @context .../image/2/context.json,
 *                   width, height, profile
 *
 * Thumbnails come from `thumbnail` when given, else from the image service:
 * `{base}/full/!200,200/0/default.jpg` (Image API 3, and 2 at level 2), `{base}/full/200,/0/default.jpg`
 * (Image API 2 below level 2). Anything that is none of these is ERR_IIIF_SOURCE_INVALID.
 */
import { ProtocolError } from '../../shared/errors.ts';
import type { IiifSource } from '../../shared/schemas/agent.ts';

export const IIIF_SOURCE_LIMITS = Object.freeze({
  maxItems: 2_000, // items listed from one manifest or collection
  maxLabel: 500, // characters of a label
});

type Json = Record<string, unknown>;
type Item = IiifSource['items'][number];
/** Turns a remote thumbnail URL into what the panel loads (or null to show none). */
export type ThumbnailMapper = (remoteUrl: string) => string | null;

const PRESENTATION_3 = 'http://iiif.io/api/presentation/3/context.json';
const IMAGE_3 = 'http://iiif.io/api/image/3/context.json';
const IMAGE_2 = 'http://iiif.io/api/image/2/context.json';

function invalid(why: string): ProtocolError {
  return new ProtocolError('ERR_IIIF_SOURCE_INVALID', `not a IIIF manifest, collection or image service: ${why}`);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function contexts(doc: Json): string[] {
  return list(doc['@context']).filter((c): c is string => typeof c === 'string');
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function int(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function clip(text: string): string {
  const plain = text.replace(/<[^>]*>/g, '').replace(/\s+/g, ' ').trim();
  return plain.length > IIIF_SOURCE_LIMITS.maxLabel ? `${plain.slice(0, IIIF_SOURCE_LIMITS.maxLabel - 1)}…` : plain;
}

/**
 * Text of a label: a v3 language map (`{ "en": ["Harbour"] }`, English preferred, then `none`,
 * then the first language), a v2 string, `{ "@value": ... }` or a list of those.
 */
export function labelText(value: unknown, languages: string[] = ['en']): string | undefined {
  if (typeof value === 'string') return clip(value) || undefined;
  if (Array.isArray(value)) {
    const values = value.map((v) => (isObject(v) ? { lang: str(v['@language']), text: str(v['@value']) } : { lang: undefined, text: str(v) }));
    const preferred = values.find((v) => v.text && v.lang && languages.some((l) => v.lang!.startsWith(l))) ?? values.find((v) => v.text);
    return preferred?.text ? clip(preferred.text) : undefined;
  }
  if (isObject(value)) {
    if (str(value['@value'])) return clip(value['@value'] as string);
    const keys = Object.keys(value);
    const key = languages.find((l) => keys.includes(l)) ?? (keys.includes('none') ? 'none' : keys[0]);
    if (key === undefined) return undefined;
    const texts = list(value[key]).filter((t): t is string => typeof t === 'string' && t !== '');
    return texts.length ? clip(texts.join('; ')) : undefined;
  }
  return undefined;
}

function idOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!isObject(value)) return undefined;
  return str(value.id) ?? str(value['@id']);
}

interface ImageService {
  base: string;
  version: 2 | 3;
  level2: boolean;
}

/** The first IIIF Image service of a resource (`service` is an object or a list). */
function imageService(resource: Json): ImageService | undefined {
  for (const service of list(resource.service)) {
    if (!isObject(service)) continue;
    const base = idOf(service)?.replace(/\/info\.json$/, '').replace(/\/+$/, '');
    if (!base) continue;
    const type = str(service.type) ?? str(service['@type']) ?? '';
    const ctx = contexts(service);
    const profile = list(service.profile).map((p) => (typeof p === 'string' ? p : '')).join(' ');
    const v3 = type === 'ImageService3' || ctx.includes(IMAGE_3);
    const v2 = type === 'ImageService2' || ctx.includes(IMAGE_2) || /iiif\.io\/api\/image\/2\//.test(profile);
    if (!v3 && !v2) continue;
    return { base, version: v3 ? 3 : 2, level2: v3 || /level2/.test(profile) };
  }
  return undefined;
}

/** A thumbnail URL from an image service (see the module comment). */
export function serviceThumbnail(service: ImageService): string {
  const size = service.version === 3 || service.level2 ? '!200,200' : '200,';
  return `${service.base}/full/${size}/0/default.jpg`;
}

function thumbnailOf(resource: Json): string | undefined {
  for (const thumb of list(resource.thumbnail)) {
    const id = idOf(thumb);
    if (id && /^https?:\/\//i.test(id)) return id;
  }
  return undefined;
}

function absolute(url: string | undefined, base: string): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url, base);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

function summaryText(value: unknown): string | undefined {
  if (isObject(value) && ('label' in value || 'value' in value)) {
    const label = labelText(value.label);
    const text = labelText(value.value);
    return text ? (label ? `${label}: ${text}` : text) : undefined;
  }
  return labelText(value);
}

/** Normalises a parsed IIIF document fetched from `url`. Throws ERR_IIIF_SOURCE_INVALID. */
export function readIiifSource(doc: unknown, url: string, thumb: ThumbnailMapper): IiifSource {
  if (!isObject(doc)) throw invalid('the document is not a JSON object');
  const ctx = contexts(doc);
  const type = str(doc.type) ?? '';
  const type2 = str(doc['@type']) ?? '';
  const mapThumb = (remote: string | undefined) => {
    const absoluteUrl = absolute(remote, url);
    return absoluteUrl ? thumb(absoluteUrl) : null;
  };

  // Image API info.json
  if (type === 'ImageService3' || ctx.includes(IMAGE_3) || ctx.includes(IMAGE_2) || str(doc.protocol) === 'http://iiif.io/api/image') {
    const service = imageService({ service: doc });
    const base = service?.base ?? absolute(idOf(doc), url)?.replace(/\/info\.json$/, '');
    if (!service || !base) throw invalid('an image service without an id');
    const label = labelText(doc.label) ?? base.split('/').pop() ?? 'Image';
    const item: Item = { kind: 'image', label, id: base, thumbnailUrl: mapThumb(serviceThumbnail(service)) };
    const width = int(doc.width);
    const height = int(doc.height);
    if (width !== undefined) item.width = width;
    if (height !== undefined) item.height = height;
    return { url, kind: 'image', label, items: [item] };
  }

  const isV3 = ctx.includes(PRESENTATION_3) || ((type === 'Manifest' || type === 'Collection') && !type2);
  if (isV3 && (type === 'Manifest' || type === 'Collection')) return readV3(doc, url, type, mapThumb);
  if (type2 === 'sc:Manifest' || type2 === 'sc:Collection') return readV2(doc, url, type2, mapThumb);
  throw invalid(`unknown type ${JSON.stringify((type || type2).slice(0, 50))}`);
}

function finish(source: IiifSource, doc: Json, rightsKey: string, statementKey: string): IiifSource {
  const rights = str(doc[rightsKey]) ?? labelText(doc[rightsKey]);
  const statement = summaryText(doc[statementKey]);
  if (rights) source.rights = rights;
  if (statement) source.requiredStatement = statement;
  return source;
}

function readV3(doc: Json, url: string, type: string, mapThumb: (u: string | undefined) => string | null): IiifSource {
  const label = labelText(doc.label) ?? (type === 'Manifest' ? 'Manifest' : 'Collection');
  const items: Item[] = [];
  for (const [index, entry] of list(doc.items).entries()) {
    if (items.length >= IIIF_SOURCE_LIMITS.maxItems) break;
    if (!isObject(entry)) continue;
    const entryType = str(entry.type);
    if (type === 'Collection') {
      if (entryType !== 'Manifest' && entryType !== 'Collection') continue;
      const id = absolute(idOf(entry), url);
      if (!id) continue;
      items.push({
        kind: entryType === 'Manifest' ? 'manifest' : 'collection',
        label: labelText(entry.label) ?? id,
        id,
        thumbnailUrl: mapThumb(thumbnailOf(entry)),
      });
      continue;
    }
    if (entryType !== 'Canvas') continue;
    const body = paintedImage(entry);
    if (!body) continue;
    const service = imageService(body);
    const id = service?.base ?? absolute(idOf(body), url);
    if (!id) continue;
    const item: Item = {
      kind: 'image',
      label: labelText(entry.label) ?? `Image ${index + 1}`,
      id,
      thumbnailUrl: mapThumb(thumbnailOf(entry) ?? (service ? serviceThumbnail(service) : thumbnailOf(body) ?? idOf(body))),
    };
    const width = int(entry.width) ?? int(body.width);
    const height = int(entry.height) ?? int(body.height);
    if (width !== undefined) item.width = width;
    if (height !== undefined) item.height = height;
    items.push(item);
  }
  return finish({ url, kind: type === 'Manifest' ? 'manifest' : 'collection', label, items }, doc, 'rights', 'requiredStatement');
}

/** The image painted on a v3 canvas: items[].items[] with motivation painting, body (or its first choice) an Image. */
function paintedImage(canvas: Json): Json | undefined {
  for (const page of list(canvas.items)) {
    if (!isObject(page)) continue;
    for (const annotation of list(page.items)) {
      if (!isObject(annotation) || (annotation.motivation !== undefined && annotation.motivation !== 'painting')) continue;
      for (let body of list(annotation.body)) {
        if (isObject(body) && body.type === 'Choice') body = list(body.items)[0];
        if (isObject(body) && (body.type === 'Image' || imageService(body))) return body;
      }
    }
  }
  return undefined;
}

function readV2(doc: Json, url: string, type2: string, mapThumb: (u: string | undefined) => string | null): IiifSource {
  const manifest = type2 === 'sc:Manifest';
  const label = labelText(doc.label) ?? (manifest ? 'Manifest' : 'Collection');
  const items: Item[] = [];
  if (manifest) {
    const sequence = list(doc.sequences).find(isObject);
    for (const [index, canvas] of list(sequence?.canvases).entries()) {
      if (items.length >= IIIF_SOURCE_LIMITS.maxItems) break;
      if (!isObject(canvas)) continue;
      const image = list(canvas.images).find(isObject);
      const resource = isObject(image?.resource) ? image.resource : undefined;
      if (!resource) continue;
      const service = imageService(resource);
      const id = service?.base ?? absolute(idOf(resource), url);
      if (!id) continue;
      const item: Item = {
        kind: 'image',
        label: labelText(canvas.label) ?? `Image ${index + 1}`,
        id,
        thumbnailUrl: mapThumb(thumbnailOf(canvas) ?? (service ? serviceThumbnail(service) : idOf(resource))),
      };
      const width = int(canvas.width) ?? int(resource.width);
      const height = int(canvas.height) ?? int(resource.height);
      if (width !== undefined) item.width = width;
      if (height !== undefined) item.height = height;
      items.push(item);
    }
  } else {
    const members = [...list(doc.collections), ...list(doc.manifests), ...list(doc.members)];
    for (const member of members) {
      if (items.length >= IIIF_SOURCE_LIMITS.maxItems) break;
      if (!isObject(member)) continue;
      const memberType = str(member['@type']);
      if (memberType !== 'sc:Manifest' && memberType !== 'sc:Collection') continue;
      const id = absolute(idOf(member), url);
      if (!id || items.some((i) => i.id === id)) continue;
      items.push({
        kind: memberType === 'sc:Manifest' ? 'manifest' : 'collection',
        label: labelText(member.label) ?? id,
        id,
        thumbnailUrl: mapThumb(thumbnailOf(member)),
      });
    }
  }
  return finish({ url, kind: manifest ? 'manifest' : 'collection', label, items }, doc, 'license', 'attribution');
}
