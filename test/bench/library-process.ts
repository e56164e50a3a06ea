/**
 * A library server in its own process for benchmarks (`imagine serve --role library --json`), as
 * it would run on another machine than the client being measured. Answers its URL once it
 * listens; the caller stops the child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export async function startLibraryProcess(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(root, 'companion/bin/imagine.js'), 'serve', '--data', dataDir, '--port', '0', '--json'], {
    cwd: root,
    env: { ...process.env, IMAGINE_ROLE: 'library', IMAGINE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.once('exit', (code) => reject(new Error(`library server exited (${code})`)));
  });
  return { url: (JSON.parse(line) as { url: string }).url, child };
}
