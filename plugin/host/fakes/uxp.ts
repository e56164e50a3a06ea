/**
 * A fake of UXP's `uxp` module for tests of the host adapters: records every call with its
 * exact arguments in a log shared with the other fakes, and hands out session tokens that the
 * Photoshop fake resolves back to paths.
 */
import type { UxpEntry, UxpModule } from '../host-modules.ts';

/** One recorded call. `scope` says whether it ran inside a modal (Photoshop) or a doScript. */
export interface FakeCall {
  call: string;
  args: unknown[];
  scope?: 'modal' | 'script';
}

/** Functions are recorded as this marker, so calls compare with `deepStrictEqual`. */
export const FUNCTION_ARG = '<function>';

export function recordArgs(args: unknown[]): unknown[] {
  return args.map((arg) => (typeof arg === 'function' ? FUNCTION_ARG : structuredCloneSafe(arg)));
}

function structuredCloneSafe(value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    return value; // host objects (entries, enum values) are kept as they are
  }
}

export interface FakeUxpOptions {
  log: FakeCall[];
  /** `uxp.host.name`, e.g. "Photoshop" or "InDesign". */
  hostName: string;
  /** Files that exist; `getEntryWithUrl` throws for others. Absent: every file exists. */
  files?: Iterable<string>;
}

export interface FakeUxp {
  module: UxpModule;
  /** Native path of the file a session token was made for. */
  pathOfToken(token: string): string | undefined;
  /** Adds a file on the fake disk. */
  addFile(path: string): void;
}

/** The native path UXP would give for a `file:` URL (inverse of fileUrlForPath). */
function pathFromFileUrl(url: string): string {
  if (!url.startsWith('file:')) throw new Error(`Invalid file url ${url}`);
  const rest = url.slice('file:'.length);
  return /^\/[A-Za-z]:\//.test(rest) ? rest.slice(1).replace(/\//g, '\\') : rest;
}

export function fakeUxp(options: FakeUxpOptions): FakeUxp {
  const { log } = options;
  const files = options.files ? new Set(options.files) : null;
  const tokens = new Map<string, string>();
  let nextToken = 1;

  const module: UxpModule = {
    host: { name: options.hostName, version: '0.0.0-fake' },
    storage: {
      localFileSystem: {
        async getEntryWithUrl(url: string): Promise<UxpEntry> {
          log.push({ call: 'uxp.storage.localFileSystem.getEntryWithUrl', args: recordArgs([url]) });
          const nativePath = pathFromFileUrl(url);
          if (files && !files.has(nativePath)) throw new Error(`Could not find an entry of '${url}'`);
          const name = nativePath.split(/[\\/]/).pop() ?? nativePath;
          return { name, nativePath };
        },
        createSessionToken(entry: UxpEntry): string {
          log.push({ call: 'uxp.storage.localFileSystem.createSessionToken', args: recordArgs([entry]) });
          if (!entry.nativePath) throw new Error('Invalid entry');
          const token = `session-token-${nextToken++}`;
          tokens.set(token, entry.nativePath);
          return token;
        },
      },
    },
  };

  return {
    module,
    pathOfToken: (token) => tokens.get(token),
    addFile: (path) => files?.add(path),
  };
}
