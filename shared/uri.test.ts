import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadVectors, vectorLabel } from '../test/vectors/load.ts';
import { isProtocolError } from './errors.ts';
import {
  ensureValidUri,
  formatUri,
  isKnownUriType,
  isValidUri,
  parseUri,
  uriAuthorityFromOrigin,
  validateUri,
  type ImagineUri,
} from './uri.ts';

interface Vectors {
  valid: { input: string; expect: ImagineUri; normalized?: string }[];
  invalid: { input: string; why: string }[];
}

const vectors = loadVectors<Vectors>('uri');

const label = vectorLabel;

function messageOf(input: unknown): string {
  try {
    parseUri(input as string);
  } catch (error) {
    assert.ok(isProtocolError(error, 'ERR_URI_INVALID'), `expected ERR_URI_INVALID, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`expected ${label(String(input))} to be invalid`);
}

describe('imagine:// URI vectors: valid', () => {
  for (const { input, expect, normalized = input } of vectors.valid) {
    test(label(input), () => {
      assert.deepEqual(parseUri(input), expect);
      assert.deepEqual(validateUri(input), { ok: true, value: expect });
      assert.equal(isValidUri(input), true);
      assert.doesNotThrow(() => ensureValidUri(input));
      assert.equal(formatUri(expect), normalized);
      assert.equal(formatUri(parseUri(normalized)), normalized);
      const { authority: _authority, ...byHost } = expect;
      assert.equal(formatUri(byHost), normalized);
    });
  }
});

describe('imagine:// URI vectors: invalid', () => {
  for (const { input, why } of vectors.invalid) {
    test(`${label(input)} (${why})`, () => {
      assert.throws(() => parseUri(input), (e: unknown) => isProtocolError(e, 'ERR_URI_INVALID'));
      assert.throws(() => ensureValidUri(input), (e: unknown) => isProtocolError(e, 'ERR_URI_INVALID'));
      const result = validateUri(input);
      assert.equal(result.ok, false);
      if (!result.ok) assert.equal(result.error.code, 'ERR_URI_INVALID');
      assert.equal(isValidUri(input), false);
    });
  }
});

describe('imagine:// URIs', () => {
  test('error messages say what is wrong', () => {
    assert.match(messageOf('imagine://a.example/images/x/'), /must not end with '\/'/);
    assert.match(messageOf('imagine://a.example/images/x?y'), /query/);
    assert.match(messageOf('imagine://a.example/images/x#y'), /fragment/);
    assert.match(messageOf('imagine://a.example/images/x%41'), /percent-encoding/);
    assert.match(messageOf('imagine://a.example:0/images/x'), /port 0 is out of range 1-65535/);
    assert.match(messageOf('imagine://a.example:080/images/x'), /leading zero/);
    assert.match(messageOf('imagine://a.example/videos/x'), /unknown type "videos"; expected one of images, collections/);
    assert.match(messageOf('imagine://a.example/images/..'), /id must not be "\.\."/);
    assert.match(messageOf('imagine://a.example/images/a b'), /space \(U\+0020\) at position 28/);
    assert.match(messageOf('imagine://a.example/images/a\u0000'), /control character \(U\+0000\)/);
    assert.match(messageOf('imagine://a.example/images/\u{1F600}'), /non-ASCII character \(U\+1F600\)/);
    assert.match(messageOf('IMAGINE://a.example/images/x'), /scheme must be lowercase/);
    assert.match(messageOf('imagine://u@a.example/images/x'), /user information/);
    assert.match(messageOf('imagine://::1/images/x'), /must be enclosed in brackets/);
    assert.match(messageOf(`imagine://a.example/images/${'a'.repeat(2100)}`), /2127 characters long; at most 2048/);
    assert.match(messageOf(`imagine://a.example/images/${'a'.repeat(129)}`), /id is 129 characters long; at most 128/);
    assert.match(messageOf(42), /expected a string, got number/);
    assert.match(messageOf(''), /"": is empty/);
  });

  test('long inputs are cut short in messages', () => {
    const message = messageOf(`imagine://a.example/images/${'a'.repeat(3000)}`);
    assert.ok(message.length < 200, message);
  });

  test('host is lowercased, id and version keep their case', () => {
    const uri = parseUri('imagine://Studio.Example:7420/images/AbC@V2');
    assert.equal(uri.host, 'studio.example');
    assert.equal(uri.authority, 'studio.example:7420');
    assert.equal(uri.id, 'AbC');
    assert.equal(uri.version, 'V2');
    assert.equal(formatUri(uri), 'imagine://studio.example:7420/images/AbC@V2');
  });

  test('a parsed URI has no port or version key when there is none', () => {
    const uri = parseUri('imagine://a.example/images/x');
    assert.equal('port' in uri, false);
    assert.equal('version' in uri, false);
  });

  test('formatUri builds from host and port, brackets bare IPv6 and rejects bad parts', () => {
    assert.equal(formatUri({ host: 'A.Example', port: 7420, type: 'collections', id: 'c1' }), 'imagine://a.example:7420/collections/c1');
    assert.equal(formatUri({ host: '::1', type: 'images', id: 'x' }), 'imagine://[::1]/images/x');
    assert.equal(formatUri({ authority: 'a.example', type: 'images', id: 'x', version: 'v1' }), 'imagine://a.example/images/x@v1');
    for (const bad of [
      { host: 'a.example', type: 'images' as const, id: 'a/b' },
      { host: 'a.example', type: 'images' as const, id: 'x', version: '' },
      { host: 'a.example', port: 0, type: 'images' as const, id: 'x' },
      { host: 'a.example', type: 'videos' as 'images', id: 'x' },
      { authority: 'u@a.example', type: 'images' as const, id: 'x' },
    ]) {
      assert.throws(() => formatUri(bad), (e: unknown) => isProtocolError(e, 'ERR_URI_INVALID'), JSON.stringify(bad));
    }
  });

  test('isKnownUriType', () => {
    assert.equal(isKnownUriType('images'), true);
    assert.equal(isKnownUriType('collections'), true);
    assert.equal(isKnownUriType('Images'), false);
    assert.equal(isKnownUriType('users'), false);
    assert.equal(isKnownUriType(undefined), false);
  });

  test('validate, isValid and ensureValid take any value', () => {
    for (const value of [undefined, null, 42, {}, ['imagine://a.example/images/x']]) {
      assert.equal(isValidUri(value), false);
      const result = validateUri(value);
      assert.equal(result.ok, false);
      assert.throws(() => ensureValidUri(value), (e: unknown) => isProtocolError(e, 'ERR_URI_INVALID'));
    }
  });

  test('uriAuthorityFromOrigin drops default ports only', () => {
    assert.equal(uriAuthorityFromOrigin('https://a.example'), 'a.example');
    assert.equal(uriAuthorityFromOrigin('https://A.Example:443/'), 'a.example');
    assert.equal(uriAuthorityFromOrigin('http://127.0.0.1:7420'), '127.0.0.1:7420');
    assert.equal(uriAuthorityFromOrigin('http://localhost:80'), 'localhost');
    assert.equal(uriAuthorityFromOrigin('https://a.example:80'), 'a.example:80');
    assert.equal(uriAuthorityFromOrigin('http://a.example:443'), 'a.example:443');
    assert.equal(uriAuthorityFromOrigin('http://[::1]:7420'), '[::1]:7420');
    assert.throws(() => uriAuthorityFromOrigin('https://a.example/path'), (e: unknown) => isProtocolError(e, 'ERR_ORIGIN_INVALID'));
    const authority = uriAuthorityFromOrigin('https://studio.example:8443');
    assert.equal(formatUri({ authority, type: 'images', id: 'x' }), 'imagine://studio.example:8443/images/x');
  });
});
