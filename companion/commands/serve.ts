import { mkdir } from 'node:fs/promises';
import { loadConfig, type Role } from '../config.ts';
import { closeOnSignals, startServer } from '../main.ts';
import { endExiftool } from '../metadata/exiftool.ts';
import { ensureDemoLibrary } from '../demo/library.ts';
import { libraryServicesOptions, openLibraryServices } from '../library/services.ts';

export interface ServeFlags {
  data?: string;
  host?: string;
  port?: number;
  role?: Role;
  demo?: boolean;
  json?: boolean;
}

export async function runServe(flags: ServeFlags): Promise<void> {
  const config = loadConfig({
    env: process.env,
    flags: { dataDir: flags.data, host: flags.host, port: flags.port, role: flags.role, demo: flags.demo },
  });
  await mkdir(config.dataDir, { recursive: true });
  const servesLibrary = config.role !== 'agent';
  const services = servesLibrary
    ? await openLibraryServices(libraryServicesOptions(config, 'imagine serve'))
    : undefined;
  const shutdown = async () => {
    await services?.close();
    await endExiftool();
  };
  let server;
  try {
    if (services && config.demo) await ensureDemoLibrary(services, config.dataDir);
    server = await startServer(config, { services });
    await services?.lock.setUrl(server.url);
  } catch (error) {
    await shutdown();
    throw error;
  }
  const urls = {
    url: server.url,
    discovery: `${server.url}/.well-known/imagine`,
    openapi: `${server.url}/openapi.json`,
    api: servesLibrary ? `${server.url}/api/v1` : undefined,
    agent: config.role !== 'library' ? `${server.url}/agent/v1` : undefined,
    dataDir: config.dataDir,
    role: config.role,
  };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(urls)}\n`);
  } else {
    process.stdout.write(
      `Imagine (${config.role}) listening on ${server.url}\n` +
        `  discovery  ${urls.discovery}\n` +
        (urls.api ? `  api        ${urls.api}\n` : '') +
        `  openapi    ${urls.openapi}\n` +
        (urls.agent ? `  agent      ${urls.agent} (pairing token: imagine pair --data ${config.dataDir})\n` : '') +
        `  data       ${config.dataDir}\n`,
    );
  }
  closeOnSignals(server, () => {
    shutdown().finally(() => process.exit(0));
  });
}
