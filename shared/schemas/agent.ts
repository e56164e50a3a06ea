/**
 * The agent's local API (`/agent/v1` on 127.0.0.1): the contract between the panel (or the
 * `imagine` CLI twins) and the companion's agent role. Runtime-neutral so the panel bundle can
 * import the types.
 *
 * Every call carries the pairing token as `Authorization: Bearer <token>` (shown by
 * `imagine pair`, embedded in the browser preview), except thumbnail images, whose URLs the
 * agent signs itself (`?exp=&sig=`) so an `<img>` can load them. Requests whose `Host` is not a
 * loopback name of the agent, or whose `Origin` is foreign, are refused before anything else.
 *
 *   GET    /agent/v1/status                     AgentStatus
 *   GET    /agent/v1/connections                { items: Connection[] }
 *   POST   /agent/v1/connections                AddConnectionRequest → 201 Connection
 *   PATCH  /agent/v1/connections/:connection    UpdateConnectionRequest → 200 Connection
 *   DELETE /agent/v1/connections/:connection    204
 *   GET    /agent/v1/search?q=&connection=&...  AgentSearchPage (every connection, or one)
 *   GET    /agent/v1/assets/:connection/:id     AgentAsset
 *   GET    /agent/v1/resolve?uri=imagine://...  AgentAsset
 *   GET    /agent/v1/thumbs/:connection/:id/:version?exp=&sig=   image/jpeg (cached on disk)
 *   GET    /agent/v1/iiif?url=                  IiifSource (a manifest, collection or info.json, read-only)
 *   GET    /agent/v1/iiif/image?url=&exp=&sig=  a IIIF thumbnail relayed (signed like thumbs)
 *   GET    /agent/v1/policy/:connection         WorkflowPolicy (empty when the server has none)
 *   POST   /agent/v1/checkouts                  CheckoutRequest → 201 Checkout (200 when reused)
 *   GET    /agent/v1/checkouts                  { items: Checkout[] }
 *   GET    /agent/v1/checkouts/:id              Checkout
 *   GET    /agent/v1/checkouts/:id/events       text/event-stream of Checkout snapshots
 *   POST   /agent/v1/checkouts/:id/push         PushRequest → 202 QueueItem (durable before answering; 200 for a repeated requestId)
 *   GET    /agent/v1/queue                      { items: QueueItem[] }
 *   GET    /agent/v1/queue/:id                  QueueItem
 *   POST   /agent/v1/queue/:id/retry            202 QueueItem
 *   POST   /agent/v1/queue/:id/resolve          ResolveConflictRequest → 202 QueueItem
 *   GET    /agent/v1/sync                       { items: SyncStatus[] }  (mirror, issue 9)
 *   POST   /agent/v1/sync/:connection[?wait=true]  sync now → 202 SyncStatus (200 once done)
 *   PUT    /agent/v1/sync/:connection           { collections: string[] | null } → SyncStatus
 *   GET    /agent/v1/sync/search?q=&...         AgentSearchPage from the mirror only (`local: true`)
 *
 * Errors are problem+json with codes from shared/errors.ts.
 */
import Type, { type Static } from 'typebox';
import { Asset, SearchPage } from './asset.ts';

export const AGENT_PREFIX = '/agent/v1';

const Timestamp = Type.String({ format: 'date-time' });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const CONNECTION_STATES = ['ok', 'offline', 'unauthorized', 'error', 'unknown'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

/** A server the user works with. The token never leaves the agent. */
export const Connection = Type.Object(
  {
    /** Stable local id (derived from the origin: `images.example`, `127.0.0.1_7420`). */
    id: Type.String({ maxLength: 200 }),
    origin: Type.String({ maxLength: 300 }),
    /** The server's domain as its discovery document states it. */
    domain: Type.String({ maxLength: 300 }),
    name: Type.String({ maxLength: 200 }),
    authenticated: Type.Boolean({ description: 'A token is stored for this server.' }),
    state: Type.Enum([...CONNECTION_STATES]),
    lastError: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    lastSeen: Type.Optional(Timestamp),
    added: Timestamp,
  },
  { additionalProperties: true, $id: 'AgentConnection' },
);
export type Connection = Static<typeof Connection>;

export const AddConnectionRequest = Type.Object(
  {
    /** An origin (`https://images.example`), a bare domain, or an `imagine://` URI. */
    url: Type.String({ minLength: 1, maxLength: 2000 }),
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type AddConnectionRequest = Static<typeof AddConnectionRequest>;

/**
 * Changes a connection in place (what it cached and mirrored stays): a new `token` (checked
 * against the server before it replaces the old one, which is kept when it is refused), or
 * `anonymous: true` to drop the token and browse without one from now on; and/or a new display
 * name. (Not `token: null`: the API's validator coerces an empty string to null.)
 */
export const UpdateConnectionRequest = Type.Object(
  {
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    anonymous: Type.Optional(Type.Literal(true)),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateConnectionRequest = Static<typeof UpdateConnectionRequest>;

/** A server's asset as the agent hands it to the panel: where it comes from, a local thumbnail. */
export const AgentAsset = Type.Intersect([
  Asset,
  Type.Object({
    connection: Type.String({ maxLength: 200 }),
    origin: Type.String({ maxLength: 300 }),
    /** Agent-relative URL of the thumbnail (`/agent/v1/thumbs/...?exp=&sig=`), or null. */
    thumbnailUrl: Type.Union([Type.String(), Type.Null()]),
  }),
]);
export type AgentAsset = Static<typeof AgentAsset>;

export const SOURCE_STATES = ['ok', 'slow', 'failed', 'offline'] as const;

/** One page of results from every connection searched, with each one's status. */
export const AgentSearchPage = Type.Object(
  {
    items: Type.Array(AgentAsset),
    /** Opaque cursor over every source's own cursor; null when all are exhausted. */
    next: Type.Union([Type.String({ maxLength: 8000 }), Type.Null()]),
    sources: Type.Array(
      Type.Object({
        connection: Type.String(),
        state: Type.Enum([...SOURCE_STATES]),
        /** Results came from the local mirror (offline or first paint). */
        local: Type.Optional(Type.Boolean()),
        count: Type.Integer({ minimum: 0 }),
        total: Type.Optional(Type.Integer({ minimum: 0 })),
        error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
      }),
    ),
  },
  { additionalProperties: true },
);
export type AgentSearchPage = Static<typeof AgentSearchPage>;
export { SearchPage };

export const RENDITIONS = ['original', 'proxy'] as const;
export type CheckoutRendition = (typeof RENDITIONS)[number];

export const CheckoutRequest = Type.Object(
  {
    /** `imagine://authority/images/id`; the connection is found from its authority. */
    uri: Type.String({ minLength: 1, maxLength: 2000 }),
    rendition: Type.Optional(Type.Enum([...RENDITIONS])),
    /** A version id; default the current version. */
    version: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);
export type CheckoutRequest = Static<typeof CheckoutRequest>;

export const CHECKOUT_STATES = ['downloading', 'ready', 'failed', 'pushing', 'pushed', 'conflict'] as const;
export type CheckoutState = (typeof CHECKOUT_STATES)[number];

export const Progress = Type.Object({
  done: Type.Integer({ minimum: 0 }),
  total: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
});
export type Progress = Static<typeof Progress>;

export const Checkout = Type.Object(
  {
    id: Type.String({ maxLength: 100 }),
    uri: Type.String(),
    connection: Type.String(),
    assetId: Type.String(),
    /** The version the file was made from: what a push sends as If-Match. */
    baseVersion: Type.String(),
    rendition: Type.Enum([...RENDITIONS]),
    /** Absolute local path of the working file. */
    path: Type.String(),
    filename: Type.String(),
    sha256: Type.Optional(Sha256),
    state: Type.Enum([...CHECKOUT_STATES]),
    progress: Progress,
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    created: Timestamp,
    updated: Timestamp,
  },
  { additionalProperties: true, $id: 'AgentCheckout' },
);
export type Checkout = Static<typeof Checkout>;

export const PushRequest = Type.Object(
  {
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
    /** The file to push when it is not the checkout's own path (e.g. saved as another name). */
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /**
     * The caller's id of this push (e.g. the panel's pending save): sending it again answers the
     * push already queued (200) instead of queueing a second one, so a retry after a lost answer
     * never makes two versions.
     */
    requestId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' })),
  },
  { additionalProperties: false },
);
export type PushRequest = Static<typeof PushRequest>;

export const QUEUE_STATES = ['queued', 'uploading', 'retrying', 'done', 'conflict', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export const QueueItem = Type.Object(
  {
    id: Type.String({ maxLength: 100 }),
    /** Sent as `Idempotency-Key`, so a retried push never makes two versions. */
    idempotencyKey: Type.String(),
    checkout: Type.String(),
    connection: Type.String(),
    assetId: Type.String(),
    baseVersion: Type.String(),
    kind: Type.Union([Type.Literal('version'), Type.Literal('new-asset')]),
    /** The prepared file (metadata restored) kept by the agent until the push lands. */
    path: Type.String(),
    /**
     * The prepared file's sha256: absent until the upload has read the file (it is hashed while
     * it is sent and declared after its bytes), then kept (a retry declares the same).
     */
    sha256: Type.Optional(Sha256),
    comment: Type.Optional(Type.String()),
    state: Type.Enum([...QUEUE_STATES]),
    attempts: Type.Integer({ minimum: 0 }),
    nextAttempt: Type.Optional(Timestamp),
    progress: Progress,
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    /** When done: the new version (or asset) on the server. */
    result: Type.Optional(Type.Object({ uri: Type.String(), assetId: Type.String(), version: Type.String() })),
    created: Timestamp,
    updated: Timestamp,
  },
  { additionalProperties: true, $id: 'AgentQueueItem' },
);
export type QueueItem = Static<typeof QueueItem>;

export const ResolveConflictRequest = Type.Object(
  {
    /** `push-on-top`: push again on the newest version; `new-asset`: save as a new asset derived from it. */
    action: Type.Union([Type.Literal('push-on-top'), Type.Literal('new-asset'), Type.Literal('discard')]),
  },
  { additionalProperties: false },
);
export type ResolveConflictRequest = Static<typeof ResolveConflictRequest>;

/** A studio's workflow policy (extension `org.imagine.workflow-policy`); every part optional. */
export const WorkflowPolicy = Type.Object(
  {
    requiredFields: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
    allowedMediaTypes: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
    colourProfile: Type.Optional(Type.String({ maxLength: 200 })),
    /** A regular expression (JavaScript syntax, no flags) file names must match. */
    filenamePattern: Type.Optional(Type.String({ maxLength: 500 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: true, $id: 'WorkflowPolicy' },
);
export type WorkflowPolicy = Static<typeof WorkflowPolicy>;

export const SyncStatus = Type.Object(
  {
    connection: Type.String(),
    state: Type.Union([Type.Literal('idle'), Type.Literal('syncing'), Type.Literal('offline'), Type.Literal('error')]),
    lastSync: Type.Union([Timestamp, Type.Null()]),
    /** Seconds since the mirror was last known to match the server. */
    lagSeconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
    assets: Type.Integer({ minimum: 0 }),
    bytesOnDisk: Type.Integer({ minimum: 0 }),
    lastError: Type.Optional(Type.Object({ code: Type.String(), message: Type.String(), at: Timestamp })),
  },
  { additionalProperties: true, $id: 'AgentSyncStatus' },
);
export type SyncStatus = Static<typeof SyncStatus>;

export const AgentStatus = Type.Object(
  {
    software: Type.String(),
    version: Type.String(),
    /** The agent's own origin, e.g. `http://127.0.0.1:7420`. */
    origin: Type.String(),
    workDir: Type.String(),
    connections: Type.Array(Connection),
    queue: Type.Object({
      pending: Type.Integer({ minimum: 0 }),
      conflicts: Type.Integer({ minimum: 0 }),
      failed: Type.Integer({ minimum: 0 }),
    }),
  },
  { additionalProperties: true },
);
export type AgentStatus = Static<typeof AgentStatus>;

/** A plain IIIF source (Presentation 3 / 2.1 manifest or collection, or an Image API info.json), normalised. */
export const IiifSource = Type.Object(
  {
    url: Type.String(),
    kind: Type.Union([Type.Literal('manifest'), Type.Literal('collection'), Type.Literal('image')]),
    label: Type.String(),
    /** Images (manifest canvases or the single image) and sub-collections/manifests. */
    items: Type.Array(
      Type.Object({
        kind: Type.Union([Type.Literal('image'), Type.Literal('manifest'), Type.Literal('collection')]),
        label: Type.String(),
        /** Where to browse further (manifest/collection) or the image service base (image). */
        id: Type.String(),
        /** Agent-relative signed URL of a relayed thumbnail, or null. */
        thumbnailUrl: Type.Union([Type.String(), Type.Null()]),
        width: Type.Optional(Type.Integer()),
        height: Type.Optional(Type.Integer()),
      }),
    ),
    rights: Type.Optional(Type.String()),
    requiredStatement: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type IiifSource = Static<typeof IiifSource>;
