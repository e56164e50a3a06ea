/**
 * An asset: a larger preview, rights warnings, open/place, save back, metadata, versions
 * (newest first) and provenance. The asset is fetched again on arrival, so a version pushed
 * meanwhile shows, and an asset deleted meanwhile says so with a way back.
 */
import { useEffect, useState } from 'react';
import type { AgentAsset, Checkout } from '../../../../shared/schemas/agent.ts';
import { useAction } from '../hooks.ts';
import { ErrorMessage } from '../Message.tsx';
import { connectionNames, usePanel } from '../panel-context.ts';
import { Button } from '../spectrum/Button.tsx';
import { titleOf } from '../search/ThumbGrid.tsx';
import { describeError } from '../messages.ts';
import { OpenOrPlace } from './OpenOrPlace.tsx';
import { rightsWarnings } from './rights.ts';
import { RightsWarnings } from './RightsWarnings.tsx';
import { SaveBack } from './SaveBack.tsx';

export interface AssetDetailProps {
  asset: AgentAsset;
  onBack: () => void;
  /** The asset turned out to be deleted on its server. */
  onGone: (asset: AgentAsset) => void;
}

const GONE = new Set(['ERR_ASSET_GONE', 'ERR_ASSET_NOT_FOUND']);

export function AssetDetail(props: AssetDetailProps) {
  const panel = usePanel();
  const [asset, setAsset] = useState(props.asset);
  const [checkout, setCheckout] = useState<Checkout | undefined>();
  const [broken, setBroken] = useState(false);
  const refresh = useAction(async () => {
    try {
      const fresh = await panel.client.asset(props.asset.connection, props.asset.id);
      setAsset(fresh);
      return fresh;
    } catch (error) {
      if (GONE.has(describeError(error).code)) props.onGone(props.asset);
      throw error;
    }
  });
  useEffect(() => {
    void refresh.run();
    // The newest local copy of this asset, if one was made before (a previous session).
    panel.client
      .checkouts()
      .then((items) => {
        const mine = items
          .filter((c) => c.connection === props.asset.connection && c.assetId === props.asset.id)
          .sort((a, b) => b.updated.localeCompare(a.updated))[0];
        setCheckout((current) => current ?? mine);
      })
      .catch(() => undefined);
  }, [props.asset.connection, props.asset.id]); // eslint-disable-line react-hooks/exhaustive-deps

  const gone = refresh.error !== undefined && GONE.has(describeError(refresh.error).code);
  const title = titleOf(asset);
  const warnings = rightsWarnings(asset.rights);
  const server = connectionNames(panel.connections)[asset.connection] ?? asset.connection;

  return (
    <div className="screen detail" data-testid="asset-detail" data-asset={asset.id}>
      <div className="row spread">
        <Button action quiet onClick={props.onBack} testId="back">
          ‹ Results
        </Button>
        <span className="item-sub">{server}</span>
      </div>
      <sp-heading size="S" data-testid="detail-title">
        {title}
      </sp-heading>
      {refresh.error ? <ErrorMessage error={refresh.error} actions={{ back: props.onBack, retry: () => void refresh.run() }} testId="detail-error" /> : null}
      {gone ? null : (
        <>
          <div className="detail-image">
            {asset.thumbnailUrl && !broken ? (
              <img src={panel.client.url(asset.thumbnailUrl)} alt={title} onError={() => setBroken(true)} data-testid="detail-image" />
            ) : (
              <div className="tile-placeholder">No preview</div>
            )}
          </div>
          <RightsWarnings warnings={warnings} />
          <OpenOrPlace asset={asset} onCheckout={setCheckout} onBack={props.onBack} />
          <SaveBack checkout={checkout} label={asset.filename} onLanded={() => void refresh.run()} />
          <Metadata asset={asset} />
          <Versions asset={asset} />
          <Provenance asset={asset} />
        </>
      )}
    </div>
  );
}

const FIELD_LABELS: Record<string, string> = {
  title: 'Title',
  description: 'Description',
  creator: 'Creator',
  keywords: 'Keywords',
  copyrightNotice: 'Copyright',
  credit: 'Credit',
  usageTerms: 'Usage terms',
  city: 'City',
  country: 'Country',
  dateCreated: 'Created',
};

function Metadata({ asset }: { asset: AgentAsset }) {
  const rows: [string, string][] = [
    ['File', asset.filename],
    ['Type', asset.mediaType],
    ...(asset.width && asset.height ? ([['Size', `${asset.width} × ${asset.height} px`]] as [string, string][]) : []),
    ...Object.entries(asset.metadata ?? {})
      .filter(([, v]) => v !== null && v !== '' && !(Array.isArray(v) && v.length === 0))
      .map(([k, v]): [string, string] => [FIELD_LABELS[k] ?? k, Array.isArray(v) ? v.join(', ') : String(v)]),
    ['Link', asset.uri],
  ];
  return (
    <div className="section" data-testid="metadata">
      <sp-heading size="XS">Metadata</sp-heading>
      {rows.map(([k, v]) => (
        <div className="kv" key={k}>
          <span className="kv-key">{k}</span>
          <span className="kv-value">{v}</span>
        </div>
      ))}
    </div>
  );
}

function Versions({ asset }: { asset: AgentAsset }) {
  const versions = [...(asset.versions ?? [])].reverse();
  return (
    <div className="section" data-testid="versions">
      <sp-heading size="XS">Versions ({versions.length})</sp-heading>
      {versions.map((v) => (
        <div className="list-item version" key={v.id} data-testid="version" data-version={v.id}>
          <div className="row spread">
            <span className="item-title">
              {v.id}
              {v.id === asset.currentVersion ? ' (current)' : ''}
            </span>
            <span className="item-sub">{v.created.slice(0, 16).replace('T', ' ')}</span>
          </div>
          <div className="item-sub">
            {v.createdBy ? `${v.createdBy} · ` : ''}
            {formatBytes(v.size)}
            {v.width && v.height ? ` · ${v.width} × ${v.height}` : ''}
          </div>
          {v.comment ? <div className="version-comment">{v.comment}</div> : null}
        </div>
      ))}
    </div>
  );
}

function Provenance({ asset }: { asset: AgentAsset }) {
  const entries = asset.provenance ?? [];
  if (entries.length === 0) return null;
  return (
    <div className="section" data-testid="provenance">
      <sp-heading size="XS">Provenance</sp-heading>
      {entries.map((entry, i) => (
        <div className="list-item" key={i}>
          {Object.entries(entry)
            .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
            .map(([k, v]) => (
              <div className="kv" key={k}>
                <span className="kv-key">{k}</span>
                <span className="kv-value">{String(v)}</span>
              </div>
            ))}
        </div>
      ))}
    </div>
  );
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(0)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}
