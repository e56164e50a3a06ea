/**
 * Inviting a guest: the collections are shared with the guest's e-mail address (as the identity
 * `name@domain`, read only), a one-time sign-in link is recorded, and, when SMTP is configured,
 * mailed. The link is always returned, so whoever invites can pass it on by hand.
 */
import { ProtocolError, isProtocolError } from '../../shared/errors.ts';
import { formatIdentity, parseIdentity } from '../../shared/identity.ts';
import { uriAuthorityFromOrigin } from '../../shared/uri.ts';
import type { Library } from '../library/library.ts';
import type { GuestStore } from './store.ts';
import { sendMail, type SendMailOptions } from './smtp.ts';

export const GUEST_PREFIX = '/guest';

/**
 * The identity of a guest's e-mail address (lowercase `name@domain`).
 * @throws ERR_GUEST_EMAIL_INVALID when the address is not an identity, or names a user of this
 *   server (`ownAuthority`): a guest must never act as one of its users towards other servers.
 */
export function guestIdentity(email: string, ownAuthority: string): string {
  let identity: string;
  try {
    identity = formatIdentity(parseIdentity(email.trim()));
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^invalid user identity (?:".*?"|\S+): /, '') : String(error);
    throw new ProtocolError('ERR_GUEST_EMAIL_INVALID', `${JSON.stringify(email)} cannot be a guest: ${reason}`, { cause: error });
  }
  if (identity.slice(identity.lastIndexOf('@') + 1) === ownAuthority.toLowerCase()) {
    throw new ProtocolError('ERR_GUEST_EMAIL_INVALID', `${identity} is a user of this server, not a guest`);
  }
  return identity;
}

export interface InviteOptions {
  library: Library;
  store: GuestStore;
  email: string;
  collections: string[];
  /** This server's public origin: the link points at it, and its users cannot be guests. */
  origin: string;
  linkTtlSeconds: number;
  /** Who invites (recorded). */
  createdBy?: string;
  mail?: { smtpUrl: string; from?: string; options?: SendMailOptions };
}

export interface Invitation {
  email: string;
  collections: string[];
  link: string;
  expires: string;
  mail: { sent: boolean; error?: { code: string; message: string } };
}

export async function inviteGuest(options: InviteOptions): Promise<Invitation> {
  const { library, store } = options;
  const authority = uriAuthorityFromOrigin(options.origin);
  const email = guestIdentity(options.email, authority);
  const collections = [...new Set(options.collections)];
  if (collections.length === 0) throw new ProtocolError('ERR_VALIDATION', 'invite a guest to at least one collection');
  for (const id of collections) library.getCollection(id);
  for (const id of collections) {
    // A guest only reads: an existing write share (a remote user's) is left as it is.
    if (library.getCollection(id).shares?.[email] !== 'write') await library.shareCollection(id, email, 'read');
  }
  const { token, record } = await store.createInvite({
    identity: email,
    collections,
    ttlSeconds: options.linkTtlSeconds,
    createdBy: options.createdBy,
  });
  const link = `${options.origin}${GUEST_PREFIX}/login?token=${token}`;
  const invitation: Invitation = { email, collections, link, expires: record.expires, mail: { sent: false } };
  if (options.mail) {
    const names = collections.map((id) => library.getCollection(id).name);
    try {
      await sendMail(
        options.mail.smtpUrl,
        {
          from: options.mail.from ?? `imagine@${new URL(options.origin).hostname}`,
          to: email,
          subject: `Pictures shared with you on ${authority}`,
          text: invitationText({ authority, names, link, expires: record.expires }),
        },
        options.mail.options,
      );
      invitation.mail = { sent: true };
    } catch (error) {
      const code = isProtocolError(error) ? error.code : 'ERR_MAIL_FAILED';
      invitation.mail = { sent: false, error: { code, message: error instanceof Error ? error.message : String(error) } };
    }
  }
  return invitation;
}

function invitationText(input: { authority: string; names: string[]; link: string; expires: string }): string {
  return [
    `Hello,`,
    ``,
    `${input.authority} shares ${input.names.length === 1 ? 'a collection' : 'collections'} of pictures with you: ${input.names.join(', ')}.`,
    ``,
    `Sign in with this link (it works once, until ${input.expires}):`,
    input.link,
    ``,
    `You will see these pictures, and those other studios share with this address, in one place,`,
    `and can download the ones you choose in one archive.`,
  ].join('\n');
}
