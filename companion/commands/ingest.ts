import cliProgress from 'cli-progress';
import { loadConfig } from '../config.ts';
import { endExiftool } from '../metadata/exiftool.ts';
import { ingestFiles, listFiles } from '../library/ingest.ts';
import { libraryServicesOptions, openLibraryServices } from '../library/services.ts';

export interface IngestFlags {
  data?: string;
  collection?: string;
  public?: boolean;
  json?: boolean;
}

export async function runIngest(paths: string[], flags: IngestFlags): Promise<void> {
  const config = loadConfig({ env: process.env, flags: { dataDir: flags.data } });
  const files = await listFiles(paths);
  const services = await openLibraryServices(libraryServicesOptions(config, 'imagine ingest'));
  const showBar = !flags.json && process.stderr.isTTY;
  const bar = new cliProgress.SingleBar(
    {
      format: 'ingest [{bar}] {value}/{total} files | {rate} files/s | ETA {eta_formatted} | {file}',
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  if (showBar) bar.start(files.length, 0, { rate: '0.0', file: '' });
  try {
    const summary = await ingestFiles(services.library, files, {
      collection: flags.collection,
      public: flags.public,
      onProgress: ({ done, last }) => {
        const rate = (done / ((performance.now() - started) / 1000)).toFixed(1);
        if (showBar) bar.update(done, { rate, file: last.path.split('/').pop() });
        if (last.status === 'failed' && !flags.json) {
          if (showBar) bar.stop();
          process.stderr.write(`skipped ${last.path}: ${last.error?.message} [${last.error?.code}]\n`);
          if (showBar) bar.start(files.length, done, { rate, file: '' });
        }
      },
    });
    if (showBar) bar.stop();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      process.stdout.write(
        `${summary.created} added, ${summary.duplicates} duplicates skipped, ${summary.failed} failed ` +
          `in ${summary.seconds.toFixed(1)} s (${(files.length / Math.max(summary.seconds, 0.001)).toFixed(1)} files/s)\n`,
      );
    }
    if (summary.failed > 0 && summary.created + summary.duplicates === 0) process.exitCode = 1;
  } finally {
    if (showBar) bar.stop();
    await services.close();
    await endExiftool();
  }
}
