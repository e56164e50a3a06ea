/** What every screen of the panel gets: the agent client, the host, the pending saves, navigation. */
import { createContext, useContext } from 'react';
import type { AgentAsset, AgentStatus, Connection } from '../../../shared/schemas/agent.ts';
import type { HostAdapter } from '../../host/types.ts';
import type { AgentClient } from '../agent-client.ts';
import type { KeyValueStore } from '../settings.ts';
import type { PendingSaves } from './queue/pending-saves.ts';

export type Tab = 'search' | 'queue' | 'connections' | 'iiif' | 'links';

export interface Panel {
  client: AgentClient;
  host: HostAdapter;
  store: KeyValueStore;
  pending: PendingSaves;
  uxp: boolean;
  status: AgentStatus | undefined;
  connections: Connection[];
  /** Asks the agent for its status again (after adding a server, pushing...). */
  refreshStatus: () => void;
  /** Bumped when pending saves change, so views re-read them. */
  pendingVersion: number;
  pendingChanged: () => void;
  go: (tab: Tab) => void;
  showAsset: (asset: AgentAsset) => void;
}

export const PanelContext = createContext<Panel | null>(null);

export function usePanel(): Panel {
  const panel = useContext(PanelContext);
  if (!panel) throw new Error('usePanel outside the panel');
  return panel;
}

/** Connection ids to display names. */
export function connectionNames(connections: readonly Connection[]): Record<string, string> {
  return Object.fromEntries(connections.map((c) => [c.id, c.name || c.domain || c.id]));
}
