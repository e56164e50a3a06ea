import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverEndpoint, htmlHrefs, htmlTitle, jsonMentions, kindOf, linkHeaderTargets, linksTo, plainLabel } from './links.ts';
import { targetAssetId } from './services.ts';

const TARGET = 'https://lib.example/iiif/manifests/a1b2';

describe('source links to target', () => {
  test('HTML: an exact href, entity-decoded, relative ones resolved', () => {
    const html = `<p><a class=x href="${TARGET}">the map</a></p>`;
    assert.ok(linksTo({ kind: 'html', text: html, url: 'https://blog.example/post' }, TARGET));
    const encoded = '<a href="https://lib.example/iiif/manifests/a1b2?x=1&amp;y=2">m</a>';
    assert.ok(linksTo({ kind: 'html', text: encoded, url: 'https://blog.example/' }, `${TARGET}?x=1&y=2`));
    const relative = "<link rel=alternate href='/iiif/manifests/a1b2'>";
    assert.ok(linksTo({ kind: 'html', text: relative, url: 'https://lib.example/notes' }, TARGET));
    assert.ok(linksTo({ kind: 'html', text: `<A HREF=${TARGET}>x</A>`, url: 'https://b.example/' }, TARGET));
  });

  test('HTML: text mentions, prefixes, comments and other attributes do not count', () => {
    for (const html of [
      `<p>${TARGET}</p>`,
      `<a href="${TARGET}/canvas/v1">x</a>`,
      `<a href="${TARGET.slice(0, -1)}">x</a>`,
      `<!-- <a href="${TARGET}">hidden</a> -->`,
      `<img src="${TARGET}">`,
      `<a data-href="${TARGET}">x</a>`,
      `<a href="${TARGET}x">x</a>`,
    ]) {
      assert.equal(linksTo({ kind: 'html', text: html, url: 'https://b.example/' }, TARGET), false, html);
    }
  });

  test('HTML scanning stays linear on hostile markup', () => {
    const hostile = '<a href="'.repeat(50_000) + '<a ' + '"'.repeat(100_000) + '<a'.repeat(100_000);
    const started = Date.now();
    assert.deepEqual(htmlHrefs(hostile, 'https://b.example/').length >= 0, true);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });

  test('JSON: the target as a string value anywhere (IIIF annotation target, partOf)', () => {
    const page = { type: 'AnnotationPage', items: [{ type: 'Annotation', motivation: 'commenting', target: TARGET }] };
    assert.ok(jsonMentions(page, TARGET));
    assert.ok(jsonMentions({ partOf: [{ id: 'https://LIB.example:443/iiif/manifests/a1b2', type: 'Manifest' }] }, TARGET));
    assert.equal(jsonMentions({ id: `${TARGET}/other` }, TARGET), false);
    assert.equal(jsonMentions({ note: `see ${TARGET}` }, TARGET), false);
    let deep: unknown = TARGET;
    for (let i = 0; i < 1000; i++) deep = [deep];
    assert.equal(jsonMentions(deep, TARGET), false, 'depth is bounded');
  });

  test('kinds by media type', () => {
    assert.equal(kindOf('application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'), 'json');
    assert.equal(kindOf('application/activity+json'), 'json');
    assert.equal(kindOf('text/html; charset=utf-8'), 'html');
    assert.equal(kindOf('text/plain'), 'other');
    assert.equal(kindOf(undefined), 'other');
  });
});

describe('endpoint discovery (§3.1.2)', () => {
  test('the Link header first, relative to the page URL', () => {
    assert.equal(
      discoverEndpoint({ linkHeader: '</webmention>; rel="webmention"', html: '<link rel="webmention" href="/other">', url: 'https://lib.example/iiif/manifests/x' }),
      'https://lib.example/webmention',
    );
    assert.deepEqual(
      linkHeaderTargets(['<https://a.example/x>; rel="preconnect", <https://a.example/wm?q=1>; rel="other webmention"'], 'webmention', 'https://a.example/'),
      ['https://a.example/wm?q=1'],
    );
    assert.equal(discoverEndpoint({ linkHeader: '<https://a.example/x>; rel=webmentions', url: 'https://a.example/' }), undefined);
  });

  test('then the first <link> or <a> with rel webmention; an empty href is the page itself', () => {
    const html = '<a rel="nofollow" href="/no"></a><link href="/wm?x=1&amp;y=2" rel="me webmention"><a rel=webmention href="/second">';
    assert.equal(discoverEndpoint({ linkHeader: undefined, html, url: 'https://p.example/page' }), 'https://p.example/wm?x=1&y=2');
    assert.equal(discoverEndpoint({ linkHeader: undefined, html: '<link rel="webmention" href="">', url: 'https://p.example/page?a' }), 'https://p.example/page?a');
    assert.equal(discoverEndpoint({ linkHeader: undefined, html: '<!-- <link rel="webmention" href="/x"> -->', url: 'https://p.example/' }), undefined);
  });
});

describe('labels and targets', () => {
  test('plain labels: markup and control characters removed, 200 characters', () => {
    assert.equal(plainLabel('<script>alert(1)</script> Notes\u0000'), 'script alert(1) /script Notes');
    assert.equal(plainLabel({ en: ['Transcription'] }), 'Transcription');
    assert.equal(plainLabel('x'.repeat(500))?.length, 200);
    assert.equal(plainLabel(42), undefined);
    assert.equal(htmlTitle('<html><title>A &amp; B\n notes</title>'), 'A & B notes');
  });

  test('targets of this server: manifests, canvases, asset URLs', () => {
    const origin = 'https://lib.example';
    assert.equal(targetAssetId(new URL(TARGET), origin), 'a1b2');
    assert.equal(targetAssetId(new URL(`${TARGET}%40v2/canvas/v2`), origin), 'a1b2');
    assert.equal(targetAssetId(new URL('https://lib.example/api/v1/assets/a1b2'), origin), 'a1b2');
    assert.equal(targetAssetId(new URL('https://other.example/iiif/manifests/a1b2'), origin), undefined);
    assert.equal(targetAssetId(new URL('https://lib.example/iiif/3/a1b2/info.json'), origin), undefined);
    assert.equal(targetAssetId(new URL('https://lib.example/iiif/manifests/%2e%2e'), origin), undefined, 'dot segments are resolved away');
    assert.equal(targetAssetId(new URL('https://lib.example/iiif/manifests/%ZZ'), origin), undefined);
  });
});
