/**
 * The `imagine` command line (DESIGN.md §7). Every command has `--help`, exits non-zero with a
 * one-line reason on failure, and prints machine-readable results with `--json`.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isProtocolError } from '../shared/errors.ts';
import { ROLES } from './config.ts';
import { SOFTWARE } from './software.ts';

// Command modules load the server and its libraries: import them only when their command runs,
// so `--help` answers at once.
const runServe = lazy(() => import('./commands/serve.ts'), 'runServe');
const runIngest = lazy(() => import('./commands/ingest.ts'), 'runIngest');
const runUsersAdd = lazy(() => import('./commands/users.ts'), 'runUsersAdd');
const runTokensCreate = lazy(() => import('./commands/users.ts'), 'runTokensCreate');
const peersCommands = () => import('./commands/peers.ts');
const runPeersList = lazy(peersCommands, 'runPeersList');
const runPeersRequest = lazy(peersCommands, 'runPeersRequest');
const runPeersApprove = lazy(peersCommands, 'runPeersApprove');
const runPeersRevoke = lazy(peersCommands, 'runPeersRevoke');
const runKeysRotate = lazy(peersCommands, 'runKeysRotate');

function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K) {
  return async (...args: unknown[]) => {
    const module = await load();
    return (module[name] as (...a: unknown[]) => Promise<void>)(...args);
  };
}

function port(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('must be a port number (0-65535)');
  }
  return Number(value);
}

function role(value: string): (typeof ROLES)[number] {
  if (!(ROLES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`must be one of ${ROLES.join(', ')}`);
  }
  return value as (typeof ROLES)[number];
}

export function buildProgram(): Command {
  const program = new Command('imagine')
    .description('Imagine: a studio image library server, and the companion of the Photoshop and InDesign panel')
    .version(SOFTWARE.version)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(text) });

  program
    .command('serve')
    .description('serve the library and the agent on one port (prints the base URL; stops on SIGINT/SIGTERM)')
    .option('--data <dir>', 'data folder (default: $IMAGINE_DATA or ./.imagine)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on (default 7420; 0 picks a free one)', port)
    .option('--role <role>', `what to serve: ${ROLES.join(' | ')} (default both)`, role)
    .option('--demo', 'seed the demo library on first run')
    .option('--json', 'print the start-up line as JSON')
    .action(runServe);

  program
    .command('ingest')
    .description('add image files and folders to the library (duplicates skipped; refused while a server holds the data folder)')
    .argument('<paths...>', 'files or folders (walked recursively)')
    .option('--data <dir>', 'data folder (default: $IMAGINE_DATA or ./.imagine)')
    .option('--collection <name>', 'add the files to this collection (created when missing)')
    .option('--public', 'make the collection readable without a token')
    .option('--json', 'print the summary as JSON')
    .action(runIngest);

  const users = program.command('users').description('manage the library\'s users');
  users
    .command('add')
    .description('add a user')
    .argument('<name>', 'user name (a-z, 0-9, ".", "_", "-")')
    .option('--data <dir>', 'data folder')
    .option('--email <address>', 'e-mail address')
    .option('--admin', 'may do everything')
    .option('--grant <collection:permission...>', 'read or write on a collection id, e.g. abc123:write')
    .option('--json', 'print the user as JSON')
    .action(runUsersAdd);

  const tokens = program.command('tokens').description('manage API tokens');
  tokens
    .command('create')
    .description('create an API token for a user (printed as the last line, shown only once)')
    .requiredOption('--user <name>', 'the user the token acts as')
    .option('--label <text>', 'what the token is for')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print the token as JSON')
    .action(runTokensCreate);

  const peers = program.command('peers').description('federation: servers that trust this one, and servers it asked');
  peers
    .command('list')
    .description('list trust requests and peers, incoming and outgoing')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print { items } as JSON')
    .action(runPeersList);
  peers
    .command('request')
    .description('ask another server to trust this one (this server must be running)')
    .argument('<url>', 'the other server: origin, domain or imagine:// URI')
    .option('--scopes <list>', 'comma-separated: search,view,import,sync (default all)')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print the peer as JSON')
    .action(runPeersRequest);
  peers
    .command('approve')
    .description('trust a server that asked (takes effect at once)')
    .argument('<domain>', 'its domain (host[:port]) as `peers list` shows it')
    .option('--scopes <list>', 'narrow what it may do: search,view,import,sync')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print the peer as JSON')
    .action(runPeersApprove);
  peers
    .command('revoke')
    .description('stop trusting a server (takes effect at once)')
    .argument('<domain>', 'its domain (host[:port])')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print the peer as JSON')
    .action(runPeersRevoke);

  const keys = program.command('keys').description("this server's federation signing keys");
  keys
    .command('rotate')
    .description('make a new signing key (the old one stays published for a day)')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print { kid } as JSON')
    .action(runKeysRotate);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end here too, with exit code 0.
      process.exitCode = error.exitCode;
      return;
    }
    const reason = error instanceof Error ? error.message : String(error);
    const code = isProtocolError(error) ? ` [${error.code}]` : '';
    process.stderr.write(`imagine: ${reason}${code}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
