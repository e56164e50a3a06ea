/**
 * The `imagine` command line (DESIGN.md §7). Every command has `--help`, exits non-zero with a
 * one-line reason on failure, and prints machine-readable results with `--json`.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isProtocolError } from '../shared/errors.ts';
import { ROLES } from './config.ts';
import { SOFTWARE } from './software.ts';
import { installCompiledSchemaChecks } from './compiled-schemas.ts';

// Command modules load the server and its libraries: import them only when their command runs,
// so `--help` answers at once.
const runServe = lazy(() => import('./commands/serve.ts'), 'runServe');
const runIngest = lazy(() => import('./commands/ingest.ts'), 'runIngest');
const runUsersAdd = lazy(() => import('./commands/users.ts'), 'runUsersAdd');
const runTokensCreate = lazy(() => import('./commands/users.ts'), 'runTokensCreate');
const runSearch = lazy(() => import('./commands/search.ts'), 'runSearch');
const runSyncStatus = lazy(() => import('./commands/sync.ts'), 'runSyncStatus');
const runSyncNow = lazy(() => import('./commands/sync.ts'), 'runSyncNow');
const runSyncCollections = lazy(() => import('./commands/sync.ts'), 'runSyncCollections');
const runPair = lazy(() => import('./commands/pair.ts'), 'runPair');
const runConnect = lazy(() => import('./commands/connect.ts'), 'runConnect');
const runCheckout = lazy(() => import('./commands/checkout.ts'), 'runCheckout');
const runPush = lazy(() => import('./commands/push.ts'), 'runPush');
const runQueue = lazy(() => import('./commands/queue.ts'), 'runQueue');
const peersCommands = () => import('./commands/peers.ts');
const runPeersList = lazy(peersCommands, 'runPeersList');
const runPeersRequest = lazy(peersCommands, 'runPeersRequest');
const runPeersApprove = lazy(peersCommands, 'runPeersApprove');
const runPeersRevoke = lazy(peersCommands, 'runPeersRevoke');
const runPeersMirror = lazy(peersCommands, 'runPeersMirror');
const runKeysRotate = lazy(peersCommands, 'runKeysRotate');
const runGuestsInvite = lazy(() => import('./commands/guests.ts'), 'runGuestsInvite');

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

  program
    .command('search')
    .description('search the local mirror through the running agent (works with the servers down)')
    .argument('[query...]', 'full-text query (all terms must match); empty lists everything')
    .option('--data <dir>', 'data folder of the agent (default: $IMAGINE_DATA or ./.imagine)')
    .option('--connection <id>', 'only this connection')
    .option('--collection <id>', 'only this collection')
    .option('--creator <name>', 'only this creator')
    .option('--keyword <word>', 'only this keyword')
    .option('--format <subtype>', 'only this format (jpeg, png, tiff…)')
    .option('--orientation <o>', 'landscape | portrait | square')
    .option('--rights <r>', 'unrestricted | restricted | expired')
    .option('--sort <s>', 'relevance | created | -created | updated | -updated | title | -title')
    .option('--limit <n>', 'results per connection (1-200, default 50)')
    .option('--cursor <c>', 'the cursor a previous page printed')
    .option('--json', 'print the page as JSON')
    .action(runSearch);

  const sync = program.command('sync').description('the local mirror of each connection (offline browsing and search)');
  sync
    .command('status')
    .description('per connection: state, last sync, lag, size on disk, last error')
    .option('--data <dir>', 'data folder of the agent')
    .option('--json', 'print the statuses as JSON')
    .action(runSyncStatus);
  sync
    .command('now')
    .description('sync now and wait for the end (every connection, or one)')
    .argument('[connection]', 'connection id')
    .option('--data <dir>', 'data folder of the agent')
    .option('--json', 'print the statuses as JSON')
    .action(runSyncNow);
  sync
    .command('collections')
    .description('mirror only these collections of a connection (or --all); a full sync follows')
    .argument('<connection>', 'connection id')
    .argument('[ids...]', 'collection ids')
    .option('--all', 'mirror everything the token can read')
    .option('--data <dir>', 'data folder of the agent')
    .option('--json', 'print the status as JSON')
    .action(runSyncCollections);

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
  peers
    .command('mirror')
    .description("mirror a peer's collection here: initial copy, then its change feed (the server must be running)")
    .argument('<collection>', 'imagine://peer/collections/ID')
    .option('--as <identity>', 'read the peer as this user (name@domain), for collections shared with them')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print the mirror as JSON')
    .action(runPeersMirror);

  const guests = program.command('guests').description('people invited by e-mail address to see shared collections');
  guests
    .command('invite')
    .description('share collections with an e-mail address and print a one-time sign-in link (last line; mailed when smtpUrl is set)')
    .argument('<email>', "the guest's e-mail address (becomes the identity the collections are shared with)")
    .requiredOption('--collection <id...>', 'collections to share (id or name)')
    .option('--token <token>', "an administrator's API token, needed while a server runs on the data folder (or IMAGINE_TOKEN)")
    .option('--data <dir>', 'data folder')
    .option('--json', 'print the invitation as JSON')
    .action(runGuestsInvite);

  const keys = program.command('keys').description("this server's federation signing keys");
  keys
    .command('rotate')
    .description('make a new signing key (the old one stays published for a day)')
    .option('--data <dir>', 'data folder')
    .option('--json', 'print { kid } as JSON')
    .action(runKeysRotate);

  program
    .command('pair')
    .description("print the agent's pairing token for the panel (made on first use; printed as the last line)")
    .option('--data <dir>', 'data folder (default: $IMAGINE_DATA or ./.imagine)')
    .option('--json', 'print the token as JSON')
    .action(runPair);

  program
    .command('connect')
    .description('add a server for the agent to work with (an origin, a bare domain or an imagine:// URI); on one already added, change its --token or --name')
    .argument('<url>', 'e.g. https://images.example, images.example or imagine://images.example')
    .option('--token <token>', 'API token on that server (checked before it is stored)')
    .option('--name <name>', 'name to show for it (default: the name the server gives)')
    .option('--data <dir>', 'data folder (default: $IMAGINE_DATA or ./.imagine)')
    .option('--json', 'print the connection as JSON')
    .action(runConnect);

  program
    .command('checkout')
    .description('check out an image through the running agent and print its local path (waits for the download)')
    .argument('<uri>', 'imagine:// URI of the image')
    .option('--rendition <r>', 'original | proxy (default original)')
    .option('--version <v>', 'a version id (default the current version)')
    .option('--data <dir>', 'data folder of the agent (default: $IMAGINE_DATA or ./.imagine)')
    .option('--json', 'print the checkout as JSON')
    .action(runCheckout);

  program
    .command('push')
    .description("push a checkout's edited file as a new version (metadata restored, queued durably); prints the new version's imagine:// URI")
    .argument('<path>', 'the edited file (the working file of a checkout)')
    .option('--comment <text>', 'version comment')
    .option('--checkout <id>', 'the checkout, when the file was saved under another name')
    .option('--wait', 'wait until the push lands (or ends in conflict or failure)')
    .option('--data <dir>', 'data folder of the agent')
    .option('--json', 'print the queued push as JSON')
    .action(runPush);

  program
    .command('queue')
    .description("list the agent's queued pushes: state, attempts, progress, result or error")
    .option('--data <dir>', 'data folder of the agent')
    .option('--json', 'print { items } as JSON')
    .action(runQueue);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  installCompiledSchemaChecks();
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
