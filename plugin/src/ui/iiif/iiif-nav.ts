/**
 * Browsing IIIF sources read-only: a trail of sources (collection → manifest → ...), each
 * fetched through the agent, which normalises Presentation 3 / 2.1 and Image API documents.
 */
import type { IiifSource } from '../../../../shared/schemas/agent.ts';

export type IiifItem = IiifSource['items'][number];

export interface IiifTrail {
  /** Sources opened, the first being the one the user typed. */
  stack: IiifSource[];
}

export function canBrowse(url: string): { ok: true } | { ok: false; reason: string } {
  const text = url.trim();
  if (!text) return { ok: false, reason: 'Paste the URL of a IIIF manifest, collection or info.json.' };
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return { ok: false, reason: 'That is not a URL.' };
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return { ok: false, reason: 'IIIF sources are http(s) URLs.' };
  return { ok: true };
}

/** Whether an item opens another source (a manifest or collection) rather than being an image. */
export function isBrowsable(item: IiifItem): boolean {
  return item.kind === 'manifest' || item.kind === 'collection';
}

export function push(trail: IiifTrail, source: IiifSource): IiifTrail {
  return { stack: [...trail.stack, source] };
}

export function back(trail: IiifTrail): IiifTrail {
  return { stack: trail.stack.slice(0, -1) };
}

export function current(trail: IiifTrail): IiifSource | undefined {
  return trail.stack[trail.stack.length - 1];
}

/** "Collection › Manifest": where the user is. */
export function breadcrumb(trail: IiifTrail): string {
  return trail.stack.map((s) => s.label || s.url).join(' › ');
}

export function kindLabel(item: IiifItem): string {
  if (item.kind === 'image') return item.width && item.height ? `${item.width} × ${item.height}` : 'Image';
  return item.kind === 'manifest' ? 'Manifest' : 'Collection';
}
