// Web source identifiers and URLs against the shared vectors, and the checks of the config.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../shared/errors.ts';
import { loadVectors } from '../../test/vectors/load.ts';
import { loadConfig } from '../config.ts';
import { isWebIdentifier, validateIiifPath } from './parse.ts';
import { compileWebSources, decodeBase64Url, encodeBase64Url, resolveWebUrl, validateWebSources, type WebSourceConfig } from './web-source.ts';

interface Vectors {
  sources: WebSourceConfig[];
  identifiers: {
    valid: Array<{ title: string; path: string; kind?: string; identifier: Record<string, string> }>;
    invalid: Array<{ title: string; path: string; status: number }>;
  };
  urls: {
    valid: Array<{ title: string; source: string; name: string; url: string }>;
    invalid: Array<{ title: string; source: string; name: string; status: number }>;
  };
}
const vectors = loadVectors<Vectors>('iiif-web-sources');
const sources = compileWebSources(vectors.sources);

describe('web identifiers: valid', () => {
  for (const v of vectors.identifiers.valid) {
    test(v.title, () => {
      for (const version of [3, 2] as const) {
        const parsed = validateIiifPath(version, v.path);
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
        assert.equal(parsed.value.kind, v.kind ?? (v.path.endsWith('/info.json') ? 'info' : 'image'));
        assert.deepEqual(parsed.value.identifier, v.identifier);
        assert.equal(isWebIdentifier(parsed.value.identifier), 'source' in v.identifier);
      }
    });
  }
});

describe('web identifiers: invalid', () => {
  for (const v of vectors.identifiers.invalid) {
    test(`${v.title} → ${v.status}`, () => {
      const parsed = validateIiifPath(3, v.path);
      assert.ok(!parsed.ok, 'is refused');
      assert.equal(parsed.error.status, v.status, parsed.error.message);
    });
  }
});

describe('web source URLs', () => {
  for (const v of vectors.urls.valid) {
    test(v.title, () => {
      const resolved = resolveWebUrl(sources, { source: v.source, name: v.name });
      assert.ok(resolved.ok, resolved.ok ? '' : resolved.error.message);
      assert.equal(resolved.value.href, v.url);
    });
  }
  for (const v of vectors.urls.invalid) {
    test(`${v.title} → ${v.status}`, () => {
      const resolved = resolveWebUrl(sources, { source: v.source, name: v.name });
      assert.ok(!resolved.ok, 'is refused');
      assert.equal(resolved.error.status, v.status);
    });
  }

  test('base64url round-trips any URL', () => {
    for (const url of ['https://example.org/a.jpg', 'https://example.org/ü/€?q=1&r=ä', 'http://x.example.org/' + 'a'.repeat(999)]) {
      assert.equal(decodeBase64Url(encodeBase64Url(url)), url);
    }
  });
});

describe('web source configuration', () => {
  const refused = (list: unknown[], pattern: RegExp) => {
    assert.throws(
      () => compileWebSources(list as WebSourceConfig[]),
      (error: unknown) => isProtocolError(error, 'ERR_CONFIG_INVALID') && pattern.test(error.message),
    );
    assert.equal(validateWebSources(list as WebSourceConfig[]).ok, false);
  };

  test('accepts the vectors’ sources and none', () => {
    assert.equal(compileWebSources([]).length, 0);
    assert.equal(validateWebSources(vectors.sources).ok, true);
  });

  test('names the entry and the problem', () => {
    refused([{ name: 'tw', type: 'trusted_web', pattern: '(' }], /iiifWebSources\[0\] "tw": pattern is not a valid regular expression/);
    refused([{ name: 'nhm', type: 'web', url: 'https://x.org/fixed' }], /iiifWebSources\[0\] "nhm": url must be a template with \{name\}/);
    refused([{ name: 'nhm', type: 'web' }], /"nhm": url must be a template/);
    refused([{ name: 'nhm', type: 'web', url: 'file:///srv/{name}' }], /"nhm": url must be an absolute http\(s\) URL/);
    refused([{ name: 'nhm', type: 'web', url: '/relative/{name}' }], /"nhm": url must be an absolute http\(s\) URL/);
    refused([{ name: 'tw', type: 'trusted_web' }], /"tw": pattern is required/);
    refused([{ name: 'tw', type: 'trusted_web', pattern: '.*', url: 'https://x.org/{name}' }], /"url" belongs to web sources/);
    refused([{ name: 'nhm', type: 'web', url: 'https://x.org/{name}', pattern: '.*' }], /"pattern" belongs to trusted_web/);
    refused(
      [
        { name: 'a', type: 'web', url: 'https://x.org/{name}' },
        { name: 'a', type: 'web', url: 'https://y.org/{name}' },
      ],
      /iiifWebSources\[1\] "a": name is used twice/,
    );
    refused([{ name: 'Bad Name', type: 'web', url: 'https://x.org/{name}' }], /name must be/);
    refused([{ name: 'x', type: 'ftp', url: 'https://x.org/{name}' }], /type must be one of web, trusted_web/);
  });

  test('loadConfig checks them at start', () => {
    const load = (iiifWebSources: unknown) => () =>
      loadConfig({ flags: { dataDir: '/tmp/imagine-web-config', iiifWebSources: iiifWebSources as WebSourceConfig[] }, readFile: false });
    assert.deepEqual(load([{ name: 'nhm', type: 'web', url: 'https://x.org/{name}' }])().iiifWebSources, [
      { name: 'nhm', type: 'web', url: 'https://x.org/{name}' },
    ]);
    assert.throws(load([{ name: 'tw', type: 'trusted_web', pattern: '[' }]), (e: unknown) => isProtocolError(e, 'ERR_CONFIG_INVALID') && /iiifWebSources\[0\] "tw"/.test(e.message));
    assert.throws(load([{ name: 'nhm', type: 'web', url: 'https://x.org/' }]), (e: unknown) => isProtocolError(e, 'ERR_CONFIG_INVALID') && /\{name\}/.test(e.message));
    assert.throws(load([{ name: 'UPPER', type: 'web', url: 'https://x.org/{name}' }]), (e: unknown) => isProtocolError(e, 'ERR_CONFIG_INVALID') && /iiifWebSources/.test(e.message));
    assert.throws(load([{ name: 'x', type: 'web', url: 'https://x.org/{name}', extra: 1 }]), (e: unknown) => isProtocolError(e, 'ERR_CONFIG_INVALID'));
    const defaults = loadConfig({ flags: { dataDir: '/tmp/imagine-web-config' }, readFile: false });
    assert.deepEqual(defaults.iiifWebSources, []);
    assert.equal(defaults.iiifWebAllowPrivate, false);
  });
});
