/**
 * Starts the companion: builds the app, listens, prints its base URL, and stops cleanly on
 * SIGINT/SIGTERM (in-flight requests finish within the grace period, resources are released).
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildAppOptions } from './app.ts';
import type { Config } from './config.ts';
import { startAgent } from './agent/start.ts';

export interface RunningServer {
  app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:7420 */
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, options: BuildAppOptions = {}): Promise<RunningServer> {
  const app = await buildApp(config, options);
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  let stopAgent: () => Promise<void>;
  try {
    stopAgent = await startAgent(app, url, config);
  } catch (error) {
    await app.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= closeWithin(app, config.shutdownGraceMs).then(stopAgent);
    return closing;
  };
  return { app, url, close };
}

async function closeWithin(app: FastifyInstance, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      app.server.closeAllConnections();
      resolve();
    }, graceMs);
    timer.unref();
  });
  await Promise.race([app.close(), deadline]);
  clearTimeout(timer);
}

/** Closes the server on the first SIGINT/SIGTERM; a second signal exits at once. */
export function closeOnSignals(server: RunningServer, onClosed: () => void): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    server.app.log.info({ signal }, 'shutting down');
    server.close().then(onClosed, (error) => {
      server.app.log.error({ err: error }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
