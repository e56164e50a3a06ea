/**
 * The results as a grid of thumbnails (flex-wrap: UXP has no CSS grid and no `gap`). The next
 * page is fetched when the user scrolls near the end, or with "More results". A thumbnail that
 * fails to load shows a placeholder with the file name, never a broken image.
 */
import { memo, useState, type ReactNode, type UIEvent } from 'react';
import type { AgentAsset } from '../../../../shared/schemas/agent.ts';
import { rightsWarnings, needsConfirmation } from '../asset/rights.ts';
import { Button } from '../spectrum/Button.tsx';

export interface ThumbGridProps {
  items: readonly AgentAsset[];
  thumbUrl: (relative: string) => string;
  onOpen: (asset: AgentAsset) => void;
  onNearEnd: () => void;
  canLoadMore: boolean;
  loading: boolean;
  footer?: ReactNode;
}

/** Pixels from the end of the list at which the next page is asked for. */
const NEAR_END_PX = 600;

export function ThumbGrid(props: ThumbGridProps) {
  const onScroll = (event: UIEvent<HTMLDivElement>) => {
    const el = event.currentTarget;
    if (props.canLoadMore && el.scrollTop + el.clientHeight > el.scrollHeight - NEAR_END_PX) props.onNearEnd();
  };
  return (
    <div className="grid-scroll" onScroll={onScroll} data-testid="results">
      <div className="grid">
        {props.items.map((asset) => (
          <Tile key={`${asset.connection}/${asset.id}`} asset={asset} src={asset.thumbnailUrl ? props.thumbUrl(asset.thumbnailUrl) : null} onOpen={props.onOpen} />
        ))}
      </div>
      <div className="grid-footer">
        {props.loading && props.items.length > 0 ? <div className="hint">Loading more…</div> : null}
        {props.canLoadMore && !props.loading ? (
          <Button action onClick={props.onNearEnd} testId="more-results">
            More results
          </Button>
        ) : null}
        {props.footer}
      </div>
    </div>
  );
}

export function titleOf(asset: Pick<AgentAsset, 'metadata' | 'filename'>): string {
  const title = asset.metadata?.title;
  return typeof title === 'string' && title.trim() ? title : asset.filename;
}

const Tile = memo(function Tile({ asset, src, onOpen }: { asset: AgentAsset; src: string | null; onOpen: (asset: AgentAsset) => void }) {
  const [broken, setBroken] = useState(false);
  const warn = needsConfirmation(rightsWarnings(asset.rights));
  const title = titleOf(asset);
  return (
    <div
      className="tile"
      role="button"
      tabIndex={0}
      title={`${title}\n${asset.filename}`}
      data-testid="tile"
      data-asset={asset.id}
      data-connection={asset.connection}
      onClick={() => onOpen(asset)}
      onKeyDown={(e) => {
        if (e.key === 'Enter') onOpen(asset);
      }}
    >
      <div className="tile-image">
        {src && !broken ? (
          <img src={src} alt={title} decoding="async" draggable={false} onError={() => setBroken(true)} data-testid="thumb" />
        ) : (
          <div className="tile-placeholder" data-testid="thumb-missing">
            {broken ? 'No preview' : 'No thumbnail'}
          </div>
        )}
        {warn ? (
          <span className="tile-flag" title="Rights restrictions" data-testid="rights-flag">
            !
          </span>
        ) : null}
      </div>
      <div className="tile-caption">{title}</div>
    </div>
  );
});
