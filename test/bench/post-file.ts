/**
 * Uploads a file the way `curl -T` would: node:http, the file piped from disk in 1 MiB reads,
 * a Content-Length, no web streams. Benchmarks time uploads with it so that the client is not
 * what limits them (fetch's stream conversions cost a core's worth of work at these rates on a
 * 2-core machine).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request } from 'node:http';
import { pipeline } from 'node:stream/promises';

export interface PostedFile {
  status: number;
  etag?: string;
  /** The answer's body, as text. */
  body: string;
}

export async function postFile(url: string, path: string, headers: Record<string, string>): Promise<PostedFile> {
  const size = (await stat(path)).size;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(size) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), req).catch(reject);
  });
}
