import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { followFile } from './follow-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'imagine-follow-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A writer that creates the file late and appends `parts` with pauses; `written` settles at the end. */
function slowWriter(path: string, parts: Buffer[], fail?: Error) {
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const written = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const run = (async () => {
    await sleep(30);
    await writeFile(path, '');
    for (const part of parts) {
      await sleep(15);
      await appendFile(path, part);
    }
    if (fail) settle.reject(fail);
    else settle.resolve();
  })();
  return { written, run };
}

describe('followFile', () => {
  test('reads a file as it grows, created late, and ends with every byte once it is written', async () => {
    const path = join(dir, `f${n++}`);
    const parts = [randomBytes(300_000), randomBytes(1), randomBytes(2_500_000), randomBytes(77)];
    const writer = slowWriter(path, parts);
    const read = await collect(followFile(path, writer.written, { pollMs: 5 }));
    await writer.run;
    assert.ok(read.equals(Buffer.concat(parts)));
  });

  test('a file already complete is read at once', async () => {
    const path = join(dir, `f${n++}`);
    const data = randomBytes(3 * 1024 * 1024 + 5);
    await writeFile(path, data);
    assert.ok((await collect(followFile(path, Promise.resolve()))).equals(data));
  });

  test('a failed write fails the stream with its error', async () => {
    const path = join(dir, `f${n++}`);
    const writer = slowWriter(path, [randomBytes(1000)], new Error('exiftool refused'));
    await assert.rejects(collect(followFile(path, writer.written, { pollMs: 5 })), /exiftool refused/);
    await writer.run;
  });

  test('a file never written is ERR_FILE_MISSING; an abort stops the reading', async () => {
    await assert.rejects(collect(followFile(join(dir, 'never'), sleep(20))), { code: 'ERR_FILE_MISSING' });
    const path = join(dir, `f${n++}`);
    await writeFile(path, 'begun');
    const stop = new AbortController();
    const reading = collect(followFile(path, new Promise(() => {}), { signal: stop.signal, pollMs: 5 }));
    setTimeout(() => stop.abort(new Error('the push was refused')), 30);
    await assert.rejects(reading, /the push was refused/);
  });
});
