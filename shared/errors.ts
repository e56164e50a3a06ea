/**
 * The one error registry of the Imagine protocol.
 *
 * Every error the protocol library, the companion and the library server can answer with has a
 * stable `code` here, an HTTP status and a short title. `docs/errors.md` documents each code
 * once; `errors.test.ts` keeps the two equal. Codes are never renamed or reused: add new ones.
 *
 * At the HTTP boundary `toProblem()` turns a `ProtocolError` into an RFC 9457 problem document
 * (`application/problem+json`); clients turn it back with `fromProblem()` so callers `switch`
 * on `error.code`.
 */

export const errorRegistry = {
  // Identifiers
  ERR_URI_INVALID: { status: 400, title: 'Invalid imagine:// URI' },
  ERR_IDENTITY_INVALID: { status: 400, title: 'Invalid user identity' },
  ERR_EXTENSION_NAME_INVALID: { status: 400, title: 'Invalid extension name' },
  ERR_ORIGIN_INVALID: { status: 400, title: 'Invalid server origin' },

  // Discovery and talking to other servers
  ERR_DISCOVERY_UNREACHABLE: { status: 502, title: 'Discovery document could not be fetched' },
  ERR_DISCOVERY_TIMEOUT: { status: 504, title: 'Discovery document took too long' },
  ERR_DISCOVERY_STATUS: { status: 502, title: 'Discovery answered with an unexpected status' },
  ERR_DISCOVERY_TOO_LARGE: { status: 502, title: 'Discovery document is too large' },
  ERR_DISCOVERY_NOT_JSON: { status: 502, title: 'Discovery document is not JSON' },
  ERR_DISCOVERY_INVALID: { status: 502, title: 'Discovery document does not match its schema' },
  ERR_DISCOVERY_ORIGIN_MISMATCH: {
    status: 502,
    title: 'Discovery document claims another server',
  },
  ERR_UPSTREAM_UNREACHABLE: { status: 502, title: 'Server could not be reached' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Server took too long to answer' },
  ERR_UPSTREAM_INVALID: { status: 502, title: 'Server answered with something unexpected' },
  ERR_UPSTREAM_ERROR: { status: 502, title: 'Server answered with an error this client does not know' },

  // Requests
  ERR_VALIDATION: { status: 400, title: 'Request does not match its schema' },
  ERR_BAD_REQUEST: { status: 400, title: 'Malformed request' },
  ERR_ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  ERR_NOT_ACCEPTABLE: { status: 406, title: 'No acceptable representation' },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body is too large' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  ERR_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  ERR_NOT_IMPLEMENTED: { status: 501, title: 'Valid request that is not implemented' },
  ERR_IMAGE_SIZE_LIMIT: { status: 404, title: 'Requested image size is beyond the limits' },

  // Authentication and authorisation
  ERR_UNAUTHORIZED: { status: 401, title: 'Authentication required' },
  ERR_TOKEN_INVALID: { status: 401, title: 'Token is not valid' },
  ERR_FORBIDDEN: { status: 403, title: 'Not allowed' },

  // Resources
  ERR_ASSET_NOT_FOUND: { status: 404, title: 'No such asset' },
  ERR_VERSION_NOT_FOUND: { status: 404, title: 'No such version' },
  ERR_COLLECTION_NOT_FOUND: { status: 404, title: 'No such collection' },
  ERR_USER_NOT_FOUND: { status: 404, title: 'No such user' },
  ERR_ASSET_GONE: { status: 410, title: 'Asset was deleted' },
  ERR_CONFLICT: { status: 409, title: 'Conflicts with the current state' },
  ERR_PRECONDITION_FAILED: { status: 412, title: 'Base version is not current' },
  ERR_PRECONDITION_REQUIRED: { status: 428, title: 'If-Match is required' },

  // Files and uploads
  ERR_DIGEST_MISMATCH: { status: 400, title: 'Content does not match its declared digest' },
  ERR_UPLOAD_INCOMPLETE: { status: 400, title: 'Upload ended before its declared length' },
  ERR_UPLOAD_NOT_FOUND: { status: 404, title: 'No such upload' },
  ERR_NOT_AN_IMAGE: { status: 415, title: 'File is not a readable image' },
  ERR_FILENAME_INVALID: { status: 400, title: 'Invalid file name' },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, title: 'Range not satisfiable' },

  // Signed URLs
  ERR_SIGNATURE_INVALID: { status: 403, title: 'Signature is not valid' },
  ERR_SIGNATURE_EXPIRED: { status: 403, title: 'Signed URL has expired' },

  // The agent (local API for the panel)
  ERR_PAIRING_REQUIRED: { status: 401, title: 'Pairing token missing or wrong' },
  ERR_HOST_FORBIDDEN: { status: 403, title: 'Request is not addressed to a loopback name of the agent' },
  ERR_ORIGIN_FORBIDDEN: { status: 403, title: 'Request comes from a foreign origin' },
  ERR_CONNECTION_NOT_FOUND: { status: 404, title: 'No such connection' },
  ERR_CONNECTION_EXISTS: { status: 409, title: 'Already connected to this server' },
  ERR_CHECKOUT_NOT_FOUND: { status: 404, title: 'No such checkout' },
  ERR_QUEUE_ITEM_NOT_FOUND: { status: 404, title: 'No such queued push' },
  ERR_NOT_IN_CONFLICT: { status: 409, title: 'Queued push is not in conflict' },
  ERR_DOWNLOAD_INCOMPLETE: { status: 502, title: 'Download ended before the whole file arrived' },
  ERR_FILE_MISSING: { status: 409, title: 'Local file is no longer there' },
  ERR_FILE_BUSY: { status: 409, title: 'Local file is still being written' },
  ERR_DISK_FULL: { status: 507, title: 'Not enough disk space' },
  ERR_POLICY_VIOLATION: { status: 422, title: 'Does not meet the studio workflow policy' },
  ERR_AGENT_NOT_RUNNING: { status: 503, title: 'The agent is not running' },
  ERR_IIIF_SOURCE_INVALID: { status: 502, title: 'Not a IIIF manifest, collection or image service' },
  ERR_MIRROR_UNAVAILABLE: { status: 503, title: 'No local mirror for this connection yet' },

  // Federation
  ERR_PEER_UNKNOWN: { status: 403, title: 'Server is not a trusted peer' },
  ERR_PEER_TOKEN_INVALID: { status: 401, title: 'Server-to-server token is not valid' },
  ERR_PEER_TOKEN_REPLAYED: { status: 401, title: 'Server-to-server token was already used' },
  ERR_PEER_EXISTS: { status: 409, title: 'Peer is already known' },
  ERR_DISTRIBUTION_FORBIDDEN: { status: 403, title: 'Rights forbid distributing this asset' },
  ERR_WEBHOOK_SIGNATURE_INVALID: { status: 401, title: 'Webhook signature is not valid' },
  ERR_WEBMENTION_INVALID: { status: 400, title: 'Webmention source or target is not valid' },
  ERR_ADDRESS_FORBIDDEN: { status: 400, title: 'URL leads to a private or reserved address' },
  ERR_WEBHOOK_VERIFICATION_FAILED: { status: 422, title: 'Webhook endpoint did not confirm the subscription' },
  ERR_WEBHOOK_NOT_FOUND: { status: 404, title: 'No such webhook subscription' },
  ERR_WEBMENTION_NOT_FOUND: { status: 404, title: 'No such webmention or supplement' },
  ERR_COLLECTION_MIRROR_NOT_FOUND: { status: 404, title: 'No such collection mirror' },
  ERR_GUEST_EMAIL_INVALID: { status: 400, title: 'E-mail address cannot be a guest' },
  ERR_GUEST_LINK_INVALID: { status: 401, title: 'Guest sign-in link is not valid' },
  ERR_GUEST_LINK_EXPIRED: { status: 410, title: 'Guest sign-in link has expired or was already used' },
  ERR_GUEST_SESSION_REQUIRED: { status: 401, title: 'Guest session missing or expired' },
  ERR_MAIL_FAILED: { status: 502, title: 'E-mail could not be sent' },

  // Local operation
  ERR_CONFIG_INVALID: { status: 500, title: 'Configuration is not valid' },
  ERR_CATALOG_LOCKED: { status: 409, title: 'Another process writes this catalog' },
  ERR_SERVICE_UNAVAILABLE: { status: 503, title: 'Service is shutting down or not ready' },
  ERR_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export const errorCodes = Object.keys(errorRegistry) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorRegistry, value);
}

/** The problem `type` URI of a code: a URN, so it never depends on a domain we do not own. */
export function problemType(code: ErrorCode): string {
  return `urn:imagine:error:${code}`;
}

export interface ProtocolErrorOptions {
  cause?: unknown;
  /** Overrides the registry status (for example an upstream status kept for information). */
  status?: number;
  /** Extra members for the problem document (must be safe to show to a client). */
  extensions?: Record<string, unknown>;
}

/**
 * An error with a stable code from the registry.
 *
 * @example
 *   throw new ProtocolError('ERR_ASSET_NOT_FOUND', `no asset "${id}"`);
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? errorRegistry[code].status;
    this.extensions = options.extensions ?? {};
  }

  get title(): string {
    return errorRegistry[this.code].title;
  }
}

export function isProtocolError(value: unknown, code?: ErrorCode): value is ProtocolError {
  return value instanceof ProtocolError && (code === undefined || value.code === code);
}

/** An RFC 9457 problem document as this protocol sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: ErrorCode;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * Turns any thrown value into a problem document. A `ProtocolError` keeps its code and message;
 * anything else becomes `ERR_INTERNAL` with a generic detail, so internals never leak.
 */
export function toProblem(error: unknown, instance?: string): Problem {
  const known = error instanceof ProtocolError ? error : undefined;
  const code: ErrorCode = known?.code ?? 'ERR_INTERNAL';
  const problem: Problem = {
    ...(known?.extensions ?? {}),
    type: problemType(code),
    title: errorRegistry[code].title,
    status: known?.status ?? errorRegistry.ERR_INTERNAL.status,
    detail: known ? known.message : 'The server failed to handle this request.',
    code,
  };
  if (instance !== undefined) problem.instance = instance;
  return problem;
}

/**
 * Turns a problem document received from a server back into a `ProtocolError`. Codes this
 * client does not know become `ERR_UPSTREAM_ERROR`, with the remote code kept in
 * `extensions.remoteCode`.
 */
export function fromProblem(body: unknown, httpStatus: number): ProtocolError {
  const doc = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const detail = typeof doc.detail === 'string' ? doc.detail : undefined;
  const title = typeof doc.title === 'string' ? doc.title : undefined;
  const message = detail ?? title ?? `server answered ${httpStatus}`;
  if (isErrorCode(doc.code)) {
    return new ProtocolError(doc.code, message, { status: httpStatus });
  }
  return new ProtocolError('ERR_UPSTREAM_ERROR', message, {
    status: httpStatus,
    extensions: { remoteStatus: httpStatus, remoteCode: doc.code },
  });
}
