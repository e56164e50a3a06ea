// The workflow policy: parsing, every rule of checkPolicy, the capabilities entry, and a
// library server that publishes (and refuses to start with a bad) `<data>/workflow-policy.json`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { libraryServicesOptions, openLibraryServices } from '../library/services.ts';
import { endExiftool } from '../metadata/exiftool.ts';
import { checkPolicy, ensurePolicy, parseWorkflowPolicy, policyFromCapabilities, readPolicyFacts, WORKFLOW_POLICY_EXTENSION, type PolicyFacts } from './policy.ts';

const facts = { filename: 'harbour.jpg', mediaType: 'image/jpeg', metadata: { creator: ['Ada'], title: { 'x-default': '' } }, colourProfile: 'sRGB IEC61966-2.1' } as unknown as PolicyFacts;

describe('parseWorkflowPolicy', () => {
  test('accepts every member and unknown ones', () => {
    const policy = parseWorkflowPolicy({ requiredFields: ['creator'], colourProfile: 'sRGB', filenamePattern: '^a', future: 1 });
    assert.equal(policy.colourProfile, 'sRGB');
  });
  test('refuses wrong types and patterns that do not compile', () => {
    assert.throws(() => parseWorkflowPolicy({ requiredFields: 'creator' }), { code: 'ERR_VALIDATION' });
    assert.throws(() => parseWorkflowPolicy({ filenamePattern: '([' }), { code: 'ERR_VALIDATION' });
    assert.throws(() => parseWorkflowPolicy([]), { code: 'ERR_VALIDATION' });
  });
});

describe('checkPolicy', () => {
  test('an empty policy allows everything', () => {
    assert.deepEqual(checkPolicy({}, facts), []);
  });
  test('required fields: empty strings, lists and language alternatives count as missing', () => {
    const issues = checkPolicy({ requiredFields: ['creator', 'title', 'headline'] }, facts);
    assert.deepEqual(issues.map((i) => [i.rule, i.field]), [['requiredFields', 'title'], ['requiredFields', 'headline']]);
  });
  test('media types, colour profile (case-insensitive) and file name pattern', () => {
    assert.deepEqual(checkPolicy({ allowedMediaTypes: ['IMAGE/JPEG'] }, facts), []);
    assert.equal(checkPolicy({ allowedMediaTypes: ['image/tiff'] }, facts)[0]?.rule, 'allowedMediaTypes');
    assert.equal(checkPolicy({ allowedMediaTypes: ['image/tiff'] }, { ...facts, mediaType: undefined }).length, 1);
    assert.deepEqual(checkPolicy({ colourProfile: 'srgb iec61966-2.1 ' }, facts), []);
    assert.match(checkPolicy({ colourProfile: 'Adobe RGB (1998)' }, { ...facts, colourProfile: undefined })[0]!.message, /has none/);
    assert.deepEqual(checkPolicy({ filenamePattern: '^[a-z]+\\.jpg$' }, facts), []);
    assert.equal(checkPolicy({ filenamePattern: '^[a-z]+\\.tif$' }, facts)[0]?.rule, 'filenamePattern');
  });
  test('ensurePolicy throws ERR_POLICY_VIOLATION with every issue', () => {
    assert.throws(
      () => ensurePolicy({ requiredFields: ['headline'], filenamePattern: '^x' }, facts),
      (error: { code: string; extensions: { issues: unknown[] } }) => error.code === 'ERR_POLICY_VIOLATION' && error.extensions.issues.length === 2,
    );
  });
});

describe('readPolicyFacts', () => {
  test('reads the media type, the metadata and the ICC profile of a real file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imagine-policy-'));
    try {
      const path = join(dir, 'a.jpg');
      await sharp({ create: { width: 16, height: 16, channels: 3, background: '#888' } }).withIccProfile('srgb').jpeg().toFile(path);
      const read = await readPolicyFacts(path, 'a.jpg');
      assert.equal(read.mediaType, 'image/jpeg');
      assert.match(read.colourProfile ?? '', /srgb/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await endExiftool();
    }
  });
});

describe('the server side', () => {
  async function serve(policy: string | undefined) {
    const dataDir = mkdtempSync(join(tmpdir(), 'imagine-policy-server-'));
    if (policy !== undefined) writeFileSync(join(dataDir, 'workflow-policy.json'), policy);
    const config = loadConfig({ flags: { dataDir, role: 'library' }, readFile: false });
    const services = await openLibraryServices(libraryServicesOptions(config, 'policy test'));
    const close = async () => {
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    };
    try {
      return { app: await buildApp(config, { services, logger: false }), close, dataDir };
    } catch (error) {
      await close();
      throw error;
    }
  }

  test('no file: no extension, and {} at {api}/workflow-policy', async () => {
    const { app, close } = await serve(undefined);
    try {
      const caps = (await app.inject('/.well-known/imagine/capabilities')).json();
      assert.deepEqual(caps.extensions, []);
      assert.deepEqual(policyFromCapabilities(caps), {});
      assert.deepEqual((await app.inject('/api/v1/workflow-policy')).json(), {});
    } finally {
      await app.close();
      await close();
    }
  });

  test('a policy file is published, and its spec served', async () => {
    const { app, close, dataDir } = await serve(JSON.stringify({ requiredFields: ['creator'] }));
    try {
      const caps = (await app.inject('/.well-known/imagine/capabilities')).json();
      const extension = caps.extensions.find((e: { name: string }) => e.name === WORKFLOW_POLICY_EXTENSION);
      assert.equal(extension.version, '1');
      assert.deepEqual(policyFromCapabilities(caps), { requiredFields: ['creator'] });
      const spec = await app.inject(new URL(extension.spec).pathname);
      assert.equal(spec.statusCode, 200);
      assert.match(spec.body, /org\.imagine\.workflow-policy/);
      // A bad change keeps the last good policy.
      await new Promise((r) => setTimeout(r, 20));
      writeFileSync(join(dataDir, 'workflow-policy.json'), '{ nope');
      assert.deepEqual((await app.inject('/api/v1/workflow-policy')).json(), { requiredFields: ['creator'] });
    } finally {
      await app.close();
      await close();
    }
  });

  test('a bad policy file stops the server at start', async () => {
    await assert.rejects(serve(JSON.stringify({ filenamePattern: '((' })), { code: 'ERR_CONFIG_INVALID' });
  });
});
