import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadVectors } from '../test/vectors/load.ts';
import { isProtocolError } from './errors.ts';
import {
  ensureValidOrigin,
  isLoopbackHost,
  isValidOrigin,
  parseOrigin,
  validateOrigin,
  type OriginOptions,
} from './origin.ts';

interface Vectors {
  valid: { input: string; options?: OriginOptions; expect: string }[];
  invalid: { input: string; options?: OriginOptions; why: string }[];
}

const vectors = loadVectors<Vectors>('origin');

const label = (s: string, options?: OriginOptions) =>
  `${JSON.stringify(s)}${options ? ` with ${JSON.stringify(options)}` : ''}`;

function messageOf(input: unknown, options?: OriginOptions): string {
  try {
    parseOrigin(input as string, options);
  } catch (error) {
    assert.ok(isProtocolError(error, 'ERR_ORIGIN_INVALID'), `expected ERR_ORIGIN_INVALID, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`expected ${label(String(input), options)} to be invalid`);
}

describe('origin vectors: valid', () => {
  for (const { input, options, expect } of vectors.valid) {
    test(label(input, options), () => {
      assert.equal(parseOrigin(input, options), expect);
      assert.deepEqual(validateOrigin(input, options), { ok: true, value: expect });
      assert.equal(isValidOrigin(input, options), true);
      assert.doesNotThrow(() => ensureValidOrigin(input, options));
      assert.equal(parseOrigin(expect, options), expect, 'the normal form is its own normal form');
      assert.equal(new URL(input).origin, expect, 'agrees with the WHATWG URL parser');
    });
  }
});

describe('origin vectors: invalid', () => {
  for (const { input, options, why } of vectors.invalid) {
    test(`${label(input, options)} (${why})`, () => {
      assert.throws(() => parseOrigin(input, options), (e: unknown) => isProtocolError(e, 'ERR_ORIGIN_INVALID'));
      assert.throws(() => ensureValidOrigin(input, options), (e: unknown) => isProtocolError(e, 'ERR_ORIGIN_INVALID'));
      const result = validateOrigin(input, options);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.error.code, 'ERR_ORIGIN_INVALID');
      assert.equal(isValidOrigin(input, options), false);
    });
  }
});

describe('origins', () => {
  test('plain http only for loopback unless allowInsecure', () => {
    assert.match(messageOf('http://studio.example'), /plain http is only allowed for loopback hosts/);
    assert.equal(parseOrigin('http://studio.example', { allowInsecure: true }), 'http://studio.example');
    assert.equal(parseOrigin('http://localhost:7420', { allowInsecure: false }), 'http://localhost:7420');
  });

  test('error messages say what is wrong', () => {
    assert.match(messageOf('ftp://a.example'), /scheme "ftp" is not allowed/);
    assert.match(messageOf('https://a.example/x'), /a path \("\/x"\) is not allowed/);
    assert.match(messageOf('https://a.example?x'), /query/);
    assert.match(messageOf('https://a.example#x'), /fragment/);
    assert.match(messageOf('https://u@a.example'), /user information/);
    assert.match(messageOf('https://a.example:65536'), /port 65536 is out of range/);
    assert.match(messageOf('https://a.example\\'), /backslash/);
    assert.match(messageOf(' https://a.example'), /space \(U\+0020\) at position 0/);
    assert.match(messageOf('https://1.2.3'), /not a dotted IPv4 address/);
    assert.match(messageOf(`https://${'a'.repeat(300)}`), /308 characters long; at most 300/);
    assert.match(messageOf(7420), /expected a string, got number/);
    assert.match(messageOf(''), /"": is empty/);
  });

  test('IPv6 hosts come back in the same canonical form as WHATWG URL writes them', () => {
    for (const address of [
      '::', '::1', '1::', '1:0:0:2:0:0:0:3', '1:0:0:2:0:0:3:4', '1:0:2:3:4:5:6:7', '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8', 'ABCD:EF01:0000:0000:0000:0000:0000:0001', '::ffff:1.2.3.4', '64:ff9b::192.0.2.33',
      '0:0:0:0:0:0:0:0', 'fe80::0001:0:0:0:2',
    ]) {
      const input = `https://[${address}]`;
      assert.equal(parseOrigin(input), new URL(input).origin, address);
    }
  });

  test('isLoopbackHost', () => {
    for (const host of ['localhost', 'LocalHost', '127.0.0.1', '127.1.2.3', '[::1]', '::1', '[0:0:0:0:0:0:0:1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['', 'localhost.example', 'a.localhost', '128.0.0.1', '10.0.0.1', '0.0.0.0', '[::]', '[::2]', '[::ffff:10.0.0.1]', '127.0.0.256', '2130706433', '0x7f.1', '[::1', 'studio.example']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});
