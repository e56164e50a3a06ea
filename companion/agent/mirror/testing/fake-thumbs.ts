/** An in-memory stand-in for the agent's thumbnail cache (`ThumbsLike`), with failures on demand. */
import { ProtocolError } from '../../../../shared/errors.ts';
import type { ThumbsLike } from '../thumb-filler.ts';

export class FakeThumbs implements ThumbsLike {
  readonly images = new Map<string, number>();
  readonly asked: string[] = [];
  /** Bytes per image. */
  size = 100;
  /** Makes `ensure` fail for a key (`connection/asset/version`). */
  fail: ((key: string) => Error | undefined) | undefined;

  async ensure(connectionId: string, assetId: string, version: string): Promise<void> {
    const key = `${connectionId}/${assetId}/${version}`;
    this.asked.push(key);
    const error = this.fail?.(key);
    if (error) throw error;
    this.images.set(key, this.size);
  }

  has(connectionId: string, assetId: string, version: string): boolean {
    return this.images.has(`${connectionId}/${assetId}/${version}`);
  }

  async remove(connectionId: string, assetId?: string): Promise<void> {
    const prefix = assetId === undefined ? `${connectionId}/` : `${connectionId}/${assetId}/`;
    for (const key of [...this.images.keys()]) if (key.startsWith(prefix)) this.images.delete(key);
  }

  stats(connectionId?: string): { bytes: number; count: number } {
    let bytes = 0;
    let count = 0;
    for (const [key, size] of this.images) {
      if (connectionId !== undefined && !key.startsWith(`${connectionId}/`)) continue;
      bytes += size;
      count += 1;
    }
    return { bytes, count };
  }
}

export const unrenderable = () => new ProtocolError('ERR_NOT_AN_IMAGE', 'the thumbnail could not be made');
