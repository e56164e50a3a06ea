import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadVectors, vectorLabel } from '../test/vectors/load.ts';
import { isProtocolError } from './errors.ts';
import {
  ensureValidExtensionName,
  formatExtensionName,
  isReservedExtensionName,
  isValidExtensionName,
  parseExtensionName,
  validateExtensionName,
  type ExtensionName,
} from './extension-name.ts';

interface Vectors {
  valid: { input: string; expect: ExtensionName; reserved?: boolean }[];
  invalid: { input: string; why: string }[];
}

const vectors = loadVectors<Vectors>('extension-name');

const label = vectorLabel;

function messageOf(input: unknown): string {
  try {
    parseExtensionName(input as string);
  } catch (error) {
    assert.ok(isProtocolError(error, 'ERR_EXTENSION_NAME_INVALID'), `expected ERR_EXTENSION_NAME_INVALID, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`expected ${label(String(input))} to be invalid`);
}

describe('extension name vectors: valid', () => {
  for (const { input, expect, reserved } of vectors.valid) {
    test(label(input), () => {
      assert.deepEqual(parseExtensionName(input), expect);
      assert.deepEqual(validateExtensionName(input), { ok: true, value: expect });
      assert.equal(isValidExtensionName(input), true);
      assert.doesNotThrow(() => ensureValidExtensionName(input));
      assert.equal(formatExtensionName(expect), expect.full);
      assert.deepEqual(parseExtensionName(expect.full), expect);
      if (reserved !== undefined) assert.equal(isReservedExtensionName(input), reserved);
    });
  }
});

describe('extension name vectors: invalid', () => {
  for (const { input, why } of vectors.invalid) {
    test(`${label(input)} (${why})`, () => {
      assert.throws(() => parseExtensionName(input), (e: unknown) => isProtocolError(e, 'ERR_EXTENSION_NAME_INVALID'));
      assert.throws(() => ensureValidExtensionName(input), (e: unknown) => isProtocolError(e, 'ERR_EXTENSION_NAME_INVALID'));
      const result = validateExtensionName(input);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.error.code, 'ERR_EXTENSION_NAME_INVALID');
      assert.equal(isValidExtensionName(input), false);
      assert.equal(isReservedExtensionName(input), false);
    });
  }
});

describe('extension names', () => {
  test('org.imagine is reserved, whatever the case', () => {
    assert.equal(isReservedExtensionName('org.imagine.workflow-policy'), true);
    assert.equal(isReservedExtensionName('ORG.Imagine.x'), true);
    assert.equal(isReservedExtensionName('org.imagine.labs.x'), true);
    assert.equal(isReservedExtensionName('org.imagines.x'), false);
    assert.equal(isReservedExtensionName('com.example.ai-tagging'), false);
    assert.equal(isReservedExtensionName('org.imagine'), false);
  });

  test('the domain part is lowercased, the name is not', () => {
    assert.equal(parseExtensionName('COM.Example.AiTagging').full, 'com.example.AiTagging');
    assert.equal(formatExtensionName({ authority: 'Com.Example', name: 'ai-tagging' }), 'com.example.ai-tagging');
  });

  test('error messages say what is wrong', () => {
    assert.match(messageOf('example.com'), /has 2 segments; at least 3 are needed/);
    assert.match(messageOf('com..x'), /empty segment/);
    assert.match(messageOf('com.example.'), /empty segment/);
    assert.match(messageOf('-com.example.x'), /must not start or end with '-'/);
    assert.match(messageOf('1com.example.x'), /first segment must not start with a digit/);
    assert.match(messageOf('com.exa_mple.x'), /domain part contains "_"/);
    assert.match(messageOf('com.example.1x'), /name segment "1x" must start with a letter/);
    assert.match(messageOf('com.example.a_b'), /name segment contains "_"/);
    assert.match(messageOf(`com.example.${'n'.repeat(64)}`), /name segment is 64 characters long; at most 63/);
    assert.match(messageOf(`com.${'a'.repeat(320)}.x`), /326 characters long; at most 317/);
    assert.match(messageOf(undefined), /expected a string, got undefined/);
    assert.match(messageOf(''), /"": is empty/);
  });
});
