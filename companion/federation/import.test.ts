import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { isProtocolError } from '../../shared/errors.ts';
import { downloadVerified } from './import.ts';

const BYTES = Buffer.from('the original bytes of a picture, as its server announced them');
const SHA = createHash('sha256').update(BYTES).digest('hex');
let app: FastifyInstance;
let base = '';
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagine-import-'));
  app = Fastify();
  app.get('/good', async (_r, reply) => reply.send(BYTES));
  app.get('/flipped', async (_r, reply) => {
    const copy = Buffer.from(BYTES);
    copy[3] = copy[3]! ^ 1;
    return reply.send(copy);
  });
  app.get('/longer', async (_r, reply) => reply.send(Buffer.concat([BYTES, Buffer.from('more')])));
  app.get('/shorter', async (_r, reply) => reply.send(BYTES.subarray(0, 10)));
  app.get('/missing', async (_r, reply) => reply.code(404).send({}));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

const codeOf = async (path: string): Promise<string> => {
  try {
    await downloadVerified(`${base}${path}`, join(dir, path.slice(1)), BYTES.length, SHA, 5_000);
    return 'ok';
  } catch (error) {
    if (isProtocolError(error)) return error.code;
    throw error;
  }
};

test('the bytes announced arrive whole', async () => {
  assert.equal(await codeOf('/good'), 'ok');
  assert.deepEqual(await readFile(join(dir, 'good')), BYTES);
});

test('a flipped byte, extra bytes or missing bytes are refused as a digest mismatch', async () => {
  assert.equal(await codeOf('/flipped'), 'ERR_DIGEST_MISMATCH');
  assert.equal(await codeOf('/longer'), 'ERR_DIGEST_MISMATCH');
  assert.equal(await codeOf('/shorter'), 'ERR_DIGEST_MISMATCH');
});

test('an error answer or an unreachable server is reported, not stored', async () => {
  assert.equal(await codeOf('/missing'), 'ERR_UPSTREAM_ERROR');
  const refused = await downloadVerified('http://127.0.0.1:9/x', join(dir, 'x'), 1, SHA, 2_000).catch((e: unknown) => e);
  assert.ok(isProtocolError(refused, 'ERR_UPSTREAM_UNREACHABLE'));
});
