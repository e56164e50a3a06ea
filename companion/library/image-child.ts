/**
 * Big images are decoded in a short-lived child process, not in the server.
 *
 * libvips keeps what it needed to decode an image in the process that decoded it: a thumbnail
 * of a 16384-pixel-wide uncompressed TIFF takes ~150 MiB (strips of 16 MiB, resampling
 * buffers), its IIIF pyramid ~130 MiB, and glibc returns little of it afterwards. In a child
 * that exits when the image is done, none of it stays in the server, and a decoder that
 * crashes on a hostile file takes the child down, not the server. Starting the child (node and
 * sharp, no TypeScript loader) costs ~0.15 s, so only images above `ISOLATE_PIXELS` go there
 * (JPEGs only for pyramids: their thumbnails shrink on load and need little memory).
 *
 * A job is a sharp pipeline as data: input, input options, method calls, output file. The
 * child (image-child-main.js) runs it and answers sharp's own error message on failure, so
 * callers classify errors exactly as for an in-process pipeline.
 *
 * @example
 *   await runImageJob({ input: '/data/tmp/x', output: '/data/tmp/x.jpg',
 *     ops: [['resize', 512, 512, { fit: 'inside' }], ['jpeg', { quality: 80 }]] });
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SharpOptions } from 'sharp';

/** Images with more pixels than this are decoded in a child process (40 megapixels). */
export const ISOLATE_PIXELS = 40_000_000;

/** Longest a child may take before it is killed (a libvips timeout of its own). */
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

export type ImageOp = [method: string, ...args: unknown[]];

export interface ImageJob {
  /** The file to read. */
  input: string;
  inputOptions?: SharpOptions;
  /** sharp method calls, in order (`['resize', 512, 512, {...}]`). */
  ops: ImageOp[];
  /** The file to write (`toFile`). */
  output: string;
}

/**
 * The child could not run the job to its end: it could not be started (`spawn`), it died or
 * answered nothing (`crash`), or it took longer than allowed (`timeout`). A pipeline that
 * failed normally rejects with a plain Error carrying sharp's message instead.
 */
export class ImageChildError extends Error {
  override readonly name = 'ImageChildError';
  readonly kind: 'spawn' | 'crash' | 'timeout';
  constructor(kind: 'spawn' | 'crash' | 'timeout', message: string) {
    super(message);
    this.kind = kind;
  }
}

let childScript = fileURLToPath(new URL('./image-child-main.js', import.meta.url));

/** Replaces the child's script (tests: a child that dies); returns the function that restores it. */
export function setImageChildScript(path: string): () => void {
  const previous = childScript;
  childScript = path;
  return () => {
    childScript = previous;
  };
}

/** Runs one job in a new child process (see the module comment). */
export function runImageJob(job: ImageJob, options: { timeoutMs?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    // No execArgv: the child is plain JavaScript and needs no loader (tests run under tsx).
    const child = spawn(process.execPath, [childScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (out.length < 65_536) out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (err.length < 65_536) err += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new ImageChildError('timeout', `the image took longer than ${Math.round((options.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)} s to process`));
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    timer.unref?.();
    child.once('error', (error) => finish(new ImageChildError('spawn', `the image process could not be started: ${error.message}`)));
    child.once('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      let answer: { ok?: boolean; message?: string } | undefined;
      try {
        answer = line ? (JSON.parse(line) as { ok?: boolean; message?: string }) : undefined;
      } catch {
        answer = undefined;
      }
      if (answer?.ok === true && code === 0) return finish();
      if (answer?.ok === false && typeof answer.message === 'string') return finish(new Error(answer.message));
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      const detail = err.trim().split('\n').pop();
      finish(new ImageChildError('crash', `the image process died (${how})${detail ? `: ${detail.slice(0, 200)}` : ''}`));
    });
    child.stdin.on('error', () => undefined); // a child that dies at once closes its stdin: reported by 'close'
    child.stdin.end(JSON.stringify(job));
  });
}
