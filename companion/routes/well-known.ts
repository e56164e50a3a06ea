/**
 * Discovery: `/.well-known/imagine` and the documents it links to. Everything a client needs
 * to find this server's endpoints is derived from the origin it was reached at.
 */
import type { FastifyInstance } from 'fastify';
import {
  CapabilitiesDocument,
  DiscoveryDocument,
  MetadataProfileDocument,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
} from '../../shared/schemas/discovery.ts';
import { WELL_KNOWN_PATH } from '../../shared/discovery.ts';
import { buildProfileDocument, CORE_PROFILE, loadMetadataProfile, type MetadataProfile } from '../metadata/profile.ts';
import { requestOrigin } from '../http/origin.ts';
import type { Config } from '../config.ts';
import { SOFTWARE } from '../software.ts';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowPolicy } from '../../shared/schemas/agent.ts';
import {
  loadWorkflowPolicyFile,
  WORKFLOW_POLICY_EXTENSION,
  WORKFLOW_POLICY_FILE,
  WORKFLOW_POLICY_VERSION,
} from '../agent/policy.ts';

/** Where this server serves the public spec of the workflow-policy extension. */
export const WORKFLOW_POLICY_SPEC_PATH = `${WELL_KNOWN_PATH}/extensions/${WORKFLOW_POLICY_EXTENSION}`;
const WORKFLOW_POLICY_SPEC_FILE = new URL('../../docs/extensions/workflow-policy.md', import.meta.url);

export const API_PREFIX = '/api/v1';
export const IIIF_PREFIX = '/iiif';

/** Core capabilities: grows as the server learns them. */
export const CORE_CAPABILITIES = ['discovery', 'metadata-profile', 'openapi'] as const;

export function buildDiscoveryDocument(origin: string): DiscoveryDocument {
  const { host } = new URL(origin);
  return {
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    server: { origin, domain: host, software: SOFTWARE },
    endpoints: {
      api: `${origin}${API_PREFIX}`,
      iiif: `${origin}${IIIF_PREFIX}`,
      openapi: `${origin}/openapi.json`,
      uploads: `${origin}${API_PREFIX}/uploads`,
      jwks: `${origin}${WELL_KNOWN_PATH}/jwks.json`,
      webmention: `${origin}/webmention`,
    },
    links: {
      capabilities: `${origin}${WELL_KNOWN_PATH}/capabilities`,
      metadataProfile: `${origin}${WELL_KNOWN_PATH}/metadata-profile`,
    },
  };
}

export function buildCapabilitiesDocument(
  config: Config,
  options: { origin?: string; workflowPolicy?: WorkflowPolicy } = {},
): CapabilitiesDocument {
  const extensions: CapabilitiesDocument['extensions'] = [];
  if (options.workflowPolicy && options.origin) {
    // The policy travels inline, so a client needs one request; it is also at {api}/workflow-policy.
    extensions.push({
      name: WORKFLOW_POLICY_EXTENSION,
      version: WORKFLOW_POLICY_VERSION,
      spec: `${options.origin}${WORKFLOW_POLICY_SPEC_PATH}`,
      endpoint: `${options.origin}${API_PREFIX}/workflow-policy`,
      policy: options.workflowPolicy,
    } as CapabilitiesDocument['extensions'][number]);
  }
  return {
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    core: [...CORE_CAPABILITIES],
    extensions,
    limits: { maxUploadBytes: config.maxUploadBytes, maxPageSize: config.maxPageSize },
  };
}

/** The metadata profile document: the field table, with this server's custom mappings. */
export function buildMetadataProfileDocument(profile: MetadataProfile = CORE_PROFILE): MetadataProfileDocument {
  return buildProfileDocument(profile);
}

const cacheControl = 'public, max-age=300';

export async function wellKnownRoutes(app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts;
  // `<data>/metadata-profile.json` when present: a bad file stops the server here, at start.
  const metadataProfile = buildMetadataProfileDocument(await loadMetadataProfile(config.dataDir));
  // `<data>/workflow-policy.json` when present: a bad file stops the server at start; a file
  // changed later is read again, and a bad change keeps the last good policy.
  let workflowPolicy = await loadWorkflowPolicyFile(config.dataDir);
  const currentPolicy = async (): Promise<WorkflowPolicy | undefined> => {
    try {
      const mtimeMs = await stat(join(config.dataDir, WORKFLOW_POLICY_FILE)).then((s) => s.mtimeMs, () => undefined);
      if (mtimeMs === undefined) workflowPolicy = undefined;
      else if (mtimeMs !== workflowPolicy?.mtimeMs) workflowPolicy = await loadWorkflowPolicyFile(config.dataDir);
    } catch (error) {
      app.log.warn({ err: error }, 'workflow policy not reloaded');
    }
    return workflowPolicy?.policy;
  };

  app.get(
    WELL_KNOWN_PATH,
    {
      schema: {
        tags: ['discovery'],
        summary: 'Discovery document: who this server is and where its endpoints are',
        response: { 200: DiscoveryDocument },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', cacheControl).header('access-control-allow-origin', '*');
      return buildDiscoveryDocument(requestOrigin(request, config.publicOrigin));
    },
  );

  app.get(
    `${WELL_KNOWN_PATH}/capabilities`,
    {
      schema: {
        tags: ['discovery'],
        summary: 'Core capabilities and extensions',
        response: { 200: CapabilitiesDocument },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', cacheControl).header('access-control-allow-origin', '*');
      const origin = requestOrigin(request, config.publicOrigin);
      return buildCapabilitiesDocument(config, { origin, workflowPolicy: await currentPolicy() });
    },
  );

  app.get(
    `${API_PREFIX}/workflow-policy`,
    {
      schema: {
        tags: ['discovery'],
        summary: `The studio workflow policy (extension ${WORKFLOW_POLICY_EXTENSION}); {} when the server has none`,
        response: { 200: WorkflowPolicy },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60').header('access-control-allow-origin', '*');
      return (await currentPolicy()) ?? {};
    },
  );

  app.get(
    WORKFLOW_POLICY_SPEC_PATH,
    {
      schema: {
        tags: ['discovery'],
        summary: `The public spec of the ${WORKFLOW_POLICY_EXTENSION} extension (Markdown)`,
        response: { 200: { description: 'The spec (Markdown)', content: { 'text/markdown': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => {
      reply
        .header('cache-control', cacheControl)
        .header('access-control-allow-origin', '*')
        .type('text/markdown; charset=utf-8');
      return readFile(WORKFLOW_POLICY_SPEC_FILE, 'utf8');
    },
  );

  app.get(
    `${WELL_KNOWN_PATH}/metadata-profile`,
    {
      schema: {
        tags: ['discovery'],
        summary: 'How each API metadata field maps to XMP, IPTC IIM and EXIF',
        response: { 200: MetadataProfileDocument },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', cacheControl).header('access-control-allow-origin', '*');
      return metadataProfile;
    },
  );
}
