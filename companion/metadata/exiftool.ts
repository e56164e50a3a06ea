/**
 * The one shared exiftool instance: a pool of long-lived `exiftool -stay_open` processes sized
 * to the machine, created on first use. `endExiftool()` must run at shutdown or the process
 * keeps running.
 *
 * Besides exiftool-vendored's own `read`/`write`, `runExiftool(args)` runs any command line
 * (tag copies, block writes, `-wm cg`) through the same pool, and `readGroupedTags` is the
 * one raw read the metadata modules use: `-j -G0:1 -a -n -b`, so every key is
 * group-qualified (`XMP:XMP-dc:Title`, `EXIF:IFD0:Artist`, `IPTC:By-line`), duplicates are kept
 * apart, values are not print-converted, and strings that are not valid UTF-8 come back as
 * `base64:` data instead of being mangled.
 */
import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { ExifTool, ExifToolTask } from 'exiftool-vendored';

/** Memory one exiftool process may take with large files (Perl holds a file's metadata). */
const BYTES_PER_PROCESS = 256 * 1024 * 1024;
/** More processes than this stop paying off: the callers' own work becomes the limit. */
const MAX_PROCESSES = 16;
/** A process serves this many tasks before it is replaced (bounds slow leaks; a spawn costs ~0.2 s). */
const TASKS_PER_PROCESS = 5_000;
/** A task (one file) taking longer than this is killed with its process. */
export const EXIFTOOL_TASK_TIMEOUT_MS = 30_000;

/** How many exiftool processes the pool runs on a machine: one per CPU, bounded by memory. */
export function exiftoolPoolSize(machine: { cpus: number; memoryBytes: number }): number {
  const byMemory = Math.floor(machine.memoryBytes / 2 / BYTES_PER_PROCESS);
  return Math.max(1, Math.min(machine.cpus, byMemory, MAX_PROCESSES));
}

let instance: ExifTool | undefined;

export function getExiftool(): ExifTool {
  instance ??= new ExifTool({
    maxProcs: exiftoolPoolSize({ cpus: availableParallelism(), memoryBytes: totalmem() }),
    maxTasksPerProcess: TASKS_PER_PROCESS,
    writeArgs: ['-overwrite_original'],
    taskTimeoutMillis: EXIFTOOL_TASK_TIMEOUT_MS,
  });
  return instance;
}

export async function endExiftool(): Promise<void> {
  const current = instance;
  instance = undefined;
  if (current) await current.end();
}

export interface ExiftoolOutput {
  stdout: string;
  /** stderr lines exiftool marked as errors (a failed write names its reason here). */
  errors: string[];
  /** stderr lines exiftool marked as warnings. */
  warnings: string[];
}

class ArgsTask extends ExifToolTask<ExiftoolOutput> {
  protected parse(stdout: string, error?: Error): ExiftoolOutput {
    const errors = [...this.errors];
    if (error && !errors.length) errors.push(error.message);
    return { stdout, errors, warnings: [...this.warnings] };
  }
}

/**
 * Runs one exiftool command line in the shared pool. Arguments may not contain line breaks
 * (the pool talks to exiftool one argument per line): encode values with `encodeValue` and
 * pass `-E`. Errors come back as data; the promise rejects only when the process fails.
 */
export async function runExiftool(args: readonly string[]): Promise<ExiftoolOutput> {
  const list = ['-charset', 'filename=utf8', ...args];
  return getExiftool().enqueueTask(() => new ArgsTask(list), false);
}

/**
 * The options every command assigning tag values starts with. `-E` decodes the entities
 * `encodeValue` writes, so it must not be used for block writes (`-XMP<=file`): exiftool would
 * decode the entities of the packet itself.
 */
export const WRITE_ARGS = ['-overwrite_original', '-use', 'MWG', '-E', '-sep', '\u001f', '-api', 'struct=2'] as const;

/**
 * The options of a command that only copies (`-tagsFromFile`) or writes blocks (`-XMP<=file`).
 *
 * Every command loads the MWG module (`-use MWG`): a pool process that has loaded it once keeps
 * it (EXIF:Artist becomes a list, EXIF text UTF-8, non-standard metadata locations ignored),
 * so loading it always is the only way every process behaves the same.
 */
export const COPY_ARGS = ['-overwrite_original', '-use', 'MWG'] as const;

/** A value for a `-TAG=value` argument of a command that passes `-E` (see `WRITE_ARGS`). */
export function encodeValue(value: string): string {
  return value.replace(/[&<>"'\r\n\u0000]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&#39;';
      case '\u0000':
        return '';
      default:
        return `&#${c.charCodeAt(0)};`;
    }
  });
}

/** A value exiftool writes into a tag: text, a list, a number, a flag, a structure or a list of them. */
export type TagValue = string | number | boolean | readonly TagValue[] | { readonly [field: string]: TagValue };

function encodeStructPart(value: TagValue): string {
  if (typeof value === 'string') return encodeValue(value.replace(/[,[\]{}|]/g, (c) => `|${c}`));
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (Array.isArray(value)) return `[${value.map(encodeStructPart).join(',')}]`;
  const struct = value as { readonly [field: string]: TagValue };
  return `{${Object.entries(struct)
    .map(([k, v]) => `${k}=${encodeStructPart(v)}`)
    .join(',')}}`;
}

/**
 * One `-TAG=value` argument; `null` deletes the tag. Lists of plain values are joined with the
 * `-sep` character of `WRITE_ARGS`; structures use exiftool's serialised form.
 */
export function assignment(tag: string, value: TagValue | null): string {
  if (!/^[A-Za-z][A-Za-z0-9_:-]*[+-]?$/.test(tag)) throw new Error(`not an exiftool tag name: ${JSON.stringify(tag)}`);
  if (value === null) return `-${tag}=`;
  if (typeof value === 'string') return `-${tag}=${encodeValue(value)}`;
  if (typeof value === 'number') return `-${tag}=${value}`;
  if (typeof value === 'boolean') return `-${tag}=${value ? 'True' : 'False'}`;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')) {
    return `-${tag}=${value.map((v) => encodeValue(String(v))).join('\u001f')}`;
  }
  return `-${tag}=${encodeStructPart(value)}`;
}

/** A moment in exiftool's date-time form (`2024:05:01 12:30:00+00:00`), to the second, UTC. */
export function exifDateTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/-/g, ':').replace('T', ' ')}+00:00`;
}

/** Tags as `-j -G0:1` prints them: `"Family0:Family1:Name"` (or `"Group:Name"` when both are the same). */
export type GroupedTags = Record<string, unknown>;

export interface GroupedRead {
  tags: GroupedTags;
  warnings: string[];
  errors: string[];
}

/**
 * Reads `path` with `-j -G0:1 -a -n -b` plus `args` (tag names to read, `-fast2`, `-struct`,
 * `-use MWG`...). exiftool's own Warning and Error tags come back in `warnings` and `errors`.
 */
export async function readGroupedTags(path: string, args: readonly string[]): Promise<GroupedRead> {
  const out = await runExiftool(['-j', '-G0:1', '-a', '-n', '-b', ...args, '-Warning', '-Error', resolve(path)]);
  const warnings = [...out.warnings];
  const errors = [...out.errors];
  const tags: GroupedTags = {};
  try {
    // With -a a key can repeat (the same tag in two places): the first one is the standard one.
    for (const [key, value] of parseExiftoolJson(out.stdout)[0] ?? []) if (!(key in tags)) tags[key] = value;
  } catch {
    if (!errors.length) errors.push(`exiftool output could not be parsed: ${out.stdout.slice(0, 200)}`);
  }
  for (const [key, value] of Object.entries(tags)) {
    const name = tagName(key);
    if (groupsOf(key)[0] === 'ExifTool' && (name === 'Warning' || name === 'Error')) {
      (name === 'Error' ? errors : warnings).push(...(Array.isArray(value) ? value : [value]).map(String));
      delete tags[key];
    }
  }
  delete tags.SourceFile;
  return { tags, warnings: unique(warnings), errors: unique(errors) };
}

function unique(list: string[]): string[] {
  return [...new Set(list.map((s) => s.trim()).filter(Boolean))];
}

/** The tag name of a grouped key (`"XMP:XMP-dc:Title"` → `"Title"`). */
export function tagName(key: string): string {
  return key.slice(key.lastIndexOf(':') + 1);
}

/** The groups of a grouped key (`"EXIF:IFD0:Artist"` → `["EXIF", "IFD0"]`). */
export function groupsOf(key: string): string[] {
  const parts = key.split(':');
  parts.pop();
  return parts;
}

/**
 * Whether a grouped key is the tag `wanted` names (`"Group:Name"`, the group of family 0 or
 * 1, case-insensitive). `"EXIF:Artist"` matches `"EXIF:IFD0:Artist"`; `"XMP-dc:Title"`
 * matches `"XMP:XMP-dc:Title"` but not its language variants (`Title-de`).
 */
export function keyMatches(key: string, wanted: string): boolean {
  const colon = wanted.lastIndexOf(':');
  const group = wanted.slice(0, colon).toLowerCase();
  const name = wanted.slice(colon + 1).toLowerCase();
  if (tagName(key).toLowerCase() !== name) return false;
  return colon === -1 || groupsOf(key).some((g) => g.toLowerCase() === group);
}

/** The value of the first key matching `wanted`, or undefined. */
export function pickTag(tags: GroupedTags, wanted: string): unknown {
  for (const [key, value] of Object.entries(tags)) if (keyMatches(key, wanted)) return value;
  return undefined;
}

/**
 * exiftool's `-j` output as lists of members, one list per file, keeping keys that repeat
 * (`-a` prints a tag found in two places twice under the same key, which JSON.parse would
 * collapse to the last one).
 */
export function parseExiftoolJson(text: string): Array<Array<[string, unknown]>> {
  const files: Array<Array<[string, unknown]>> = [];
  let pos = 0;
  const skip = () => {
    while (pos < text.length && ' \t\r\n'.includes(text[pos]!)) pos++;
  };
  const expect = (c: string) => {
    skip();
    if (text[pos] !== c) throw new SyntaxError(`"${c}" expected at ${pos}`);
    pos++;
  };
  /** End (exclusive) of the string starting at `from` (its opening quote). */
  const stringEnd = (from: number): number => {
    let i = from + 1;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    return i + 1;
  };
  /** End (exclusive) of the JSON value starting at `from`. */
  const valueEnd = (from: number): number => {
    const first = text[from];
    if (first === '"') return stringEnd(from);
    if (first === '[' || first === '{') {
      let depth = 0;
      for (let i = from; i < text.length; i++) {
        const c = text[i]!;
        if (c === '"') i = stringEnd(i) - 1;
        else if (c === '[' || c === '{') depth++;
        else if ((c === ']' || c === '}') && --depth === 0) return i + 1;
      }
      return text.length;
    }
    let i = from;
    while (i < text.length && !',}] \t\r\n'.includes(text[i]!)) i++;
    return i;
  };
  expect('[');
  skip();
  if (text[pos] === ']') return files;
  for (;;) {
    expect('{');
    const members: Array<[string, unknown]> = [];
    skip();
    if (text[pos] === '}') pos++;
    else {
      for (;;) {
        skip();
        const keyEnd = valueEnd(pos);
        const key = JSON.parse(text.slice(pos, keyEnd)) as string;
        pos = keyEnd;
        expect(':');
        skip();
        const end = valueEnd(pos);
        members.push([key, JSON.parse(text.slice(pos, end))]);
        pos = end;
        skip();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        expect('}');
        break;
      }
    }
    files.push(members);
    skip();
    if (text[pos] === ',') {
      pos++;
      continue;
    }
    expect(']');
    return files;
  }
}
