/**
 * A real library server for route tests: services on a temp data folder, the app listening on
 * 127.0.0.1 (a free port), and an administrator with a token. `close()` stops everything,
 * ends the exiftool pool and removes the folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../companion/app.ts';
import { loadConfig, type Config, type ConfigInput } from '../../companion/config.ts';
import { libraryServicesOptions, openLibraryServices, type LibraryServices } from '../../companion/library/services.ts';
import { endExiftool } from '../../companion/metadata/exiftool.ts';

export interface TestLibrary {
  dataDir: string;
  config: Config;
  services: LibraryServices;
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:41234 */
  origin: string;
  /** Token of the `admin` administrator. */
  admin: string;
  close(): Promise<void>;
}

export interface TestLibraryOptions {
  /** Prefix of the temp data folder's name. */
  name: string;
  flags?: ConfigInput;
  /** Runs on the data folder before the library opens (e.g. to write a config file). */
  prepare?: (dataDir: string) => void;
}

export async function startTestLibrary(options: TestLibraryOptions): Promise<TestLibrary> {
  const dataDir = mkdtempSync(join(tmpdir(), `imagine-${options.name}-`));
  options.prepare?.(dataDir);
  const config = loadConfig({ flags: { ...options.flags, dataDir, port: 0 }, readFile: false });
  const services = await openLibraryServices(libraryServicesOptions(config, `${options.name} test`));
  const app = await buildApp(config, { services, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await services.auth.addUser({ name: 'admin', admin: true });
  const admin = (await services.auth.createToken('admin')).token;
  return {
    dataDir,
    config,
    services,
    app,
    origin,
    admin,
    async close() {
      await app.close();
      await services.close();
      await endExiftool();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
