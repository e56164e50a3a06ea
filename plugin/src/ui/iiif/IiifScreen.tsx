/** IIIF sources: paste a manifest, collection or info.json URL and browse it, read-only. */
import { useState } from 'react';
import { useAction } from '../hooks.ts';
import { ErrorMessage, Notice } from '../Message.tsx';
import { usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { TextField } from '../spectrum/TextField.tsx';
import { back, breadcrumb, canBrowse, current, isBrowsable, kindLabel, push, type IiifItem, type IiifTrail } from './iiif-nav.ts';

export function IiifScreen() {
  const panel = usePanel();
  const [url, setUrl] = useState('');
  const [trail, setTrail] = useState<IiifTrail>({ stack: [] });
  const [selected, setSelected] = useState<IiifItem | undefined>();
  const open = useAction(async (target: string, fromStart: boolean) => {
    const source = await panel.client.iiif(target);
    setSelected(undefined);
    setTrail((t) => push(fromStart ? { stack: [] } : t, source));
    return source;
  });
  const allowed = canBrowse(url);
  const here = current(trail);
  return (
    <div className="screen" data-testid="iiif-screen">
      <sp-heading size="S">IIIF sources</sp-heading>
      <div className="row">
        <div className="grow">
          <TextField placeholder="https://…/manifest.json" value={url} onChange={setUrl} onSubmit={() => allowed.ok && void open.run(url.trim(), true)} testId="iiif-url" />
        </div>
        <Button variant="primary" onClick={() => void open.run(url.trim(), true)} disabled={!allowed.ok || open.running} testId="iiif-browse">
          {open.running ? 'Opening…' : 'Browse'}
        </Button>
      </div>
      <div className="hint">Read-only: images from IIIF sources are browsed, not edited or saved back.</div>
      {open.error ? <ErrorMessage error={open.error} actions={{ retry: () => void open.run(url.trim(), true) }} testId="iiif-error" /> : null}
      {here ? (
        <div className="section" data-testid="iiif-source">
          <div className="row spread">
            {trail.stack.length > 1 ? (
              <Button action quiet onClick={() => setTrail(back(trail))}>
                ‹ Back
              </Button>
            ) : (
              <span></span>
            )}
            <span className="item-sub">{breadcrumb(trail)}</span>
          </div>
          <sp-heading size="XS">{here.label || here.url}</sp-heading>
          {here.requiredStatement ? <div className="item-sub">{here.requiredStatement}</div> : null}
          {here.rights ? <div className="item-sub">Rights: {here.rights}</div> : null}
          {here.items.length === 0 ? <Notice>This source lists no images.</Notice> : null}
          <div className="grid">
            {here.items.map((item, i) => (
              <IiifTile
                key={`${item.id}-${i}`}
                item={item}
                src={item.thumbnailUrl ? panel.client.url(item.thumbnailUrl) : null}
                onOpen={() => (isBrowsable(item) ? void open.run(item.id, false) : setSelected(item))}
              />
            ))}
          </div>
          {selected ? (
            <div className="list-item" data-testid="iiif-selected">
              <div className="item-title">{selected.label}</div>
              <div className="item-sub">{kindLabel(selected)}</div>
              <div className="item-sub">{selected.id}</div>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

function IiifTile({ item, src, onOpen }: { item: IiifItem; src: string | null; onOpen: () => void }) {
  const [broken, setBroken] = useState(false);
  return (
    <div className="tile" role="button" tabIndex={0} onClick={onOpen} data-testid="iiif-item" data-kind={item.kind} title={item.label}>
      <div className="tile-image">
        {src && !broken ? <img src={src} alt={item.label} onError={() => setBroken(true)} /> : <div className="tile-placeholder">{item.kind === 'image' ? 'No preview' : kindLabel(item)}</div>}
      </div>
      <div className="tile-caption">{item.label || kindLabel(item)}</div>
    </div>
  );
}
