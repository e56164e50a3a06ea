/**
 * One original for a guest's archive, as the guest may have it:
 * - here: the privacy-filtered copy the guest policy allows (library/private-copies.ts);
 * - on a peer: through the peer's signed download ticket (asked with `sub` = the guest, so the
 *   peer hands out its own filtered copy), downloaded into a temp file and verified against the
 *   ticket's size and sha256 before it is used.
 * Rights that forbid distribution refuse the original on both sides.
 */
import { rm } from 'node:fs/promises';
import { fromProblem, ProtocolError } from '../../shared/errors.ts';
import { DownloadTicket } from '../../shared/schemas/asset.ts';
import { checkSchema } from '../../shared/validate.ts';
import { downloadVerified } from '../federation/import.ts';
import type { FederationServices } from '../federation/services.ts';
import type { Auth } from '../library/auth.ts';
import type { Library } from '../library/library.ts';
import type { PrivateCopies } from '../library/private-copies.ts';
import type { UserRecord } from '../library/records.ts';
import { rightsSummary } from '../library/rights.ts';
import { assetPrivacyPolicy } from '../metadata/privacy.ts';
import type { PreparedItem } from './archive.ts';
import { locate } from './combined.ts';

export interface GuestOriginalsOptions {
  library: Library;
  auth: Auth;
  privateCopies: PrivateCopies;
  federation: FederationServices | undefined;
  origin: string;
  actor: UserRecord;
  identity: string;
  maxBytes: number;
  timeoutMs?: number;
}

export function guestOriginals(options: GuestOriginalsOptions): (uri: string, signal: AbortSignal) => Promise<PreparedItem> {
  const { library, auth, federation } = options;
  return async (uri) => {
    const located = await locate(uri, options.origin, federation);
    const folder = located.authority.replace(/:/g, '_');
    if (located.local) {
      const asset = library.catalog.asset(located.id);
      // Not shared and absent look the same to a guest.
      if (!asset || !auth.canRead(options.actor, asset)) throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${located.id}" shared with you here`);
      if (asset.deleted) throw new ProtocolError('ERR_ASSET_GONE', `asset "${asset.id}" was deleted`);
      const version = library.getVersion(asset, located.version);
      const rights = rightsSummary(version.metadata);
      if (rights.doNotDistribute || rights.expired) {
        throw new ProtocolError('ERR_DISTRIBUTION_FORBIDDEN', `the rights of "${asset.id}" forbid handing out its original`);
      }
      const policy = assetPrivacyPolicy('guest', asset.collections.map((id) => library.findCollection(id)?.privacy));
      const copy = await options.privateCopies.of(version, policy);
      return { folder, filename: asset.filename, path: library.blobs.pathOf(copy.sha256), sha256: copy.sha256, size: copy.size };
    }
    const id = encodeURIComponent(located.id);
    const version = located.version ? `&version=${encodeURIComponent(located.version)}` : '';
    const response = await federation!
      .signedFetch(options.origin, `${located.api}/assets/${id}/download?rendition=original${version}`, {
        subject: options.identity,
        timeoutMs: 30_000,
      })
      .catch((error: unknown) => {
        throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', `${located.authority} could not be reached`, { cause: error });
      });
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) throw fromProblem(body, response.status);
    const checked = checkSchema(DownloadTicket, body, 3);
    if (!checked.ok) throw new ProtocolError('ERR_UPSTREAM_INVALID', `${located.authority} answered a download with something else`);
    const ticket = checked.value;
    if (new URL(ticket.url).origin !== located.origin) {
      throw new ProtocolError('ERR_UPSTREAM_INVALID', `${located.authority} handed out a download URL on another origin`);
    }
    if (ticket.size > options.maxBytes) throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `${uri} is ${ticket.size} bytes, over the limit`);
    const filename = await remoteFilename(federation!, options, located.api, id).catch(() => `${located.id}${extensionOf(ticket.mediaType)}`);
    const tmp = library.blobs.tempPath();
    const cleanup = () => rm(tmp, { force: true });
    try {
      await downloadVerified(ticket.url, tmp, ticket.size, ticket.sha256, options.timeoutMs ?? 120_000);
    } catch (error) {
      await cleanup();
      throw error;
    }
    return { folder, filename, path: tmp, sha256: ticket.sha256, size: ticket.size, cleanup };
  };
}

/** The asset's file name on the peer (the ticket does not carry it). */
async function remoteFilename(federation: FederationServices, options: GuestOriginalsOptions, api: string, id: string): Promise<string> {
  const response = await federation.signedFetch(options.origin, `${api}/assets/${id}`, { subject: options.identity, timeoutMs: 10_000 });
  const body = (await response.json()) as { filename?: unknown };
  if (!response.ok || typeof body.filename !== 'string') throw new Error('no file name');
  return body.filename;
}

function extensionOf(mediaType: string): string {
  const sub = mediaType.split('/')[1] ?? '';
  return sub === 'jpeg' ? '.jpg' : sub ? `.${sub.replace(/[^a-z0-9]/g, '')}` : '';
}
