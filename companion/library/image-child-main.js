// The child process of companion/library/image-child.ts: runs one sharp pipeline, described
// as JSON on stdin, and exits. Plain JavaScript importing only sharp, so it starts in about a
// tenth of a second (no TypeScript loader). It answers one JSON line on stdout:
// {"ok":true} or {"ok":false,"message":"..."} (sharp's own error message).
import sharp from 'sharp';

/** The sharp methods a job may call, nothing else. */
const METHODS = new Set(['rotate', 'autoOrient', 'resize', 'toColourspace', 'flatten', 'withIccProfile', 'jpeg', 'png', 'webp', 'tiff']);

function answer(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  text += chunk;
});
process.stdin.on('end', async () => {
  let job;
  try {
    job = JSON.parse(text);
    if (typeof job.input !== 'string' || typeof job.output !== 'string' || !Array.isArray(job.ops)) throw new Error('malformed job');
    for (const [method] of job.ops) if (!METHODS.has(method)) throw new Error(`method "${method}" is not allowed`);
  } catch (error) {
    answer({ ok: false, message: `bad job: ${error.message}` });
    return;
  }
  try {
    let image = sharp(job.input, job.inputOptions ?? {});
    for (const [method, ...args] of job.ops) image = image[method](...args);
    await image.toFile(job.output);
    answer({ ok: true });
  } catch (error) {
    answer({ ok: false, message: String(error?.message ?? error) });
  }
});
