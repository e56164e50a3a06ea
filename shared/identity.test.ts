import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadVectors, vectorLabel } from '../test/vectors/load.ts';
import { isProtocolError } from './errors.ts';
import {
  ensureValidIdentity,
  formatIdentity,
  isValidIdentity,
  parseIdentity,
  validateIdentity,
  type Identity,
} from './identity.ts';

interface Vectors {
  valid: { input: string; expect: Identity; normalized?: string }[];
  invalid: { input: string; why: string }[];
}

const vectors = loadVectors<Vectors>('identity');

const label = vectorLabel;

function messageOf(input: unknown): string {
  try {
    parseIdentity(input as string);
  } catch (error) {
    assert.ok(isProtocolError(error, 'ERR_IDENTITY_INVALID'), `expected ERR_IDENTITY_INVALID, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`expected ${label(String(input))} to be invalid`);
}

describe('identity vectors: valid', () => {
  for (const { input, expect, normalized = input } of vectors.valid) {
    test(label(input), () => {
      assert.deepEqual(parseIdentity(input), expect);
      assert.deepEqual(validateIdentity(input), { ok: true, value: expect });
      assert.equal(isValidIdentity(input), true);
      assert.doesNotThrow(() => ensureValidIdentity(input));
      assert.equal(formatIdentity(expect), normalized);
      assert.equal(formatIdentity(parseIdentity(normalized)), normalized);
    });
  }
});

describe('identity vectors: invalid', () => {
  for (const { input, why } of vectors.invalid) {
    test(`${label(input)} (${why})`, () => {
      assert.throws(() => parseIdentity(input), (e: unknown) => isProtocolError(e, 'ERR_IDENTITY_INVALID'));
      assert.throws(() => ensureValidIdentity(input), (e: unknown) => isProtocolError(e, 'ERR_IDENTITY_INVALID'));
      const result = validateIdentity(input);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.error.code, 'ERR_IDENTITY_INVALID');
      assert.equal(isValidIdentity(input), false);
    });
  }
});

describe('identities', () => {
  test('split at the last @', () => {
    assert.match(messageOf('a@b@c.example'), /name contains "@"/);
  });

  test('name and domain are lowercased', () => {
    assert.deepEqual(parseIdentity('Alice@Studio.Example:7420'), { name: 'alice', domain: 'studio.example:7420' });
    assert.equal(formatIdentity({ name: 'ALICE', domain: 'Studio.Example' }), 'alice@studio.example');
  });

  test('error messages say what is wrong', () => {
    assert.match(messageOf('alice'), /no '@' found/);
    assert.match(messageOf('@a.example'), /name \(before '@'\) is empty/);
    assert.match(messageOf('alice@'), /domain \(after '@'\) is empty/);
    assert.match(messageOf('.alice@a.example'), /must start with a letter or a digit/);
    assert.match(messageOf('alice+x@a.example'), /name contains "\+"/);
    assert.match(messageOf(`${'n'.repeat(65)}@a.example`), /name is 65 characters long; at most 64/);
    assert.match(messageOf('alice@a_b.example'), /domain: host "a_b.example" contains "_"/);
    assert.match(messageOf('alice@a.example:99999'), /domain: port 99999 is out of range/);
    assert.match(messageOf('alice@a.example '), /space \(U\+0020\)/);
    assert.match(messageOf(`a@${'b'.repeat(400)}`), /402 characters long; at most 320/);
    assert.match(messageOf(null), /expected a string, got null/);
    assert.match(messageOf(''), /"": is empty/);
  });

  test('formatIdentity rejects parts that would not round-trip', () => {
    for (const bad of [
      { name: 'a@b', domain: 'c.example' },
      { name: 'a', domain: 'b@c.example' },
      { name: '', domain: 'a.example' },
      { name: 'a', domain: 'a.example/x' },
    ]) {
      assert.throws(() => formatIdentity(bad), (e: unknown) => isProtocolError(e, 'ERR_IDENTITY_INVALID'), JSON.stringify(bad));
    }
  });
});
