/**
 * Import (fork) from a peer: copy an asset of another server into this library, with
 * attribution. The peer is asked through signed requests (it must trust this server with the
 * `view` and `import` scopes); its rights are checked first (do-not-distribute or an expired
 * licence refuse the import); the bytes are verified against the sha256 the peer announced;
 * then fork provenance is written (new DocumentID, DerivedFrom and dc:source = the parent's
 * imagine:// URI, a `derived` History event; nothing else changes) and the copy becomes a new
 * asset here. Nothing is stored when any step fails.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fromProblem, ProtocolError } from '../../shared/errors.ts';
import { Asset, DownloadTicket } from '../../shared/schemas/asset.ts';
import { parseUri } from '../../shared/uri.ts';
import { checkSchema } from '../../shared/validate.ts';
import type { TSchema, Static } from 'typebox';
import { BlobStore } from '../library/blob-store.ts';
import type { CreateResult, Library } from '../library/library.ts';
import { writeForkProvenance } from '../metadata/fork.ts';
import type { FederationServices } from './services.ts';

export interface ImportOptions {
  federation: FederationServices;
  library: Library;
  /** This server's origin (issuer of the signed requests). */
  issuer: string;
  /** `imagine://peer/images/id` (optionally `@version`). */
  uri: string;
  collection?: string;
  /** Local user importing (recorded as creator of the new asset). */
  user?: string;
  /** The same user as `name@domain`, vouched for to the peer. */
  subject?: string;
  maxBytes: number;
  timeoutMs?: number;
}

export async function importFromPeer(options: ImportOptions): Promise<CreateResult & { parent: Asset; parentUri: string }> {
  const { federation, library } = options;
  const uri = parseUri(options.uri);
  if (uri.type !== 'images') throw new ProtocolError('ERR_URI_INVALID', 'only images can be imported');
  const origin = federation.resolver.originOf(uri.authority);
  if (origin === options.issuer) throw new ProtocolError('ERR_CONFLICT', 'this asset is already in this library');
  const peer = await federation.peers.find('outgoing', origin);
  if (!peer || (peer.state !== 'requested' && peer.state !== 'accepted')) {
    throw new ProtocolError('ERR_PEER_UNKNOWN', `${uri.authority} is not a peer: ask it to trust this server first (imagine peers request)`);
  }
  if (options.collection) library.getCollection(options.collection);
  const discovery = await federation.resolver.resolve(origin);
  const api = discovery.endpoints.api.replace(/\/+$/, '');
  const call = async <S extends TSchema>(url: string, schema: S): Promise<Static<S>> => {
    const response = await federation.signedFetch(options.issuer, url, { subject: options.subject, timeoutMs: options.timeoutMs });
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok) throw fromProblem(body, response.status);
    const checked = checkSchema(schema, body, 3);
    if (!checked.ok) throw new ProtocolError('ERR_UPSTREAM_INVALID', `${origin} answered with something unexpected`);
    return checked.value;
  };

  const id = encodeURIComponent(uri.id);
  const parent = await call(`${api}/assets/${id}`, Asset);
  if (parent.rights.doNotDistribute || parent.rights.expired) {
    throw new ProtocolError(
      'ERR_DISTRIBUTION_FORBIDDEN',
      `${options.uri} may not be imported: ${parent.rights.doNotDistribute ? 'its rights say do not distribute' : 'its licence has expired'}`,
    );
  }
  const version = uri.version ?? parent.currentVersion;
  const ticket = await call(
    `${api}/assets/${id}/download?rendition=original&version=${encodeURIComponent(version)}`,
    DownloadTicket,
  );
  if (ticket.size > options.maxBytes) {
    throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `${options.uri} is ${ticket.size} bytes, over this library's limit`);
  }
  if (new URL(ticket.url).origin !== origin) {
    throw new ProtocolError('ERR_UPSTREAM_INVALID', `${origin} handed out a download URL on another origin`);
  }

  const parentUri = `imagine://${uri.authority}/images/${uri.id}@${ticket.version}`;
  // The same version imported before: that asset answers, nothing is copied again.
  const existing = library.findDerivedFrom(parentUri);
  if (existing) return { asset: existing, duplicate: true, parent, parentUri };
  const tmp = library.blobs.tempPath();
  try {
    await downloadVerified(ticket.url, tmp, ticket.size, ticket.sha256, options.timeoutMs ?? 120_000);
    await writeForkProvenance(tmp, { parentUri });
    const { sha256, size } = await BlobStore.hashFile(tmp);
    const created = await library.createAssetFromTemp(
      { path: tmp, sha256, size },
      {
        filename: parent.filename,
        collection: options.collection,
        user: options.user,
        comment: `Imported from ${parentUri}`,
        derivedFrom: parentUri,
      },
    );
    return { ...created, parent, parentUri };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Streams `url` to `path`, refusing more than `size` bytes and bytes that do not hash to `sha256`. */
export async function downloadVerified(url: string, path: string, size: number, sha256: string, timeoutMs: number): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' }).catch((error: unknown) => {
    throw new ProtocolError('ERR_UPSTREAM_UNREACHABLE', 'the original could not be fetched', { cause: error });
  });
  if (!response.ok || !response.body) {
    throw new ProtocolError('ERR_UPSTREAM_ERROR', `the original answered ${response.status}`);
  }
  const hash = createHash('sha256');
  let received = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > size) return done(new ProtocolError('ERR_DIGEST_MISMATCH', 'the original is longer than announced'));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), meter, createWriteStream(path));
  if (received !== size || hash.digest('hex') !== sha256) {
    throw new ProtocolError('ERR_DIGEST_MISMATCH', 'the original does not match the sha256 its server announced');
  }
}
