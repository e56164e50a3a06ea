// Plain IIIF sources: normalisation of Presentation 3 / 2.1 manifests and collections and
// Image API 3 / 2 info.json (fixtures below), and the routes end to end against a real
// fixture server on 127.0.0.1: thumbnails relayed through signed, cached agent URLs; garbage refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { labelText, readIiifSource } from './iiif-source.ts';
import { ensurePairingToken } from './pairing.ts';

const id = (u: string) => `relay:${u}`;

function manifest3(base: string) {
  return {
    '@context': 'http://iiif.io/api/presentation/3/context.json',
    id: `${base}/m3.json`,
    type: 'Manifest',
    label: { fr: ['Le port'], en: ['The harbour'] },
    rights: 'http://creativecommons.org/licenses/by/4.0/',
    requiredStatement: { label: { en: ['Attribution'] }, value: { en: ['Studio Example'] } },
    items: [
      {
        id: `${base}/canvas/1`,
        type: 'Canvas',
        label: { none: ['p. 1'] },
        width: 4000,
        height: 3000,
        items: [
          {
            id: `${base}/page/1`,
            type: 'AnnotationPage',
            items: [
              {
                id: `${base}/anno/1`,
                type: 'Annotation',
                motivation: 'painting',
                target: `${base}/canvas/1`,
                body: {
                  id: `${base}/iiif3/img1/full/max/0/default.jpg`,
                  type: 'Image',
                  format: 'image/jpeg',
                  service: [{ id: `${base}/iiif3/img1`, type: 'ImageService3', profile: 'level1' }],
                },
              },
            ],
          },
        ],
      },
      {
        id: `${base}/canvas/2`,
        type: 'Canvas',
        width: 800,
        height: 600,
        thumbnail: [{ id: `${base}/thumbs/2.jpg`, type: 'Image' }],
        items: [
          {
            type: 'AnnotationPage',
            items: [{ type: 'Annotation', motivation: 'painting', body: { id: `${base}/plain/2.jpg`, type: 'Image' } }],
          },
        ],
      },
      { id: `${base}/canvas/3`, type: 'Canvas', items: [] },
      'garbage',
    ],
  };
}

function collection3(base: string) {
  return {
    '@context': 'http://iiif.io/api/presentation/3/context.json',
    id: `${base}/c3.json`,
    type: 'Collection',
    label: { none: ['Everything'] },
    items: [
      { id: `${base}/m3.json`, type: 'Manifest', label: { en: ['The harbour'] }, thumbnail: [{ id: `${base}/thumbs/2.jpg` }] },
      { id: `${base}/sub.json`, type: 'Collection', label: { en: ['More'] } },
      { id: 'javascript:alert(1)', type: 'Manifest', label: { en: ['bad'] } },
    ],
  };
}

function manifest2(base: string) {
  return {
    '@context': 'http://iiif.io/api/presentation/2/context.json',
    '@id': `${base}/m2.json`,
    '@type': 'sc:Manifest',
    label: [{ '@value': 'Der Hafen', '@language': 'de' }, { '@value': 'The harbour', '@language': 'en' }],
    license: 'https://rightsstatements.org/vocab/InC/1.0/',
    attribution: 'Studio Example',
    sequences: [
      {
        '@type': 'sc:Sequence',
        canvases: [
          {
            '@id': `${base}/canvas/1`,
            '@type': 'sc:Canvas',
            label: 'f. 1r',
            width: 2000,
            height: 1000,
            images: [
              {
                '@type': 'oa:Annotation',
                motivation: 'sc:painting',
                resource: {
                  '@id': `${base}/iiif2/img1/full/full/0/default.jpg`,
                  '@type': 'dctypes:Image',
                  service: { '@context': 'http://iiif.io/api/image/2/context.json', '@id': `${base}/iiif2/img1`, profile: 'http://iiif.io/api/image/2/level1.json' },
                },
                on: `${base}/canvas/1`,
              },
            ],
          },
          {
            '@id': `${base}/canvas/2`,
            '@type': 'sc:Canvas',
            label: 'f. 1v',
            images: [
              {
                resource: {
                  '@id': `${base}/iiif2/img2/full/full/0/default.jpg`,
                  service: { '@context': 'http://iiif.io/api/image/2/context.json', '@id': `${base}/iiif2/img2/`, profile: ['http://iiif.io/api/image/2/level2.json'] },
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

function collection2(base: string) {
  return {
    '@context': 'http://iiif.io/api/presentation/2/context.json',
    '@id': `${base}/c2.json`,
    '@type': 'sc:Collection',
    label: 'Top',
    collections: [{ '@id': `${base}/c2b.json`, '@type': 'sc:Collection', label: 'Sub' }],
    manifests: [{ '@id': `${base}/m2.json`, '@type': 'sc:Manifest', label: 'The harbour' }],
    members: [{ '@id': `${base}/m2.json`, '@type': 'sc:Manifest', label: 'duplicate' }],
  };
}

function info3(base: string) {
  return { '@context': 'http://iiif.io/api/image/3/context.json', id: `${base}/iiif3/img1`, type: 'ImageService3', protocol: 'http://iiif.io/api/image', profile: 'level1', width: 4000, height: 3000 };
}

function info2(base: string) {
  return { '@context': 'http://iiif.io/api/image/2/context.json', '@id': `${base}/iiif2/img1`, protocol: 'http://iiif.io/api/image', profile: ['http://iiif.io/api/image/2/level0.json'], width: 2000, height: 1000 };
}

describe('readIiifSource', () => {
  const base = 'https://iiif.example';

  test('labels: v3 language maps (English first), v2 strings and value lists, markup stripped', () => {
    assert.equal(labelText({ fr: ['Le port'], en: ['The harbour'] }), 'The harbour');
    assert.equal(labelText({ none: ['p. 1'] }), 'p. 1');
    assert.equal(labelText({ de: ['Hafen'] }), 'Hafen');
    assert.equal(labelText([{ '@value': 'Hafen', '@language': 'de' }, { '@value': 'Harbour', '@language': 'en' }]), 'Harbour');
    assert.equal(labelText('<b>Bold</b> move'), 'Bold move');
    assert.equal(labelText(42), undefined);
    assert.equal(labelText({}), undefined);
  });

  test('a Presentation 3 manifest: canvases with their image service, thumbnails, rights, attribution', () => {
    const source = readIiifSource(manifest3(base), `${base}/m3.json`, id);
    assert.equal(source.kind, 'manifest');
    assert.equal(source.label, 'The harbour');
    assert.equal(source.rights, 'http://creativecommons.org/licenses/by/4.0/');
    assert.equal(source.requiredStatement, 'Attribution: Studio Example');
    assert.deepEqual(source.items, [
      { kind: 'image', label: 'p. 1', id: `${base}/iiif3/img1`, thumbnailUrl: `relay:${base}/iiif3/img1/full/!200,200/0/default.jpg`, width: 4000, height: 3000 },
      { kind: 'image', label: 'Image 2', id: `${base}/plain/2.jpg`, thumbnailUrl: `relay:${base}/thumbs/2.jpg`, width: 800, height: 600 },
    ]);
  });

  test('a Presentation 3 collection: manifests and sub-collections, unsafe links dropped', () => {
    const source = readIiifSource(collection3(base), `${base}/c3.json`, id);
    assert.equal(source.kind, 'collection');
    assert.equal(source.label, 'Everything');
    assert.deepEqual(source.items.map((i) => [i.kind, i.label, i.id, i.thumbnailUrl]), [
      ['manifest', 'The harbour', `${base}/m3.json`, `relay:${base}/thumbs/2.jpg`],
      ['collection', 'More', `${base}/sub.json`, null],
    ]);
  });

  test('a Presentation 2.1 manifest: level 1 services get 200, thumbnails, level 2 !200,200', () => {
    const source = readIiifSource(manifest2(base), `${base}/m2.json`, id);
    assert.equal(source.kind, 'manifest');
    assert.equal(source.label, 'The harbour');
    assert.equal(source.rights, 'https://rightsstatements.org/vocab/InC/1.0/');
    assert.equal(source.requiredStatement, 'Studio Example');
    assert.deepEqual(source.items.map((i) => [i.label, i.id, i.thumbnailUrl]), [
      ['f. 1r', `${base}/iiif2/img1`, `relay:${base}/iiif2/img1/full/200,/0/default.jpg`],
      ['f. 1v', `${base}/iiif2/img2`, `relay:${base}/iiif2/img2/full/!200,200/0/default.jpg`],
    ]);
  });

  test('a Presentation 2.1 collection: collections, manifests and members, each once', () => {
    const source = readIiifSource(collection2(base), `${base}/c2.json`, id);
    assert.deepEqual(source.items.map((i) => [i.kind, i.label]), [['collection', 'Sub'], ['manifest', 'The harbour']]);
  });

  test('Image API 3 and 2 info.json: one image', () => {
    const three = readIiifSource(info3(base), `${base}/iiif3/img1/info.json`, id);
    assert.equal(three.kind, 'image');
    assert.deepEqual(three.items, [
      { kind: 'image', label: 'img1', id: `${base}/iiif3/img1`, thumbnailUrl: `relay:${base}/iiif3/img1/full/!200,200/0/default.jpg`, width: 4000, height: 3000 },
    ]);
    const two = readIiifSource(info2(base), `${base}/iiif2/img1/info.json`, id);
    assert.equal(two.items[0]!.thumbnailUrl, `relay:${base}/iiif2/img1/full/200,/0/default.jpg`);
  });

  for (const [name, doc] of [
    ['null', null],
    ['an array', []],
    ['a string', 'manifest'],
    ['an object without a type', { id: 'x' }],
    ['an Annotation', { '@context': 'http://iiif.io/api/presentation/3/context.json', type: 'Annotation' }],
    ['an image service without an id', { '@context': 'http://iiif.io/api/image/3/context.json', type: 'ImageService3' }],
  ] as const) {
    test(`refuses ${name} with ERR_IIIF_SOURCE_INVALID`, () => {
      assert.throws(() => readIiifSource(doc, `${base}/x.json`, id), { code: 'ERR_IIIF_SOURCE_INVALID' });
    });
  }

  test('a huge manifest is listed up to the limit', () => {
    const doc = manifest3(base);
    const canvas = doc.items[0]!;
    doc.items = Array.from({ length: 5000 }, () => canvas);
    assert.equal(readIiifSource(doc, `${base}/m3.json`, id).items.length, 2000);
  });
});

describe('GET /agent/v1/iiif and /iiif/image', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'imagine-iiif-source-'));
  const HOST = '127.0.0.1:7420';
  let fixtures: FastifyInstance;
  let base: string;
  let agent: FastifyInstance;
  let token: string;
  const imageHits: string[] = [];

  before(async () => {
    const jpeg = await sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 200, g: 90, b: 20 } } }).jpeg().toBuffer();
    fixtures = Fastify();
    fixtures.get('/m3.json', async () => manifest3(base));
    fixtures.get('/c3.json', async () => collection3(base));
    fixtures.get('/m2.json', async () => manifest2(base));
    fixtures.get('/c2.json', async () => collection2(base));
    fixtures.get('/iiif3/img1/info.json', async () => info3(base));
    fixtures.get('/iiif2/img1/info.json', async () => info2(base));
    fixtures.get('/moved.json', async (_r, reply) => reply.redirect('/m3.json'));
    fixtures.get('/html', async (_r, reply) => reply.type('text/html').send('<html>not iiif</html>'));
    fixtures.get('/huge.json', async (_r, reply) => reply.type('application/json').send(`{"pad":"${'x'.repeat(9 * 1024 * 1024)}"}`));
    fixtures.get('/missing.json', async (_r, reply) => reply.code(404).send({ error: 'nope' }));
    fixtures.get('/*', async (request, reply) => {
      imageHits.push(request.url);
      if (request.url.includes('notimage')) return reply.type('text/plain').send('hello');
      return reply.type('image/jpeg').send(jpeg);
    });
    await fixtures.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(fixtures.server.address() as AddressInfo).port}`;
    agent = await buildApp(loadConfig({ flags: { dataDir, role: 'agent' }, readFile: false }), { logger: false });
    await agent.ready();
    agent.agent!.origin = `http://${HOST}`;
    token = await ensurePairingToken(join(dataDir, 'agent'));
  });

  after(async () => {
    await agent?.close();
    await fixtures?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const ask = (url: string, auth = true) =>
    agent.inject({ method: 'GET', url, headers: { host: HOST, ...(auth ? { authorization: `Bearer ${token}` } : {}) } });

  test('a v3 manifest over HTTP, its thumbnails relayed through signed agent URLs and cached', async () => {
    const response = await ask(`/agent/v1/iiif?url=${encodeURIComponent(`${base}/m3.json`)}`);
    assert.equal(response.statusCode, 200, response.body);
    const source = response.json();
    assert.equal(source.kind, 'manifest');
    assert.equal(source.items.length, 2);
    const thumb = source.items[0].thumbnailUrl as string;
    assert.match(thumb, /^\/agent\/v1\/iiif\/image\?url=[^&]+&exp=\d+&sig=[A-Za-z0-9_-]{43}$/);

    const first = await ask(thumb, false);
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.headers['content-type'], 'image/jpeg');
    assert.equal(first.headers['imagine-cache'], 'miss');
    assert.deepEqual(imageHits, ['/iiif3/img1/full/!200,200/0/default.jpg']);
    const second = await ask(thumb, false);
    assert.equal(second.headers['imagine-cache'], 'hit');
    assert.equal(imageHits.length, 1, 'the second load came from the cache');
  });

  test('a relayed URL must be signed by the agent: no open relay', async () => {
    const unsigned = await ask(`/agent/v1/iiif/image?url=${encodeURIComponent(`${base}/anything.jpg`)}`, false);
    assert.equal(unsigned.statusCode, 403);
    assert.equal(unsigned.json().code, 'ERR_SIGNATURE_INVALID');
    const source = (await ask(`/agent/v1/iiif?url=${encodeURIComponent(`${base}/m3.json`)}`)).json();
    const swapped = (source.items[0].thumbnailUrl as string).replace(/url=[^&]+/, `url=${encodeURIComponent(`${base}/other.jpg`)}`);
    assert.equal((await ask(swapped, false)).json().code, 'ERR_SIGNATURE_INVALID');
  });

  test('a relayed answer that is not an image is refused', async () => {
    const signed = agent.agent!.urls.sign(`/agent/v1/iiif/image?url=${encodeURIComponent(`${base}/notimage.jpg`)}`);
    const response = await ask(signed, false);
    assert.equal(response.statusCode, 502);
    assert.equal(response.json().code, 'ERR_UPSTREAM_INVALID');
  });

  test('v2.1 manifests and collections, v3 collections, info.json of both versions, and a redirect', async () => {
    const kinds: Record<string, [string, number]> = {
      '/m2.json': ['manifest', 2],
      '/c2.json': ['collection', 2],
      '/c3.json': ['collection', 2],
      '/iiif3/img1/info.json': ['image', 1],
      '/iiif2/img1/info.json': ['image', 1],
      '/moved.json': ['manifest', 2],
    };
    for (const [path, [kind, count]] of Object.entries(kinds)) {
      const response = await ask(`/agent/v1/iiif?url=${encodeURIComponent(base + path)}`);
      assert.equal(response.statusCode, 200, `${path}: ${response.body}`);
      assert.equal(response.json().kind, kind, path);
      assert.equal(response.json().items.length, count, path);
    }
  });

  test('garbage in, codes out', async () => {
    const cases: [string, number, string][] = [
      ['javascript:alert(1)', 400, 'ERR_VALIDATION'],
      ['file:///etc/passwd', 400, 'ERR_VALIDATION'],
      ['not a url', 400, 'ERR_VALIDATION'],
      [`${base}/html`, 502, 'ERR_IIIF_SOURCE_INVALID'],
      [`${base}/huge.json`, 502, 'ERR_IIIF_SOURCE_INVALID'],
      [`${base}/missing.json`, 502, 'ERR_UPSTREAM_ERROR'],
      ['http://127.0.0.1:1/manifest.json', 502, 'ERR_UPSTREAM_UNREACHABLE'],
    ];
    for (const [url, status, code] of cases) {
      const response = await ask(`/agent/v1/iiif?url=${encodeURIComponent(url)}`);
      assert.equal(response.statusCode, status, `${url}: ${response.body}`);
      assert.equal(response.json().code, code, url);
    }
    assert.equal((await ask('/agent/v1/iiif')).statusCode, 400);
    assert.equal((await ask(`/agent/v1/iiif?url=${encodeURIComponent(`${base}/m3.json`)}`, false)).statusCode, 401);
  });
});
