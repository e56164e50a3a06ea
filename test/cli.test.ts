// The `imagine` command line as scripts drive it (DESIGN.md §7): real child processes of
// companion/bin/imagine.js, help for every command, one-line failures, and `serve` end to end.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DiscoveryDocument } from '../shared/schemas/discovery.ts';
import { checkSchema, describeIssues } from '../shared/validate.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'companion', 'bin', 'imagine.js');
const tmp = mkdtempSync(join(tmpdir(), 'imagine-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `imagine ...args` to completion, with no IMAGINE_* variables from the outer environment. */
function imagine(args: string[], timeoutMs = 30_000): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('IMAGINE_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: tmp, env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The commands and options of DESIGN.md §7. Every command also has --help and --json.
 * Commands not written yet are reported as todo, and checked as soon as they exist.
 */
const COMMANDS: Record<string, string[]> = {
  serve: ['--data', '--host', '--port', '--role', '--demo'],
  ingest: ['--data', '--collection', '--public'],
  'users add': ['--email', '--data'],
  'tokens create': ['--user', '--data'],
  'peers list': ['--data'],
  'peers request': ['--data'],
  'peers approve': ['--data'],
  'peers revoke': ['--data'],
  connect: ['--token'],
  pair: [],
  checkout: ['--rendition'],
  push: ['--comment'],
  queue: [],
  search: ['--json'],
  'sync status': [],
};

const topHelp = await imagine(['--help']);
const listed = new Set([...topHelp.stdout.matchAll(/^  ([a-z]+)\b/gm)].map((m) => m[1]));

/** `--help` of each command whose first word the top-level help lists, two processes at a time. */
const helps = new Map<string, Run>();
const queue = Object.keys(COMMANDS).filter((command) => listed.has(command.split(' ')[0]));
await Promise.all(
  [0, 1].map(async () => {
    for (let command = queue.shift(); command !== undefined; command = queue.shift()) {
      helps.set(command, await imagine([...command.split(' '), '--help']));
    }
  }),
);

/** Commander answers `imagine group unknown --help` with the group's help, so look at the usage line. */
function isImplemented(command: string): boolean {
  return helps.get(command)?.stdout.startsWith(`Usage: imagine ${command} `) ?? false;
}

describe('imagine --help', () => {
  test('prints usage to stdout and exits 0, listing the commands', () => {
    const run = topHelp;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Usage: imagine /);
    assert.match(run.stdout, /--version/);
    assert.match(run.stdout, /--help/);
    for (const command of Object.keys(COMMANDS).filter(isImplemented)) {
      assert.match(run.stdout, new RegExp(`^  ${command.split(' ')[0]}\\b`, 'm'), `${command} not listed`);
    }
    assert.equal(run.stderr, '');
  });

  for (const [command, options] of Object.entries(COMMANDS)) {
    const implemented = isImplemented(command);
    test(
      `imagine ${command} --help lists ${[...new Set([...options, '--json', '--help'])].join(' ')}`,
      implemented ? {} : { todo: `"imagine ${command}" is not implemented yet` },
      () => {
        const run = helps.get(command);
        if (!implemented || !run) return; // todo: nothing to check yet
        assert.equal(run.code, 0, run.stderr);
        for (const option of new Set([...options, '--json', '--help'])) {
          assert.match(run.stdout, new RegExp(`^\\s+(-\\w, )?${option}\\b`, 'm'), `${option} missing`);
        }
      },
    );
  }
});

describe('imagine failures', { concurrency: true }, () => {
  /** The reason is the first line of stderr; at most a usage hint follows, never a stack. */
  function assertOneLineReason(run: Run, reason: RegExp) {
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trimEnd().split('\n');
    assert.match(lines[0] ?? '', reason);
    assert.ok(lines.length <= 2, `more than a reason and a hint on stderr:\n${run.stderr}`);
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'a stack trace was printed');
  }

  test('an unknown command exits non-zero naming it', async () => {
    assertOneLineReason(await imagine(['frobnicate']), /unknown command 'frobnicate'/);
  });

  test('serve --port abc exits non-zero naming the option', async () => {
    assertOneLineReason(await imagine(['serve', '--port', 'abc']), /--port.*abc.*port number/);
  });

  test('serve --role x exits non-zero naming the option', async () => {
    assertOneLineReason(await imagine(['serve', '--role', 'x']), /--role.*'x'/);
  });
});

describe('imagine serve', () => {
  test('prints its URL as JSON, serves discovery there, and exits 0 on SIGTERM', async (t) => {
    const data = join(tmp, 'serve-data');
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('IMAGINE_')));
    const child = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', '0', '--json'], {
      cwd: tmp,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    // The first stdout line, within 20 s.
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up line within 20 s; stderr:\n${stderr}`)), 20_000);
      lines.once('line', (line) => {
        clearTimeout(timer);
        resolve(line);
      });
      exited.then(({ code }) => reject(new Error(`serve exited with ${code} before starting; stderr:\n${stderr}`)));
    });
    const started = JSON.parse(first) as { url: string; discovery?: string; dataDir?: string };
    assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(started.url, 'http://127.0.0.1:0');
    if (started.dataDir !== undefined) assert.equal(started.dataDir, data);

    const response = await fetch(`${started.url}/.well-known/imagine`, { redirect: 'manual' });
    assert.equal(response.status, 200);
    const checked = checkSchema(DiscoveryDocument, await response.json());
    assert.ok(checked.ok, checked.ok ? '' : describeIssues(checked.issues));
    assert.equal(checked.value.server.origin, started.url);

    const stopAt = Date.now();
    child.kill('SIGTERM');
    const result = await Promise.race([
      exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still running 5 s after SIGTERM')), 5_000)),
    ]);
    assert.deepEqual(result, { code: 0, signal: null }, stderr);
    assert.ok(Date.now() - stopAt < 5_000);
  });
});
