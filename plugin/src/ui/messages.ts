/**
 * What the panel tells the user when something fails, and the way out it offers. One place,
 * keyed by the error codes of shared/errors.ts, so every screen says the same thing for the
 * same failure and never shows a raw stack or a blank panel.
 */
import { ProtocolError, isErrorCode, type ErrorCode } from '../../../shared/errors.ts';

/** What the user can do about it; screens render each as a button. */
export type WayOut = 'retry' | 'pair' | 'start-companion' | 'connections' | 'sign-in' | 'back' | 'refine' | 'queue';

export interface UserMessage {
  code: ErrorCode;
  title: string;
  detail: string;
  wayOut: WayOut;
}

const MESSAGES: Partial<Record<ErrorCode, { title: string; wayOut: WayOut; detail?: string }>> = {
  ERR_AGENT_NOT_RUNNING: {
    title: 'The Imagine companion is not running',
    detail: 'Start it with "npx imagine serve" (or "npm start" in the repository), then try again. Your pending saves are kept.',
    wayOut: 'start-companion',
  },
  ERR_PAIRING_REQUIRED: {
    title: 'The panel is not paired with the companion',
    detail: 'Run "imagine pair" and paste the token it prints.',
    wayOut: 'pair',
  },
  ERR_HOST_FORBIDDEN: { title: 'The companion refused this address', wayOut: 'pair' },
  ERR_ORIGIN_FORBIDDEN: { title: 'The companion refused this panel', wayOut: 'pair' },
  ERR_UNAUTHORIZED: { title: 'The server wants you to sign in', wayOut: 'sign-in' },
  ERR_TOKEN_INVALID: { title: 'The server refused this token', detail: 'Check the token (or create a new one on the server) and try again.', wayOut: 'sign-in' },
  ERR_FORBIDDEN: { title: 'You are not allowed to do this on that server', wayOut: 'back' },
  ERR_DISCOVERY_UNREACHABLE: { title: 'That server could not be reached', detail: 'Check the address and your network.', wayOut: 'retry' },
  ERR_DISCOVERY_TIMEOUT: { title: 'That server took too long to answer', wayOut: 'retry' },
  ERR_DISCOVERY_STATUS: { title: 'That address is not an Imagine server', wayOut: 'retry' },
  ERR_DISCOVERY_NOT_JSON: { title: 'That address is not an Imagine server', wayOut: 'retry' },
  ERR_DISCOVERY_INVALID: { title: 'That server does not speak the Imagine protocol', wayOut: 'retry' },
  ERR_DISCOVERY_ORIGIN_MISMATCH: { title: 'That server claims to be another one', wayOut: 'retry' },
  ERR_ORIGIN_INVALID: { title: 'That is not a server address', detail: 'Enter a URL (https://images.example), a domain or an imagine:// link.', wayOut: 'retry' },
  ERR_URI_INVALID: { title: 'That is not a valid imagine:// link', wayOut: 'retry' },
  ERR_CONNECTION_EXISTS: { title: 'You are already connected to this server', wayOut: 'connections' },
  ERR_CONNECTION_NOT_FOUND: { title: 'That server is no longer in your connections', wayOut: 'connections' },
  ERR_UPSTREAM_UNREACHABLE: { title: 'The server is unreachable', detail: 'Showing what this computer has kept, if anything.', wayOut: 'retry' },
  ERR_UPSTREAM_TIMEOUT: { title: 'The server took too long to answer', wayOut: 'retry' },
  ERR_ASSET_NOT_FOUND: { title: 'This image is no longer on the server', detail: 'It may have been deleted meanwhile.', wayOut: 'back' },
  ERR_ASSET_GONE: { title: 'This image was deleted on the server', wayOut: 'back' },
  ERR_VERSION_NOT_FOUND: { title: 'That version is no longer on the server', wayOut: 'back' },
  ERR_PRECONDITION_FAILED: { title: 'Someone saved a newer version meanwhile', detail: 'Choose in the queue: push on top, or save as a new image.', wayOut: 'queue' },
  ERR_CHECKOUT_NOT_FOUND: { title: 'The local copy is gone', detail: 'Open the image again.', wayOut: 'back' },
  ERR_QUEUE_ITEM_NOT_FOUND: { title: 'That upload is no longer queued', wayOut: 'queue' },
  ERR_NOT_IN_CONFLICT: { title: 'That upload is no longer in conflict', wayOut: 'queue' },
  ERR_FILE_MISSING: { title: 'The local file is no longer there', detail: 'It was moved or deleted; open the image again.', wayOut: 'back' },
  ERR_FILE_BUSY: { title: 'The file is still being written', detail: 'Wait for the save to finish, then try again.', wayOut: 'retry' },
  ERR_DISK_FULL: { title: 'The disk is full', detail: 'Free some space, then try again.', wayOut: 'retry' },
  ERR_DOWNLOAD_INCOMPLETE: { title: 'The download broke off', wayOut: 'retry' },
  ERR_POLICY_VIOLATION: { title: "This file does not meet the studio's rules", wayOut: 'back' },
  ERR_DISTRIBUTION_FORBIDDEN: { title: 'The rights of this image forbid that', wayOut: 'back' },
  ERR_IIIF_SOURCE_INVALID: { title: 'That is not a IIIF manifest, collection or image', wayOut: 'retry' },
  ERR_MIRROR_UNAVAILABLE: { title: 'Nothing from this server is kept on this computer yet', wayOut: 'retry' },
  ERR_RATE_LIMITED: { title: 'Too many requests: wait a moment', wayOut: 'retry' },
  ERR_SERVICE_UNAVAILABLE: { title: 'The companion is starting or stopping', wayOut: 'retry' },
  ERR_VALIDATION: { title: 'The request was refused as malformed', wayOut: 'back' },
};

/** The message and way out for any thrown value (non-protocol errors become an internal error). */
export function describeError(error: unknown): UserMessage {
  const code: ErrorCode = error instanceof ProtocolError ? error.code : isErrorCode((error as { code?: unknown })?.code) ? ((error as { code: ErrorCode }).code) : 'ERR_INTERNAL';
  const known = MESSAGES[code];
  const raw = error instanceof Error ? error.message : String(error);
  const title = known?.title ?? (error instanceof ProtocolError ? error.title : 'Something went wrong');
  const detail = known?.detail ? `${known.detail}${raw && raw !== title ? ` (${trim(raw)})` : ''}` : trim(raw);
  return { code, title, detail, wayOut: known?.wayOut ?? 'retry' };
}

/** Whether the agent itself is unusable (not a problem of one server or one image). */
export function isAgentProblem(error: unknown): boolean {
  const code = describeError(error).code;
  return code === 'ERR_AGENT_NOT_RUNNING' || code === 'ERR_PAIRING_REQUIRED' || code === 'ERR_HOST_FORBIDDEN' || code === 'ERR_ORIGIN_FORBIDDEN';
}

function trim(text: string): string {
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
