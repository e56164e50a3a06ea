// The OpenAPI document served at /openapi.json: valid OpenAPI 3.1 (checked by
// @readme/openapi-parser), with the discovery routes, and a response schema on every route.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileErrors, validate } from '@readme/openapi-parser';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../companion/app.ts';
import { loadConfig } from '../companion/config.ts';
import { WELL_KNOWN_PATH } from '../shared/discovery.ts';

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

const dataDir = mkdtempSync(join(tmpdir(), 'imagine-openapi-'));
let app: FastifyInstance;
let document: OpenApiDocument;
let contentType: string | undefined;

before(async () => {
  app = await buildApp(loadConfig({ flags: { dataDir }, readFile: false }), { logger: false });
  await app.ready();
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(response.statusCode, 200, response.body);
  contentType = response.headers['content-type'] as string | undefined;
  document = response.json();
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function operations(): { path: string; method: string; operation: Operation }[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => ({ path, method, operation })),
  );
}

describe('/openapi.json', () => {
  test('is JSON declaring OpenAPI 3.1', () => {
    assert.match(String(contentType), /^application\/json/);
    assert.equal(document.openapi, '3.1.0');
    assert.equal(document.info.title, 'Imagine protocol');
  });

  test('is a valid OpenAPI document', async () => {
    // validate() dereferences in place: give it a copy.
    const result = await validate(structuredClone(document) as never);
    assert.ok(result.valid, result.valid ? '' : compileErrors(result));
    assert.deepEqual(result.warnings, []);
  });

  test('has the discovery routes, each answering a JSON schema', () => {
    for (const path of [WELL_KNOWN_PATH, `${WELL_KNOWN_PATH}/capabilities`, `${WELL_KNOWN_PATH}/metadata-profile`]) {
      const schema = document.paths[path]?.get?.responses?.['200']?.content?.['application/json']?.schema;
      assert.ok(schema, `GET ${path} has no 200 application/json schema`);
    }
  });

  test('does not list itself (hidden) and lists nothing twice', () => {
    assert.equal(document.paths['/openapi.json'], undefined);
    const ids = operations().map(({ path, method }) => `${method} ${path}`);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('every route has at least one response schema and a success response', () => {
    const missing: string[] = [];
    const noSuccess: string[] = [];
    for (const { path, method, operation } of operations()) {
      const responses = Object.entries(operation.responses ?? {});
      const withSchema = responses.filter(([, r]) => Object.values(r.content ?? {}).some((c) => c.schema));
      if (withSchema.length === 0) missing.push(`${method.toUpperCase()} ${path}`);
      if (!responses.some(([status]) => /^2\d\d$/.test(status))) noSuccess.push(`${method.toUpperCase()} ${path}`);
    }
    assert.deepEqual(missing, [], 'routes without a response schema');
    assert.deepEqual(noSuccess, [], 'routes without a 2xx response');
    assert.ok(operations().length >= 3);
  });
});
