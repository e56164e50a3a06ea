/**
 * `imagine peers list | request URL | approve DOMAIN | revoke DOMAIN | mirror COLLECTION_URI` and
 * `imagine keys rotate`:
 * federation trust, administered on the data folder. They work while the server runs: the
 * peers file is shared under a lock, and the server reloads it on the next request.
 */
import { loadConfig, type Config } from '../config.ts';
import { ProtocolError, fromProblem } from '../../shared/errors.ts';
import { parseOrigin } from '../../shared/origin.ts';
import { readLock } from '../library/lock.ts';
import { originFromUserInput } from '../agent/connections.ts';
import { openFederation } from '../federation/services.ts';
import { parseScopes, type Peer } from '../federation/peers.ts';
import { openServerKeys } from '../federation/keys.ts';
import { formatIdentity, parseIdentity } from '../../shared/identity.ts';

interface PeersFlags {
  data?: string;
  json?: boolean;
  scopes?: string;
}

function configOf(flags: PeersFlags): Config {
  return loadConfig({ env: process.env, flags: { dataDir: flags.data } });
}

function print(flags: PeersFlags, value: unknown, text: string): void {
  process.stdout.write(flags.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

function describe(peer: Peer): string {
  const arrow = peer.direction === 'incoming' ? 'asks us ' : 'we asked';
  return `${peer.domain.padEnd(28)} ${arrow}  ${peer.state.padEnd(9)} ${peer.scopes.join(',')}`;
}

export async function runPeersList(flags: PeersFlags): Promise<void> {
  const federation = await openFederation(configOf(flags).dataDir);
  const peers = await federation.peers.list();
  print(flags, { items: peers }, peers.length ? peers.map(describe).join('\n') : 'no peers yet');
}

export async function runPeersApprove(domain: string, flags: PeersFlags): Promise<void> {
  const federation = await openFederation(configOf(flags).dataDir);
  const peer = await federation.peers.approve(domain, flags.scopes === undefined ? undefined : parseScopes(flags.scopes));
  print(flags, peer, `approved ${peer.domain} (${peer.scopes.join(', ')})`);
}

export async function runPeersRevoke(domain: string, flags: PeersFlags): Promise<void> {
  const federation = await openFederation(configOf(flags).dataDir);
  const peer = await federation.peers.revoke(domain);
  print(flags, peer, `revoked ${peer.domain}: its requests are refused from now on`);
}

/** Asks the server at URL to trust this one. This server must be running: the peer fetches its keys. */
export async function runPeersRequest(url: string, flags: PeersFlags): Promise<void> {
  const config = configOf(flags);
  const own = config.publicOrigin ?? (await readLock(config.dataDir))?.url;
  if (!own) {
    throw new ProtocolError(
      'ERR_SERVICE_UNAVAILABLE',
      'start this server first (imagine serve): the peer verifies the request with its published keys',
    );
  }
  const issuer = parseOrigin(own, { allowInsecure: true });
  const target = originFromUserInput(url);
  const scopes = flags.scopes === undefined ? undefined : parseScopes(flags.scopes);
  const federation = await openFederation(config.dataDir);
  const discovery = await federation.resolver.resolve(target);
  const endpoint = `${discovery.endpoints.api.replace(/\/+$/, '')}/federation/requests`;
  const response = await federation.signedFetch(issuer, endpoint, {
    method: 'POST',
    body: JSON.stringify(scopes ? { scopes } : {}),
  });
  const body = await response.json().catch(() => undefined);
  if (!response.ok) throw fromProblem(body, response.status);
  const state = (body as { state?: string }).state === 'approved' ? 'accepted' : 'requested';
  const peer = await federation.peers.recordOutgoing(target, state, scopes ?? parseScopes(undefined));
  print(flags, peer, `asked ${peer.domain} to trust ${issuer}: ${state === 'accepted' ? 'already approved' : 'pending its administrator'}`);
}

export async function runKeysRotate(flags: PeersFlags): Promise<void> {
  const keys = await openServerKeys(configOf(flags).dataDir);
  const kid = await keys.rotate();
  print(flags, { kid }, `new signing key ${kid}; the previous one stays published for a day`);
}

/**
 * Declares a mirror of a peer's collection (`imagine://peer/collections/ID`): the running server
 * picks the declaration up within seconds and makes the initial copy, then follows the peer's
 * change feed. The peer must trust this server (search, view, import and sync scopes).
 */
export async function runPeersMirror(uri: string, flags: PeersFlags & { as?: string }): Promise<void> {
  const config = configOf(flags);
  const own = config.publicOrigin ?? (await readLock(config.dataDir))?.url;
  if (!own) {
    throw new ProtocolError(
      'ERR_SERVICE_UNAVAILABLE',
      'start this server first (imagine serve): the mirror signs its requests as this server',
    );
  }
  const { declarationFor } = await import('../federation/mirror-service.ts');
  const { MirrorDeclarations } = await import('../federation/mirror-store.ts');
  const federation = await openFederation(config.dataDir);
  const declaration = await declarationFor(federation, {
    uri,
    localOrigin: parseOrigin(own, { allowInsecure: true }),
    ...(flags.as ? { subject: formatIdentity(parseIdentity(flags.as)) } : {}),
  });
  const { mirror, existed } = await new MirrorDeclarations(config.dataDir).add(declaration);
  print(
    flags,
    { ...mirror, existed },
    `${existed ? 'already mirroring' : 'mirroring'} ${mirror.uri} as ${mirror.id}: the server copies it and follows its changes`,
  );
}
