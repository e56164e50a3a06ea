/**
 * The one config module. Values come from, lowest first: the defaults below, the data folder's
 * `config.json`, the environment (`IMAGINE_*`), then command-line flags. The result is
 * validated against a schema and frozen; parts of the program get what they need passed in.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Type, { type Static } from 'typebox';
import { ProtocolError } from '../shared/errors.ts';
import { checkSchema, describeIssues } from '../shared/validate.ts';
import { parseOrigin } from '../shared/origin.ts';
import { compileWebSources, type WebSourceConfig } from './iiif/web-source.ts';

export const ROLES = ['library', 'agent', 'both'] as const;
export type Role = (typeof ROLES)[number];

export const defaults = Object.freeze({
  dataDir: '.imagine',
  host: '127.0.0.1',
  port: 7420,
  role: 'both' as Role,
  demo: false,
  /** Origin announced in discovery; derived from the request's Host when not set. */
  publicOrigin: undefined as string | undefined,
  logLevel: 'info' as Config['logLevel'],
  /** Largest accepted upload, bytes (10 GiB). */
  maxUploadBytes: 10 * 1024 ** 3,
  /** Largest JSON request body, bytes (1 MiB). */
  maxJsonBytes: 1024 * 1024,
  /** Life of a signed download URL, seconds. */
  signedUrlTtlSeconds: 300,
  /** Clock skew allowed when checking signed URL expiry, seconds. */
  clockSkewSeconds: 60,
  /** Largest page a search returns. */
  maxPageSize: 200,
  /** Time to finish in-flight requests on shutdown, milliseconds. */
  shutdownGraceMs: 10_000,
  /** IIIF: rendered images kept on disk (LRU), bytes (2 GiB). */
  iiifCacheBytes: 2 * 1024 ** 3,
  /** IIIF: pyramids of big images kept on disk (LRU), bytes (4 GiB). */
  iiifPyramidCacheBytes: 4 * 1024 ** 3,
  /** IIIF: hot rendered images also kept in memory, bytes (64 MiB). */
  iiifMemoryCacheBytes: 64 * 1024 ** 2,
  /** IIIF: images above this many pixels are served from a tiled pyramid (4 megapixels). */
  iiifPyramidThreshold: 4_000_000,
  /** IIIF: renders at once; 0 = one per CPU. */
  iiifConcurrency: 0,
  /** IIIF: requests waiting for a render at most; more are answered 503. */
  iiifQueue: 64,
  /** IIIF: tile edge advertised in info.json and stored in pyramids, pixels. */
  iiifTileSize: 512,
  /** IIIF: largest output width and height, pixels. */
  iiifMaxWidth: 12_000,
  iiifMaxHeight: 12_000,
  /** IIIF: largest output area, pixels (40 megapixels: ~160 MB decoded at most per render). */
  iiifMaxArea: 40_000_000,
  /** IIIF: render the advertised tiles of big images in the background after ingest. */
  iiifPrerender: true,
  /** IIIF: time one render may take, seconds. */
  iiifRenderTimeoutSeconds: 30,
  /** IIIF: life of a signed image URL prefix (`/iiif/s/...`), seconds (1 day). */
  iiifSignedTtlSeconds: 86_400,
  /** IIIF: web sources, `{source}:{name}` identifiers (companion/iiif/web-source.ts). */
  iiifWebSources: [] as WebSourceConfig[],
  /** IIIF: largest web original fetched, bytes (100 MiB). */
  iiifWebMaxBytes: 100 * 1024 ** 2,
  /** IIIF: time one web original may take to arrive, redirects included, milliseconds. */
  iiifWebTimeoutMs: 20_000,
  /** IIIF: allow web sources on loopback/private addresses (development and tests only). */
  iiifWebAllowPrivate: false,
  /** IIIF: fetched web originals kept on disk (LRU), bytes (1 GiB). */
  iiifWebCacheBytes: 1024 ** 3,
  /** IIIF: a web original is used without asking its source again for this long, seconds (1 day). */
  iiifWebTtlSeconds: 86_400,
  /** Agent: working folder for checkouts; default `<data>/checkouts`. */
  agentWorkDir: undefined as string | undefined,
  /** Agent: thumbnails and relayed images cached on disk (LRU), bytes (512 MiB). */
  agentCacheBytes: 512 * 1024 ** 2,
  /** Agent: origins (besides its own) allowed to call the local API, e.g. a UXP origin. */
  agentAllowedOrigins: [] as string[],
  /** Agent: longest wait between two attempts of a queued push, seconds. */
  agentRetryMaxSeconds: 300,
  /** Federation: time each peer has to answer a federated search, milliseconds. */
  federatedSearchDeadlineMs: 2_000,
  /** Agent: how often each connection's change feed is polled for the mirror, seconds. */
  syncIntervalSeconds: 30,
  /** Federation: how often a mirrored peer collection's change feed is polled, seconds (webhooks hint sooner). */
  mirrorIntervalSeconds: 60,
  /** Webhooks: allow callback URLs on loopback/private addresses (development and tests only). */
  allowPrivateWebhooks: false,
  /** Webhooks: time a callback has to answer a delivery or the subscription challenge, milliseconds. */
  webhookTimeoutMs: 10_000,
  /** Webhooks: first retry delay, milliseconds; doubles per attempt, with jitter. */
  webhookRetryBaseMs: 10_000,
  /** Webhooks: longest retry delay, milliseconds (6 h: 24 attempts span about three days). */
  webhookRetryMaxMs: 21_600_000,
  /** Webhooks: attempts before a delivery is marked failed. */
  webhookMaxAttempts: 24,
  /** Webmention: allow sources and targets on loopback/private addresses (development and tests only). */
  allowPrivateWebmention: false,
  /** Webmention: time to fetch a source (or discover a target's endpoint), milliseconds. */
  webmentionTimeoutMs: 10_000,
  /** Webmention: largest source document read, bytes (1 MiB). */
  webmentionMaxBytes: 1024 * 1024,
  /** Guests: SMTP server invitations are mailed through (`smtp://user:pass@host:587`, `smtps://...`); unset = links are only printed. */
  smtpUrl: undefined as string | undefined,
  /** Guests: sender of invitation e-mails; default `imagine@<this server's host>`. */
  smtpFrom: undefined as string | undefined,
  /** Guests: life of a one-time sign-in link, seconds (7 days). */
  guestLinkTtlSeconds: 7 * 86_400,
  /** Guests: life of a guest session, seconds (12 h). */
  guestSessionTtlSeconds: 12 * 3_600,
  /** Guests: most items in one batch download. */
  guestArchiveMaxItems: 200,
});

const ConfigSchema = Type.Object({
  dataDir: Type.String({ minLength: 1 }),
  host: Type.String({ minLength: 1, maxLength: 255 }),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  role: Type.Enum(['library', 'agent', 'both']),
  demo: Type.Boolean(),
  publicOrigin: Type.Optional(Type.String()),
  logLevel: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  maxUploadBytes: Type.Integer({ minimum: 1 }),
  maxJsonBytes: Type.Integer({ minimum: 1024 }),
  signedUrlTtlSeconds: Type.Integer({ minimum: 10, maximum: 86_400 }),
  clockSkewSeconds: Type.Integer({ minimum: 0, maximum: 600 }),
  maxPageSize: Type.Integer({ minimum: 1, maximum: 10_000 }),
  shutdownGraceMs: Type.Integer({ minimum: 0 }),
  iiifCacheBytes: Type.Integer({ minimum: 0 }),
  iiifPyramidCacheBytes: Type.Integer({ minimum: 0 }),
  iiifMemoryCacheBytes: Type.Integer({ minimum: 0 }),
  iiifPyramidThreshold: Type.Integer({ minimum: 1 }),
  iiifConcurrency: Type.Integer({ minimum: 0, maximum: 256 }),
  iiifQueue: Type.Integer({ minimum: 0, maximum: 100_000 }),
  iiifTileSize: Type.Integer({ minimum: 64, maximum: 4096 }),
  iiifMaxWidth: Type.Integer({ minimum: 1, maximum: 65_535 }),
  iiifMaxHeight: Type.Integer({ minimum: 1, maximum: 65_535 }),
  iiifMaxArea: Type.Integer({ minimum: 1, maximum: 300_000_000 }),
  iiifPrerender: Type.Boolean(),
  iiifRenderTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 600 }),
  iiifSignedTtlSeconds: Type.Integer({ minimum: 10, maximum: 31_536_000 }),
  iiifWebSources: Type.Array(
    Type.Object(
      {
        name: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }),
        type: Type.Enum(['web', 'trusted_web']),
        url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
        pattern: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
      },
      { additionalProperties: false },
    ),
    { maxItems: 100 },
  ),
  iiifWebMaxBytes: Type.Integer({ minimum: 1024, maximum: 4 * 1024 ** 3 }),
  iiifWebTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
  iiifWebAllowPrivate: Type.Boolean(),
  iiifWebCacheBytes: Type.Integer({ minimum: 0 }),
  iiifWebTtlSeconds: Type.Integer({ minimum: 0, maximum: 31_536_000 }),
  agentWorkDir: Type.Optional(Type.String({ minLength: 1 })),
  agentCacheBytes: Type.Integer({ minimum: 0 }),
  agentAllowedOrigins: Type.Array(Type.String({ minLength: 1, maxLength: 300 }), { maxItems: 100 }),
  agentRetryMaxSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
  syncIntervalSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
  mirrorIntervalSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
  federatedSearchDeadlineMs: Type.Integer({ minimum: 50, maximum: 60_000 }),
  allowPrivateWebhooks: Type.Boolean(),
  webhookTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000 }),
  webhookRetryBaseMs: Type.Integer({ minimum: 10, maximum: 3_600_000 }),
  webhookRetryMaxMs: Type.Integer({ minimum: 10, maximum: 86_400_000 }),
  webhookMaxAttempts: Type.Integer({ minimum: 1, maximum: 100 }),
  allowPrivateWebmention: Type.Boolean(),
  webmentionTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000 }),
  webmentionMaxBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 ** 2 }),
  smtpUrl: Type.Optional(Type.String({ pattern: '^smtps?://', maxLength: 2000 })),
  smtpFrom: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
  guestLinkTtlSeconds: Type.Integer({ minimum: 60, maximum: 90 * 86_400 }),
  guestSessionTtlSeconds: Type.Integer({ minimum: 60, maximum: 30 * 86_400 }),
  guestArchiveMaxItems: Type.Integer({ minimum: 1, maximum: 10_000 }),
}, { additionalProperties: false });

export type Config = Readonly<Static<typeof ConfigSchema>>;
export type ConfigInput = Partial<Static<typeof ConfigSchema>>;

const ENV: Record<string, { key: keyof ConfigInput; parse: (v: string) => unknown }> = {
  IMAGINE_DATA: { key: 'dataDir', parse: String },
  IMAGINE_HOST: { key: 'host', parse: String },
  IMAGINE_PORT: { key: 'port', parse: toInteger },
  IMAGINE_ROLE: { key: 'role', parse: String },
  IMAGINE_PUBLIC_ORIGIN: { key: 'publicOrigin', parse: String },
  IMAGINE_LOG_LEVEL: { key: 'logLevel', parse: String },
  IMAGINE_MAX_UPLOAD_BYTES: { key: 'maxUploadBytes', parse: toInteger },
  IMAGINE_WORK_DIR: { key: 'agentWorkDir', parse: String },
  IMAGINE_SMTP_URL: { key: 'smtpUrl', parse: String },
};

function toInteger(value: string): unknown {
  return /^-?\d+$/.test(value.trim()) ? Number(value) : value;
}

export function configFromEnv(env: Record<string, string | undefined>): ConfigInput {
  const out: Record<string, unknown> = {};
  for (const [name, { key, parse }] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') out[key] = parse(value);
  }
  return out as ConfigInput;
}

function readConfigFile(dataDir: string): ConfigInput {
  const path = join(dataDir, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ProtocolError('ERR_CONFIG_INVALID', `cannot read ${path}`, { cause: error });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error('not a JSON object');
    }
    return parsed as ConfigInput;
  } catch (error) {
    throw new ProtocolError('ERR_CONFIG_INVALID', `${path} is not a JSON object`, { cause: error });
  }
}

export interface LoadConfigOptions {
  flags?: ConfigInput;
  env?: Record<string, string | undefined>;
  /** Directory a relative data folder is resolved against (default: the working directory). */
  cwd?: string;
  /** Read `<data>/config.json` (default true). */
  readFile?: boolean;
}

/** Builds the validated, frozen configuration. Throws ERR_CONFIG_INVALID with every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const flags = stripUndefined(options.flags ?? {});
  const env = stripUndefined(configFromEnv(options.env ?? {}));
  const dataDir = resolve(options.cwd ?? '.', flags.dataDir ?? env.dataDir ?? defaults.dataDir);
  const file = options.readFile === false ? {} : stripUndefined(readConfigFile(dataDir));
  const merged = { ...stripUndefined(defaults), ...file, ...env, ...flags, dataDir };
  const checked = checkSchema(ConfigSchema, merged, 10);
  if (!checked.ok) {
    throw new ProtocolError('ERR_CONFIG_INVALID', `invalid configuration: ${describeIssues(checked.issues)}`);
  }
  const config = { ...checked.value };
  config.agentWorkDir = resolve(dataDir, config.agentWorkDir ?? 'checkouts');
  compileWebSources(config.iiifWebSources); // throws ERR_CONFIG_INVALID naming the entry
  if (config.publicOrigin !== undefined) {
    try {
      config.publicOrigin = parseOrigin(config.publicOrigin, { allowInsecure: true });
    } catch (error) {
      throw new ProtocolError('ERR_CONFIG_INVALID', `invalid configuration: publicOrigin: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return Object.freeze(config);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
