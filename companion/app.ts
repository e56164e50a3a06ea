/**
 * `buildApp(config)`: the companion as a fastify instance that never listens by itself, so
 * tests drive it with `app.inject()` or listen on port 0. One process serves every role on one
 * port, by route prefix: `/.well-known/`, the protocol API, `/iiif/`, `/agent/v1`, `/panel/`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Config } from './config.ts';
import { installProblemHandlers, sendProblem } from './http/problem.ts';
import { redactPaths, requestSerializers } from './http/log.ts';
import { wellKnownRoutes } from './routes/well-known.ts';
import { assetRoutes } from './routes/assets.ts';
import { collectionRoutes } from './routes/collections.ts';
import { changeRoutes } from './routes/changes.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { iiifRoutes } from './routes/iiif.ts';
import { federationRoutes } from './routes/federation.ts';
import { openFederation, type FederationServices } from './federation/services.ts';
import { libraryServicesOptions, openLibraryServices, type LibraryServices } from './library/services.ts';
import { SOFTWARE } from './software.ts';
import { installCompiledSchemaChecks } from './compiled-schemas.ts';
import { AGENT_PREFIX } from '../shared/schemas/agent.ts';
import { agentPlugin } from './agent/plugin.ts';
import { openAgentServices, type AgentServices } from './agent/services.ts';
import { panelRoutes } from './routes/panel.ts';
import { openEvents } from './events/services.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { openWebmention } from './webmention/services.ts';
import { webmentionRoutes } from './routes/webmention.ts';
import { MirrorService } from './federation/mirror-service.ts';
import { federationMirrorRoutes } from './routes/federation-mirrors.ts';
import { API_PREFIX } from './routes/api-context.ts';
import { guestRoutes } from './routes/guests.ts';

export interface BuildAppOptions {
  /** Pino logger options or false; defaults to the configured level. */
  logger?: boolean | Record<string, unknown>;
  /** Library services to use; opened from the config's data folder (and closed with the app) when absent. */
  services?: LibraryServices;
  /** Federation services (keys, peers) to use; opened from the data folder when absent. */
  federation?: FederationServices;
  /** Agent services to use; opened from the config (and closed with the app) when absent. */
  agent?: AgentServices;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The library this app serves (library and both roles). */
    library?: LibraryServices;
    /** Keys and peers of this library server (library and both roles). */
    federation?: FederationServices;
    /** The agent this app serves (agent and both roles). */
    agent?: AgentServices;
  }
}

export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  installCompiledSchemaChecks();
  const app = Fastify({
    logger:
      options.logger ?? {
        level: config.logLevel,
        serializers: requestSerializers,
        redact: redactPaths,
        // Logs go to stderr: stdout carries the command's results.
        stream: process.stderr,
      },
    bodyLimit: config.maxJsonBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    trustProxy: false,
    // Errors fastify raises before routing (bad percent-encoding, over-long parameters) are
    // answered as problems like every other error.
    frameworkErrors: (error, request, reply) => sendProblem(request, reply, error),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });

  installProblemHandlers(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Imagine protocol',
        version: SOFTWARE.version,
        description:
          'The Imagine protocol as served by its reference implementation. Errors are ' +
          'application/problem+json (RFC 9457) with a stable `code` (see docs/errors.md).',
      },
    },
  });

  const servesLibrary = config.role === 'library' || config.role === 'both';
  if (servesLibrary) {
    const services =
      options.services ??
      (await openLibraryServices(libraryServicesOptions(config, 'imagine serve')));
    if (!options.services) app.addHook('onClose', async () => services.close());
    app.decorate('library', services);
    await app.register(wellKnownRoutes, { config });
    await app.register(assetRoutes, { config, services });
    await app.register(collectionRoutes, { config, services });
    await app.register(changeRoutes, { config, services });
    await app.register(uploadRoutes, { config, services });
    await app.register(iiifRoutes, { config, services });
    const federation = options.federation ?? (await openFederation(config.dataDir, { publicOrigin: config.publicOrigin }));
    app.decorate('federation', federation);
    await app.register(federationRoutes, { config, federation, services });
    await app.register(guestRoutes, { config, services, federation });
    // Events (webhooks following the change feed) and webmention; stopped before the library closes.
    const events = await openEvents(config, services.library, app.log);
    const webmention = await openWebmention(config, services, app.log);
    app.decorate('events', events);
    app.decorate('webmention', webmention);
    app.addHook('preClose', async () => {
      await Promise.all([events.close(), webmention.close()]);
    });
    await app.register(webhookRoutes, { config, services, events });
    // Mirrors of peers' collections: run in the background, stopped before the library closes.
    const mirrors = new MirrorService({
      dataDir: config.dataDir,
      federation,
      library: services.library,
      intervalSeconds: config.mirrorIntervalSeconds,
      maxBytes: config.maxUploadBytes,
      log: app.log,
      apiPrefix: API_PREFIX,
    });
    app.decorate('mirrors', mirrors);
    app.addHook('onReady', async () => mirrors.start());
    app.addHook('preClose', async () => mirrors.close());
    await app.register(federationMirrorRoutes, { config, services, federation, events, mirrors });
    await app.register(webmentionRoutes, { config, services, webmention });
  }

  const servesAgent = config.role === 'agent' || config.role === 'both';
  if (servesAgent) {
    const agent = options.agent ?? (await openAgentServices(config));
    if (!options.agent) app.addHook('onClose', async () => agent.close());
    app.decorate('agent', agent);
    await app.register(agentPlugin, { prefix: AGENT_PREFIX, services: agent });
    await app.register(panelRoutes, { config, services: agent });
  }

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
