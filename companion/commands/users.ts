import { loadConfig } from '../config.ts';
import { libraryServicesOptions, openLibraryServices, type LibraryServices } from '../library/services.ts';
import type { Permission } from '../library/records.ts';
import { ProtocolError } from '../../shared/errors.ts';

async function withServices<T>(data: string | undefined, command: string, fn: (s: LibraryServices) => Promise<T>): Promise<T> {
  const config = loadConfig({ env: process.env, flags: { dataDir: data } });
  const services = await openLibraryServices(libraryServicesOptions(config, command));
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}

function parseGrant(value: string): [string, Permission] {
  const match = /^([A-Za-z0-9._~-]+):(read|write)$/.exec(value);
  if (!match) throw new ProtocolError('ERR_VALIDATION', `--grant must be COLLECTION:read or COLLECTION:write, got "${value}"`);
  return [match[1]!, match[2] as Permission];
}

export async function runUsersAdd(
  name: string,
  flags: { data?: string; email?: string; admin?: boolean; grant?: string[]; json?: boolean },
): Promise<void> {
  await withServices(flags.data, 'imagine users add', async ({ auth, library }) => {
    const grants = Object.fromEntries((flags.grant ?? []).map(parseGrant));
    for (const id of Object.keys(grants)) library.getCollection(id);
    const user = await auth.addUser({ name, email: flags.email, admin: flags.admin, grants });
    process.stdout.write(flags.json ? `${JSON.stringify(user)}\n` : `user ${user.name} added${user.admin ? ' (administrator)' : ''}\n`);
  });
}

export async function runTokensCreate(flags: { data?: string; user: string; label?: string; json?: boolean }): Promise<void> {
  await withServices(flags.data, 'imagine tokens create', async ({ auth }) => {
    const { token, record } = await auth.createToken(flags.user, flags.label);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ id: record.id, user: record.user, token })}\n`);
    } else {
      process.stdout.write(`token for ${record.user} (shown once, keep it safe):\n${token}\n`);
    }
  });
}
