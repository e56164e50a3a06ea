/**
 * Helpers for the integration tests: they run the real `imagine` program as child processes
 * (the CLI and `imagine serve` on a real port on 127.0.0.1), make real image files, and read
 * the data folder the way an operator would (catalog.json, blobs/, tmp/, writer.lock).
 *
 * Every child started here is remembered; `killChildren()` (called from `after` hooks)
 * SIGKILLs, by pid, those still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'companion', 'bin', 'imagine.js');

const children = new Set<ChildProcess>();

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * The processes started by `pid`, and by those, recursively (Linux /proc). The program runs a
 * pool of `exiftool -stay_open` processes: they do not notice their parent being killed (on
 * end of input exiftool polls for more, forever), so whoever SIGKILLs the program ends them too.
 */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (parent: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let text: string;
      try {
        text = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of text.split(/\s+/).filter(Boolean).map(Number)) {
        out.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return out;
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs a child without warning (a crash), then the processes it had started, by pid. */
export async function crash(started: Started): Promise<Exit> {
  const family = descendants(started.pid);
  process.kill(started.pid, 'SIGKILL');
  const exit = await started.exited;
  killPids(family);
  return exit;
}

/** SIGKILLs (by pid) every child this module started that is still running, and what they started. */
export function killChildren(): void {
  for (const child of children) {
    if (child.pid !== undefined && running(child)) {
      const family = descendants(child.pid);
      killPids([child.pid]);
      killPids(family);
    }
  }
  children.clear();
}

/** Environment for the children: quiet logs, nothing inherited that points at another data folder. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, IMAGINE_LOG_LEVEL: 'warn', ...extra };
  delete env.IMAGINE_DATA;
  delete env.IMAGINE_PORT;
  delete env.IMAGINE_HOST;
  return env;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Started {
  child: ChildProcess;
  pid: number;
  exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
}

/** Starts `imagine ARGS...` without waiting for it. */
export function startCli(args: string[], options: { env?: Record<string, string> } = {}): Started {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start imagine ${args.join(' ')}`);
  return { child, pid: child.pid, exited, stdout: () => out, stderr: () => err };
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `imagine ARGS...` to the end (killed after `timeoutMs`). */
export async function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const started = startCli(args, options);
  const timeoutMs = options.timeoutMs ?? 90_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const family = descendants(started.pid);
      killPids([started.pid]);
      killPids(family);
      reject(new Error(`imagine ${args.join(' ')} took more than ${timeoutMs} ms\n${started.stderr()}`));
    }, timeoutMs);
  });
  try {
    const exit = await Promise.race([started.exited, timeout]);
    return { ...exit, stdout: started.stdout(), stderr: started.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** The last non-empty line of a command's output. */
export function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

export interface Server extends Started {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  api: string;
  port: number;
}

/** Starts `imagine serve --port 0 --json` on `dataDir` and waits for its start-up line. */
export async function startServer(
  dataDir: string,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Server> {
  return serve(['--data', dataDir, '--port', '0'], options);
}

/** Starts `imagine serve ARGS --host 127.0.0.1 --json` and waits for its start-up line. */
export async function serve(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Server> {
  const started = startCli(['serve', ...args, '--host', '127.0.0.1', '--json'], options);
  const timeoutMs = options.timeoutMs ?? 90_000;
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in ${timeoutMs} ms\n${started.stderr()}`)), timeoutMs);
    const check = () => {
      const out = started.stdout();
      const end = out.indexOf('\n');
      if (end !== -1) {
        clearTimeout(timer);
        resolve(out.slice(0, end));
      }
    };
    started.child.stdout!.on('data', check);
    started.exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${exit.code ?? exit.signal}) before it started\n${started.stderr()}`));
    }, reject);
  });
  const info = JSON.parse(line) as { url: string; api: string };
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(info.url)) throw new Error(`unexpected start-up line: ${line}`);
  return { ...started, url: info.url, api: info.api, port: Number(new URL(info.url).port) };
}

/** Sends a signal to a child and waits for it to end (SIGKILL after `timeoutMs`). */
export async function stopChild(started: Started, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<Exit> {
  if (!running(started.child)) return started.exited;
  process.kill(started.pid, signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Exit>((resolve) => {
    timer = setTimeout(() => {
      const family = descendants(started.pid);
      killPids([started.pid]);
      killPids(family);
      resolve({ code: null, signal: 'SIGKILL' });
    }, timeoutMs);
  });
  try {
    return await Promise.race([started.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

// --- HTTP -------------------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP request with the request target sent exactly as given (fetch would normalise
 * `%2e%2e` and friends away). `body` may be a Buffer or an async iterable of chunks (sent
 * chunked). Resolves with the response even when the server answers before reading the body.
 */
export function rawRequest(
  origin: string,
  target: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | AsyncIterable<Buffer>; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: Number(url.port),
      method: options.method ?? 'GET',
      path: target,
      headers: { connection: 'close', ...options.headers },
      timeout: options.timeoutMs ?? 60_000,
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${target} timed out`)));
    req.on('error', (error) => {
      // The server may close the connection after answering early; the answer is what counts.
      if (!answered) reject(error);
    });
    const body = options.body;
    if (body === undefined) {
      req.end();
    } else if (Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      (async () => {
        for await (const chunk of body) {
          if (answered || req.destroyed) break;
          if (!req.write(chunk)) {
            await new Promise<void>((resolve) => {
              const done = () => {
                req.off('drain', done);
                req.off('close', done);
                resolve();
              };
              req.on('drain', done);
              req.on('close', done);
            });
          }
        }
        if (!req.destroyed) req.end();
      })().catch(() => undefined);
    }
  });
}

export function json<T = any>(response: RawResponse): T {
  return JSON.parse(response.body.toString('utf8')) as T;
}

// --- files ------------------------------------------------------------------------------------

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** `Content-Digest` for these bytes (RFC 9530). */
export function contentDigest(bytes: Buffer): string {
  return `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;
}

/** Every file under `dir`, recursively (relative paths); [] when it does not exist. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    let entries;
    try {
      entries = await readdir(join(dir, sub), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const rel = sub ? join(sub, entry.name) : entry.name;
      if (entry.isDirectory()) await walk(rel);
      else out.push(rel);
    }
  };
  await walk('');
  return out.sort();
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A solid-colour-with-noise image, different for every `seed`. */
export function noiseImage(width: number, height: number, seed: number) {
  return sharp({
    create: {
      width,
      height,
      channels: 3,
      background: { r: (seed * 53) % 256, g: (seed * 97) % 256, b: (seed * 31) % 256 },
      noise: { type: 'gaussian', mean: 100 + (seed % 50), sigma: 30 },
    },
  });
}

/** A small JPEG whose bytes no other seed produces. */
export async function uniqueJpeg(seed: number, width = 160, height = 120): Promise<Buffer> {
  return withComment(await noiseImage(width, height, seed).jpeg({ quality: 80 }).toBuffer(), `imagine-test-${seed}-${Date.now()}`);
}

/** A JPEG with a COM segment inserted after SOI: same picture, other bytes. */
export function withComment(jpeg: Buffer, text: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  const payload = Buffer.from(text, 'latin1');
  const segment = Buffer.alloc(4 + payload.length);
  segment[0] = 0xff;
  segment[1] = 0xfe;
  segment.writeUInt16BE(payload.length + 2, 2);
  payload.copy(segment, 4);
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}

export async function writeBytes(path: string, bytes: Buffer): Promise<string> {
  await writeFile(path, bytes);
  return sha256(bytes);
}

// --- the data folder --------------------------------------------------------------------------

export interface CatalogFile {
  schemaVersion: number;
  assets: {
    id: string;
    filename: string;
    deleted?: string;
    collections: string[];
    versions: { id: string; number: number; sha256: string; size: number; thumbnailSha256?: string }[];
  }[];
  collections: { id: string; name: string }[];
  users: { name: string }[];
  tokens: unknown[];
  changes: { seq: number; type: string; assetId?: string; collectionId?: string }[];
  nextSeq: number;
}

export async function readCatalog(dataDir: string): Promise<CatalogFile> {
  return JSON.parse(await readFile(join(dataDir, 'catalog.json'), 'utf8')) as CatalogFile;
}

export function blobPath(dataDir: string, sha: string): string {
  return join(dataDir, 'blobs', sha.slice(0, 2), sha.slice(2, 4), sha);
}

/**
 * Checks what a crash must never break: the catalog parses; every version (and thumbnail) of
 * every asset has its file under blobs/ with the right sha256 and size; no two live assets
 * share content; change sequence numbers are dense and every change names a known record.
 * Returns the catalog.
 */
export async function checkConsistency(dataDir: string): Promise<CatalogFile> {
  const catalog = await readCatalog(dataDir);
  const problems: string[] = [];
  if (catalog.schemaVersion !== 1) problems.push(`schemaVersion ${catalog.schemaVersion}`);
  const collectionIds = new Set(catalog.collections.map((c) => c.id));
  const assetIds = new Set<string>();
  const liveShas = new Map<string, string>();
  for (const asset of catalog.assets) {
    if (assetIds.has(asset.id)) problems.push(`asset ${asset.id} listed twice`);
    assetIds.add(asset.id);
    if (asset.versions.length === 0) problems.push(`asset ${asset.id} has no version`);
    asset.versions.forEach((version, i) => {
      if (version.number !== i + 1 || version.id !== `v${i + 1}`) problems.push(`asset ${asset.id} version ${i} is ${version.id}`);
    });
    for (const version of asset.versions) {
      const path = blobPath(dataDir, version.sha256);
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch {
        problems.push(`asset ${asset.id} ${version.id}: missing file ${path}`);
        continue;
      }
      if (sha256(bytes) !== version.sha256) problems.push(`asset ${asset.id} ${version.id}: ${path} does not hash right`);
      if (bytes.length !== version.size) problems.push(`asset ${asset.id} ${version.id}: size ${bytes.length} != ${version.size}`);
      if (version.thumbnailSha256) {
        const thumb = blobPath(dataDir, version.thumbnailSha256);
        if (!(await exists(thumb))) problems.push(`asset ${asset.id} ${version.id}: missing thumbnail`);
        else if ((await sha256File(thumb)) !== version.thumbnailSha256) problems.push(`asset ${asset.id} ${version.id}: thumbnail does not hash right`);
      }
      if (!asset.deleted) {
        const other = liveShas.get(version.sha256);
        if (other && other !== asset.id) problems.push(`assets ${other} and ${asset.id} share ${version.sha256}`);
        liveShas.set(version.sha256, asset.id);
      }
    }
    for (const c of asset.collections) if (!collectionIds.has(c)) problems.push(`asset ${asset.id} is in unknown collection ${c}`);
  }
  catalog.changes.forEach((change, i) => {
    if (change.seq !== i + 1) problems.push(`change ${i} has seq ${change.seq}`);
    if (change.assetId && !assetIds.has(change.assetId)) problems.push(`change ${change.seq} names unknown asset ${change.assetId}`);
    if (change.collectionId && !collectionIds.has(change.collectionId)) problems.push(`change ${change.seq} names unknown collection`);
  });
  if (catalog.nextSeq !== catalog.changes.length + 1) problems.push(`nextSeq ${catalog.nextSeq} after ${catalog.changes.length} changes`);
  if (problems.length) throw new Error(`inconsistent data folder ${dataDir}:\n  ${problems.join('\n  ')}`);
  return catalog;
}
