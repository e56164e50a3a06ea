import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseIiifPath, IiifRequestError, isValidIiifPath, validateIiifPath, type IiifVersion } from './parse.ts';
import { resolveImageRequest, planKey, type ImageLimits } from './resolve.ts';

interface Vector {
  title: string;
  version: IiifVersion;
  path: string;
  kind?: string;
  identifier?: { asset: string; version?: string };
  region?: number[];
  size?: number[];
  canonical?: string;
  status?: number;
  resolve?: boolean;
  image?: { width: number; height: number };
}
const vectors = JSON.parse(readFileSync(new URL('../../test/vectors/iiif-requests.json', import.meta.url), 'utf8')) as {
  image: { width: number; height: number };
  limits: ImageLimits;
  valid: Vector[];
  invalid: Vector[];
};

describe('IIIF request vectors: valid', () => {
  for (const v of vectors.valid) {
    test(`${v.title} (${v.version}: ${v.path})`, () => {
      const parsed = validateIiifPath(v.version, v.path);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
      const request = parsed.value;
      assert.equal(request.kind, v.kind ?? 'image');
      if (v.identifier) assert.deepEqual(request.identifier, v.identifier);
      if (request.kind !== 'image') return;
      const resolved = resolveImageRequest(request, v.image ?? vectors.image, vectors.limits);
      assert.ok(resolved.ok, resolved.ok ? '' : resolved.error.message);
      const plan = resolved.value;
      if (v.region) assert.deepEqual([plan.region.x, plan.region.y, plan.region.w, plan.region.h], v.region);
      if (v.size) assert.deepEqual([plan.width, plan.height], v.size);
      if (v.canonical) assert.equal(plan.canonical, v.canonical);
    });
  }
});

describe('IIIF request vectors: invalid', () => {
  for (const v of vectors.invalid) {
    test(`${v.title} → ${v.status} (${v.version}: ${v.path})`, () => {
      const parsed = validateIiifPath(v.version, v.path);
      if (v.resolve) {
        assert.ok(parsed.ok && parsed.value.kind === 'image', 'parses');
        const resolved = resolveImageRequest(parsed.value as never, v.image ?? vectors.image, vectors.limits);
        assert.ok(!resolved.ok);
        assert.equal(resolved.error.status, v.status);
        return;
      }
      assert.ok(!parsed.ok, 'is refused');
      assert.equal(parsed.error.status, v.status, parsed.error.message);
      assert.ok(parsed.error.message.length < 200);
    });
  }
});

describe('parse family', () => {
  test('parseIiifPath throws a typed error; isValidIiifPath is a guard', () => {
    assert.throws(() => parseIiifPath(3, 'a/full/full/0/default.jpg'), (e: unknown) => e instanceof IiifRequestError && e.status === 400);
    assert.equal(isValidIiifPath(3, 'a/full/max/0/default.jpg'), true);
    assert.equal(isValidIiifPath(3, 'a/full/max/0/default.jp'), false);
  });

  test('equivalent requests share the plan key across versions', () => {
    const image = { width: 6000, height: 4000 };
    const key = (version: IiifVersion, path: string) => {
      const request = parseIiifPath(version, path);
      assert.equal(request.kind, 'image');
      const plan = resolveImageRequest(request as never, image, vectors.limits);
      assert.ok(plan.ok);
      return planKey(plan.value);
    };
    const a = key(3, 'x/0,0,1024,1024/512,512/0/default.jpg');
    assert.equal(key(2, 'x/0,0,1024,1024/512,/0/default.jpg'), a);
    assert.equal(key(3, 'x/pct:0,0,17.066667,25.6/!512,512/0/default.jpg'), a);
    assert.notEqual(key(3, 'x/0,0,1024,1024/512,512/0/gray.jpg'), a);
  });

  test('never throws on generated junk', () => {
    const alphabet = 'abc019,.:!^%/@-_~;<=>[]\\ \u0000é';
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 5000; i++) {
      let s = '';
      const n = Math.floor(rnd() * 60);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const r = validateIiifPath(rnd() < 0.5 ? 2 : 3, s);
      if (!r.ok) assert.ok([400, 404, 501].includes(r.error.status));
    }
  });
});
