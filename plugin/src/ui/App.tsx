/**
 * The panel: tabs for search (with the asset detail over it), the upload queue, servers, IIIF
 * sources and (where the host has links) placed images. It checks the companion every few
 * seconds: while it is away or unpaired, the gate explains what to do; when it comes back,
 * saves the panel kept are sent.
 */
import { useCallback, useMemo, useState } from 'react';
import type { AgentAsset, AgentStatus } from '../../../shared/schemas/agent.ts';
import type { HostAdapter } from '../../host/types.ts';
import { AgentClient } from '../agent-client.ts';
import { saveAgentSettings, type AgentSettings, type KeyValueStore } from '../settings.ts';
import { AgentGate } from './AgentGate.tsx';
import { AssetDetail } from './asset/AssetDetail.tsx';
import { flushPending } from './asset/save-back.ts';
import { ConnectionsScreen } from './connections/ConnectionsScreen.tsx';
import { ErrorBoundary } from './ErrorBoundary.tsx';
import { usePoll } from './hooks.ts';
import { IiifScreen } from './iiif/IiifScreen.tsx';
import { LinksScreen } from './links/LinksScreen.tsx';
import { ErrorMessage } from './Message.tsx';
import { describeError, isAgentProblem } from './messages.ts';
import { PanelContext, type Panel, type Tab } from './panel-context.ts';
import { PendingSaves } from './queue/pending-saves.ts';
import { QueueScreen } from './queue/QueueScreen.tsx';
import { prefetchFirstPage } from './search/prefetch.ts';
import { SearchScreen } from './search/SearchScreen.tsx';
import { Button } from './spectrum/Button.tsx';

export interface AppProps {
  host: HostAdapter;
  store: KeyValueStore;
  uxp: boolean;
  settings: AgentSettings;
}

/** How often the companion's status is read, milliseconds. */
const STATUS_EVERY_MS = 4000;

export function App(props: AppProps) {
  const [settings, setSettings] = useState(props.settings);
  const client = useMemo(() => {
    const fresh = new AgentClient({ baseUrl: settings.baseUrl, token: settings.token });
    prefetchFirstPage(fresh);
    return fresh;
  }, [settings]);
  const pending = useMemo(() => new PendingSaves(props.store), [props.store]);
  const [status, setStatus] = useState<AgentStatus | undefined>();
  const [agentError, setAgentError] = useState<unknown>();
  const [checking, setChecking] = useState(true);
  const [tab, setTab] = useState<Tab>('search');
  const [detail, setDetail] = useState<AgentAsset | undefined>();
  const [removed, setRemoved] = useState<AgentAsset | undefined>();
  const [pendingVersion, setPendingVersion] = useState(0);
  const pendingChanged = useCallback(() => setPendingVersion((v) => v + 1), []);

  const refreshStatus = usePoll(
    async () => {
      setChecking(true);
      try {
        const fresh = await client.status();
        setStatus(fresh);
        setAgentError(undefined);
        if (pending.list().length > 0) {
          const { sent } = await flushPending(client, pending);
          if (sent > 0) pendingChanged();
        }
      } catch (error) {
        setAgentError(error);
      } finally {
        setChecking(false);
      }
    },
    STATUS_EVERY_MS,
    true,
    [client],
  );

  const panel: Panel = useMemo(
    () => ({
      client,
      host: props.host,
      store: props.store,
      pending,
      uxp: props.uxp,
      status,
      connections: status?.connections ?? [],
      refreshStatus,
      pendingVersion,
      pendingChanged,
      go: (next: Tab) => {
        setDetail(undefined);
        setTab(next);
      },
      showAsset: (asset: AgentAsset) => {
        setTab('search');
        setDetail(asset);
      },
    }),
    [client, props.host, props.store, props.uxp, pending, status, refreshStatus, pendingVersion, pendingChanged],
  );

  const saveSettings = (next: { baseUrl?: string; token?: string }) => {
    saveAgentSettings(props.store, next);
    setSettings((s) => ({ baseUrl: next.baseUrl ?? s.baseUrl, token: next.token?.trim() || s.token, tokenSource: next.token ? 'stored' : s.tokenSource }));
  };

  const pendingCount = pending.list().length;
  // Before the first answer, or when pairing is the problem, nothing else can work: the gate
  // explains. A companion that stops later leaves the screens as they were, under a banner.
  const companionDown = agentError !== undefined && describeError(agentError).code === 'ERR_AGENT_NOT_RUNNING';
  if (agentError !== undefined && isAgentProblem(agentError) && (!status || !companionDown)) {
    return (
      <div className="panel" data-testid="panel">
        <AgentGate error={agentError} settings={settings} uxp={props.uxp} pendingCount={pendingCount} checking={checking} onRetry={refreshStatus} onSave={saveSettings} />
      </div>
    );
  }
  if (!status) {
    return (
      <div className="panel" data-testid="panel">
        {agentError ? <ErrorMessage error={agentError} actions={{ retry: refreshStatus }} /> : <div className="hint">Connecting to the Imagine companion…</div>}
      </div>
    );
  }

  const queueCount = status.queue.pending + status.queue.conflicts + status.queue.failed + pendingCount;
  const tabs: { id: Tab; label: string }[] = [
    { id: 'search', label: 'Search' },
    { id: 'queue', label: queueCount > 0 ? `Queue (${queueCount})` : 'Queue' },
    { id: 'connections', label: 'Servers' },
    { id: 'iiif', label: 'IIIF' },
    ...(props.host.capabilities.links ? [{ id: 'links' as Tab, label: 'Links' }] : []),
  ];
  return (
    <PanelContext.Provider value={panel}>
      <div className="panel" data-testid="panel">
        <div className="tabs" role="tablist">
          {tabs.map((t) => (
            <div key={t.id} className={t.id === tab ? 'tab tab-selected' : 'tab'} role="tab" aria-selected={t.id === tab}>
              <Button action quiet={t.id !== tab} onClick={() => panel.go(t.id)} testId={`tab-${t.id}`}>
                {t.label}
              </Button>
            </div>
          ))}
        </div>
        {agentError ? <ErrorMessage error={agentError} actions={{ retry: refreshStatus, 'start-companion': refreshStatus }} testId="agent-banner" /> : null}
        {companionDown && pendingCount > 0 ? (
          <div className="message message-warning" data-testid="banner-pending">
            {pendingCount === 1 ? '1 save is' : `${pendingCount} saves are`} kept in this panel and will be sent when the companion is back.
          </div>
        ) : null}
        <div className="screens">
          <ErrorBoundary resetKey={`${tab}/${detail?.id ?? ''}`} onReset={() => panel.go('search')}>
            <div className={tab === 'search' && !detail ? 'view' : 'view hidden'}>
              <SearchScreen removed={removed} />
            </div>
            {tab === 'search' && detail ? (
              <div className="view">
                <AssetDetail key={`${detail.connection}/${detail.id}`} asset={detail} onBack={() => setDetail(undefined)} onGone={setRemoved} />
              </div>
            ) : null}
            {tab === 'queue' ? <QueueScreen /> : null}
            {tab === 'connections' ? <ConnectionsScreen /> : null}
            {tab === 'iiif' ? <IiifScreen /> : null}
            {tab === 'links' ? <LinksScreen /> : null}
          </ErrorBoundary>
        </div>
        <div className="footer item-sub" data-testid="footer">
          {props.host.name === 'browser' ? 'Browser preview · ' : ''}
          {status.connections.length} server{status.connections.length === 1 ? '' : 's'} · companion {status.origin || settings.baseUrl}
        </div>
      </div>
    </PanelContext.Provider>
  );
}
