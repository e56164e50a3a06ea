/**
 * How the agent hands a server's asset to the panel (`AgentAsset`): the asset as the server
 * sent it, plus where it comes from (`connection`, `origin`) and `thumbnailUrl`, an
 * agent-relative URL of its thumbnail signed by the agent, so an `<img>` loads it from the
 * agent's cache without the pairing token.
 *
 * @example
 *   const asset = toAgentAsset(services, 'images.example', serverAsset);
 *   asset.thumbnailUrl; // '/agent/v1/thumbs/images.example/a1/v3?exp=1767225600&sig=...'
 */
import { AGENT_PREFIX, type AgentAsset } from '../../shared/schemas/agent.ts';
import type { Asset } from '../../shared/schemas/asset.ts';
import type { AgentServices } from './services.ts';

/** The agent-relative, unsigned path of a thumbnail in the agent's cache. */
export function thumbPath(connectionId: string, assetId: string, version: string): string {
  const segment = encodeURIComponent;
  return `${AGENT_PREFIX}/thumbs/${segment(connectionId)}/${segment(assetId)}/${segment(version)}`;
}

/** A signed, agent-relative URL of the thumbnail of one version of an asset. */
export function signedThumbUrl(
  services: Pick<AgentServices, 'urls'>,
  connectionId: string,
  assetId: string,
  version: string,
): string {
  return services.urls.sign(thumbPath(connectionId, assetId, version));
}

/** The asset as the panel gets it from the agent. */
export function toAgentAsset(
  services: Pick<AgentServices, 'urls' | 'connections'>,
  connectionId: string,
  asset: Asset,
): AgentAsset {
  const origin = services.connections.get(connectionId)?.origin ?? '';
  const hasThumbnail = !asset.deleted && (asset.thumbnail !== null || asset.iiif !== null);
  return {
    ...asset,
    connection: connectionId,
    origin,
    thumbnailUrl: hasThumbnail ? signedThumbUrl(services, connectionId, asset.id, asset.currentVersion) : null,
  };
}
