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
    },
    links: {
      capabilities: `${origin}${WELL_KNOWN_PATH}/capabilities`,
      metadataProfile: `${origin}${WELL_KNOWN_PATH}/metadata-profile`,
    },
  };
}

export function buildCapabilitiesDocument(config: Config): CapabilitiesDocument {
  return {
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    core: [...CORE_CAPABILITIES],
    extensions: [],
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
  const capabilities = buildCapabilitiesDocument(config);

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
    async (_request, reply) => {
      reply.header('cache-control', cacheControl).header('access-control-allow-origin', '*');
      return capabilities;
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
