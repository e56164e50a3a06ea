/**
 * `npm run bench:metadata`: the metadata engine's throughput on this machine, with the shared
 * exiftool pool (one process per CPU).
 *
 *  1. readMetadata on small JPEGs (256x256, XMP + IPTC IIM + EXIF as a camera and a DAM
 *     leave them) — target >= 150 files/s;
 *  2. readMetadata over the ExifTool corpus (67 mixed files, camera raws and maker notes);
 *  3. extractXmpPacket, writeMetadata (a copy each) and preserve, on the small JPEGs.
 *
 * Results are printed and written into docs/benchmarks.md between the metadata markers.
 * Options: BENCH_FILES (default 400).
 */
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { endExiftool, exiftoolPoolSize, getExiftool, runExiftool } from '../../companion/metadata/exiftool.ts';
import { preserve } from '../../companion/metadata/preserve.ts';
import { readMetadata, readMetadataMany } from '../../companion/metadata/read.ts';
import { writeMetadata } from '../../companion/metadata/write.ts';
import { extractXmpPacket } from '../../companion/metadata/xmp-packet.ts';
import { writeBenchSection } from './bench-doc.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const corpus = join(root, 'test/fixtures/exiftool');
const count = Number(process.env.BENCH_FILES ?? 400);
const results: Array<{ metric: string; value: string; target: string; ok: boolean | null }> = [];

function record(metric: string, value: string, target = '', ok: boolean | null = null) {
  results.push({ metric, value, target, ok });
  console.log(`${metric.padEnd(52)} ${value.padStart(14)}  ${target}${ok === null ? '' : ok ? '  ✓' : '  ✗'}`);
}

async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await run();
  return { seconds: (performance.now() - t0) / 1000, value };
}

/** Runs `task` over `items`, `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, task: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const at = next++;
        await task(items[at]!, at);
      }
    }),
  );
}

const loadBefore = loadavg()[0]!;
const work = await mkdtemp(join(tmpdir(), 'imagine-bench-metadata-'));
const processes = exiftoolPoolSize({ cpus: availableParallelism(), memoryBytes: totalmem() });
try {
  // Small JPEGs: one made and tagged, then copied with a different title each (so every read is a
  // different file) by exiftool in one batch.
  const dir = join(work, 'small');
  await mkdir(dir);
  const template = join(work, 'template.jpg');
  await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 90, g: 120, b: 150 }, noise: { type: 'gaussian', mean: 128, sigma: 30 } } })
    .jpeg({ quality: 85 })
    .toFile(template);
  await runExiftool([
    '-overwrite_original',
    '-EXIF:Make=Bench',
    '-EXIF:Model=Camera 1',
    '-EXIF:DateTimeOriginal=2024:05:01 12:30:00',
    '-EXIF:Artist=Ann Example',
    '-EXIF:Copyright=(c) 2024 Ann Example',
    '-IPTC:ObjectName=Harbour',
    '-IPTC:By-line=Ann Example',
    '-IPTC:Keywords=harbour',
    '-IPTC:Keywords=boats',
    '-IPTC:City=Kingston',
    '-IPTC:CopyrightNotice=(c) 2024 Ann Example',
    '-XMP-dc:Title=Harbour',
    '-XMP-dc:Creator=Ann Example',
    '-XMP-dc:Subject=harbour',
    '-XMP-dc:Subject=boats',
    '-XMP-photoshop:City=Kingston',
    '-XMP-xmpRights:UsageTerms=Editorial use only',
    '-XMP-xmpMM:DocumentID=xmp.did:bench',
    '-Photoshop:IPTCDigest=new',
    template,
  ]);
  const files = Array.from({ length: count }, (_, i) => join(dir, `photo-${String(i).padStart(4, '0')}.jpg`));
  await Promise.all(files.map((f) => copyFile(template, f)));
  const size = (await readFile(template)).length;

  // Warm the pool: every process spawned and its Perl modules loaded.
  getExiftool();
  await readMetadataMany(files.slice(0, processes * 4));

  const small = await timed(() => readMetadataMany(files));
  const rate = count / small.seconds;
  const wrong = small.value.filter((r) => r.metadata.title !== 'Harbour').length;
  if (wrong) throw new Error(`${wrong} small JPEGs read wrong`);
  record(`readMetadata, small JPEGs (${(size / 1024).toFixed(0)} KiB, ${count} files)`, `${rate.toFixed(0)} files/s`, '>= 150 files/s', rate >= 150);
  record('  per file, average', `${((small.seconds / count) * 1000).toFixed(1)} ms`);

  const one = await timed(async () => {
    for (const f of files.slice(0, 50)) await readMetadata(f);
  });
  record('readMetadata, one at a time (latency)', `${((one.seconds / 50) * 1000).toFixed(1)} ms`);

  const names = (await readdir(corpus)).map((n) => join(corpus, n));
  await readMetadataMany(names);
  const mixed = await timed(() => readMetadataMany([...names, ...names, ...names]));
  record(`readMetadata, ExifTool corpus (${names.length} mixed files x3)`, `${((names.length * 3) / mixed.seconds).toFixed(0)} files/s`);

  const packets = await timed(() => pool(files, processes * 4, (f) => extractXmpPacket(f)));
  record('extractXmpPacket, small JPEGs (no exiftool)', `${(count / packets.seconds).toFixed(0)} files/s`);

  const writes = files.slice(0, Math.min(100, count));
  const written = await timed(() => pool(writes, processes * 2, (f, i) => writeMetadata(f, { title: `Harbour ${i}`, keywords: ['harbour', 'boats', `n${i}`] })));
  record('writeMetadata (read, write, read back), small JPEGs', `${(writes.length / written.seconds).toFixed(0)} files/s`);

  const edited = await Promise.all(
    writes.slice(0, 40).map(async (f, i) => {
      const copy = join(work, `edited-${i}.jpg`);
      await copyFile(f, copy);
      await runExiftool(['-overwrite_original', '-IPTC:all=', '-XMP-xmpMM:InstanceID=xmp.iid:editor', copy]);
      return { original: f, copy };
    }),
  );
  const preserved = await timed(() => pool(edited, processes * 2, ({ original, copy }) => preserve(original, copy, { intended: ['title'] })));
  record('preserve (IPTC dropped by the editor), small JPEGs', `${((preserved.seconds / edited.length) * 1000).toFixed(0)} ms/file`);
} finally {
  await endExiftool();
  await rm(work, { recursive: true, force: true });
}

const date = new Date().toISOString().slice(0, 10);
const table = [
  `Measured ${date} on ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, node ${process.version}, ` +
    `exiftool pool of ${processes} process${processes === 1 ? '' : 'es'}; command \`npm run bench:metadata\`. ` +
    `Load average (1 min) ${loadBefore.toFixed(1)} before the run and ${loadavg()[0]!.toFixed(1)} after it.`,
  '',
  '| measure | result | target |',
  '| --- | --- | --- |',
  ...results.map((r) => `| ${r.metric} | ${r.value} | ${r.target}${r.ok === null ? '' : r.ok ? ' ✓' : ' ✗'} |`),
].join('\n');
await writeBenchSection('metadata', 'Metadata engine', table);
console.log('\nwritten to docs/benchmarks.md');
if (results.some((r) => r.ok === false)) process.exitCode = 1;
