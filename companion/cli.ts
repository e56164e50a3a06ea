/**
 * The `imagine` command line (DESIGN.md §7). Every command has `--help`, exits non-zero with a
 * one-line reason on failure, and prints machine-readable results with `--json`.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isProtocolError } from '../shared/errors.ts';
import { ROLES } from './config.ts';
import { SOFTWARE } from './software.ts';
import { runServe } from './commands/serve.ts';

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
