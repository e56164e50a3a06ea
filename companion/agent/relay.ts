/**
 * Asking a connection's server on the panel's behalf, and what to do when it cannot answer:
 * every outcome is recorded as the connection's state (ok / offline / unauthorized / error),
 * and an unreachable server is answered from the local mirror when one runs, else from the
 * asset metadata the agent has seen (`local: true`).
 */
import { isProtocolError, ProtocolError } from '../../shared/errors.ts';
import type { ConnectionState } from '../../shared/schemas/agent.ts';
import type { Asset, SearchPage, SearchQuery } from '../../shared/schemas/asset.ts';
import { isUnreachable, type AgentServices } from './services.ts';

export const RELAY_DEFAULTS = Object.freeze({
  timeoutMs: 30_000, // one call to a server (a slow search still completes in the background)
});

/** The connection state an error means. */
export function stateOf(error: unknown): ConnectionState {
  if (isUnreachable(error)) return 'offline';
  if (isProtocolError(error, 'ERR_UNAUTHORIZED') || isProtocolError(error, 'ERR_TOKEN_INVALID')) return 'unauthorized';
  return 'error';
}

/** Records how a call to a connection went (never throws: a state is information, not a result). */
export async function recordOutcome(services: AgentServices, connectionId: string, error?: unknown): Promise<void> {
  try {
    if (error === undefined) {
      await services.connections.markState(connectionId, 'ok');
      return;
    }
    // A missing asset says nothing bad about the connection.
    if (isProtocolError(error) && error.status === 404 && !isUnreachable(error)) return;
    const described = describeError(error);
    await services.connections.markState(connectionId, stateOf(error), described);
  } catch {
    // the state file could not be written: the answer still goes out
  }
}

export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof ProtocolError) return { code: error.code, message: error.message };
  return { code: 'ERR_INTERNAL', message: 'internal error' };
}

/** A page from the local copies of a connection: the mirror first, then the seen-asset cache. */
export async function localSearch(
  services: AgentServices,
  connectionId: string,
  query: SearchQuery,
  from?: 'mirror' | 'seen',
): Promise<{ page: SearchPage; from: 'mirror' | 'seen' } | undefined> {
  if (from !== 'seen' && services.mirror) {
    const page = await services.mirror.search(connectionId, query);
    if (page) return { page, from: 'mirror' };
    if (from === 'mirror') return undefined;
  }
  if (from === 'mirror' || !services.assetCache.knows(connectionId)) return undefined;
  return { page: services.assetCache.search(connectionId, query), from: 'seen' };
}

/** A local copy of an asset: the mirror's, else the last one seen. */
export async function localAsset(services: AgentServices, connectionId: string, assetId: string): Promise<Asset | undefined> {
  const mirrored = await services.mirror?.getAsset(connectionId, assetId);
  return mirrored ?? services.assetCache.get(connectionId, assetId);
}

/**
 * An asset from its server (remembered for offline use), or, when the server is unreachable,
 * from a local copy. Other errors (not found, unauthorized) are thrown as they came.
 */
export async function getAsset(
  services: AgentServices,
  connectionId: string,
  assetId: string,
): Promise<{ asset: Asset; local: boolean }> {
  const client = services.client(connectionId, { timeoutMs: RELAY_DEFAULTS.timeoutMs });
  try {
    const { asset } = await client.getAsset(assetId);
    services.assetCache.remember(connectionId, [asset]);
    await recordOutcome(services, connectionId);
    return { asset, local: false };
  } catch (error) {
    await recordOutcome(services, connectionId, error);
    if (isProtocolError(error, 'ERR_ASSET_NOT_FOUND') || isProtocolError(error, 'ERR_ASSET_GONE')) {
      services.assetCache.forget(connectionId, assetId);
    }
    if (!isUnreachable(error)) throw error;
    const local = await localAsset(services, connectionId, assetId);
    if (!local) throw error;
    return { asset: local, local: true };
  }
}
