/**
 * `imagine guests invite EMAIL --collection ID...`: shares collections with an e-mail address
 * and prints the one-time sign-in link as the last line (mailed too when `smtpUrl` is set).
 *
 * Shares live in the catalog, which has one writer: while a server runs on the data folder the
 * command asks that server (`POST {api}/guests`, its URL from `<data>/writer.lock`) with an
 * administrator's `--token`; otherwise it opens the data folder itself.
 */
import { fromProblem, ProtocolError } from '../../shared/errors.ts';
import { loadConfig, type Config } from '../config.ts';
import { inviteGuest, type Invitation } from '../guests/invite.ts';
import { openGuestStore } from '../guests/store.ts';
import { readLock } from '../library/lock.ts';
import { libraryServicesOptions, openLibraryServices } from '../library/services.ts';

export interface GuestsInviteFlags {
  data?: string;
  collection?: string[];
  token?: string;
  json?: boolean;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function runGuestsInvite(email: string, flags: GuestsInviteFlags): Promise<void> {
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const wanted = flags.collection ?? [];
  if (wanted.length === 0) throw new ProtocolError('ERR_VALIDATION', 'name at least one --collection (its id or its name)');
  const holder = await readLock(config.dataDir);
  const running = holder && holder.pid !== process.pid && isAlive(holder.pid) ? holder : undefined;
  let invitation: Invitation;
  if (running?.url) {
    const token = flags.token ?? process.env.IMAGINE_TOKEN;
    if (!token) {
      throw new ProtocolError(
        'ERR_CATALOG_LOCKED',
        `the server at ${running.url} holds ${config.dataDir}: pass --token with an administrator's token (or stop the server)`,
      );
    }
    invitation = await inviteThroughServer(running.url, token, email, wanted);
  } else if (running) {
    throw new ProtocolError('ERR_CATALOG_LOCKED', `${config.dataDir} is in use by "${running.command}" (pid ${running.pid}); try again when it ends`);
  } else {
    invitation = await inviteDirectly(config, email, wanted);
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(invitation)}\n`);
    return;
  }
  const mail = invitation.mail.sent
    ? `mailed to ${invitation.email}`
    : invitation.mail.error
      ? `NOT mailed (${invitation.mail.error.code}: ${invitation.mail.error.message}); pass the link on yourself`
      : 'not mailed (no smtpUrl configured); pass the link on yourself';
  process.stdout.write(
    `invited ${invitation.email} to ${invitation.collections.length} collection(s), ${mail}\n` +
      `sign-in link (works once, until ${invitation.expires}):\n${invitation.link}\n`,
  );
}

async function inviteDirectly(config: Config, email: string, wanted: string[]): Promise<Invitation> {
  const services = await openLibraryServices(libraryServicesOptions(config, 'imagine guests invite'));
  try {
    const store = await openGuestStore(config.dataDir);
    const collections = wanted.map((idOrName) => {
      const found = services.library.findCollection(idOrName) ?? services.library.catalog.data.collections.find((c) => c.name === idOrName);
      if (!found) throw new ProtocolError('ERR_COLLECTION_NOT_FOUND', `no collection "${idOrName}"`);
      return found.id;
    });
    const invitation = await inviteGuest({
      library: services.library,
      store,
      email,
      collections,
      origin: config.publicOrigin ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`,
      linkTtlSeconds: config.guestLinkTtlSeconds,
      createdBy: 'imagine guests invite',
      ...(config.smtpUrl ? { mail: { smtpUrl: config.smtpUrl, from: config.smtpFrom } } : {}),
    });
    await store.flush();
    return invitation;
  } finally {
    await services.close();
  }
}

async function inviteThroughServer(url: string, token: string, email: string, wanted: string[]): Promise<Invitation> {
  const api = `${url.replace(/\/+$/, '')}/api/v1`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const call = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${api}${path}`, { ...init, headers, signal: AbortSignal.timeout(60_000) }).catch((error: unknown) => {
      throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `the server at ${url} could not be reached`, { cause: error });
    });
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) throw fromProblem(body, response.status);
    return body;
  };
  const listed = (await call('/collections')) as { items: { id: string; name: string }[] };
  const collections = wanted.map((idOrName) => {
    const found = listed.items.find((c) => c.id === idOrName) ?? listed.items.find((c) => c.name === idOrName);
    if (!found) throw new ProtocolError('ERR_COLLECTION_NOT_FOUND', `no collection "${idOrName}" (that this token can see)`);
    return found.id;
  });
  return (await call('/guests', { method: 'POST', body: JSON.stringify({ email, collections }) })) as Invitation;
}
