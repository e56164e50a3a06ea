import { loadConfig, type Role } from '../config.ts';
import { closeOnSignals, startServer } from '../main.ts';
import { endExiftool } from '../metadata/exiftool.ts';
import { seedDemoImages } from '../demo/seed.ts';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';

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
  if (config.demo) {
    await seedDemoImages(join(config.dataDir, 'demo-source'));
  }
  const server = await startServer(config);
  const urls = {
    url: server.url,
    discovery: `${server.url}/.well-known/imagine`,
    openapi: `${server.url}/openapi.json`,
    dataDir: config.dataDir,
    role: config.role,
  };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(urls)}\n`);
  } else {
    process.stdout.write(
      `Imagine ${config.role} listening on ${server.url}\n` +
        `  discovery  ${urls.discovery}\n` +
        `  openapi    ${urls.openapi}\n` +
        `  data       ${config.dataDir}\n`,
    );
  }
  closeOnSignals(server, () => {
    endExiftool().finally(() => process.exit(0));
  });
}
