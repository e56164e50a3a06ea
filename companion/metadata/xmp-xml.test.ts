import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { childElements, declaredNamespaces, parseXml, serializeXml, XmlError } from './xmp-xml.ts';

describe('the XMP XML reader', () => {
  test('reads elements, attributes, text, CDATA and references; writes them back', () => {
    const root = parseXml(`<?xml version="1.0"?><a xmlns:b="urn:b" b:x='1 &amp; 2'><b:c>t &lt; &#233;&#x41;<![CDATA[<&amp;>]]></b:c><d/><!-- note --></a>`);
    assert.equal(root.name, 'a');
    assert.deepEqual(root.attrs, [
      ['xmlns:b', 'urn:b'],
      ['b:x', '1 & 2'],
    ]);
    assert.deepEqual([...declaredNamespaces(root)], [['b', 'urn:b']]);
    const [c, d] = childElements(root);
    assert.equal(c!.children.map((n) => (n.kind === 'text' ? n.text : '')).join(''), 't < éA<&amp;>');
    assert.equal(d!.name, 'd');
    assert.equal(serializeXml(root), '<a xmlns:b="urn:b" b:x="1 &amp; 2"><b:c>t &lt; éA&lt;&amp;amp;&gt;</b:c><d/><!-- note --></a>');
  });

  test('round-trips what it wrote', () => {
    const xml = '<r a="x&#10;y&quot;"><s>1</s> <t k="v"/></r>';
    const once = serializeXml(parseXml(xml));
    assert.equal(serializeXml(parseXml(once)), once);
    assert.deepEqual(parseXml(once).attrs, [['a', 'x\ny"']]);
  });

  test('refuses DOCTYPE and entity declarations (billion laughs)', () => {
    const laughs = '<!DOCTYPE x [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>';
    assert.throws(() => parseXml(laughs), (e: unknown) => e instanceof XmlError && /DOCTYPE/.test(e.message));
  });

  test('refuses undeclared entity references and bare ampersands', () => {
    assert.throws(() => parseXml('<x>&lol;</x>'), XmlError);
    assert.throws(() => parseXml('<x>a & b</x>'), XmlError);
    assert.throws(() => parseXml('<x>&#0;</x>'), XmlError);
  });

  test('refuses nesting deeper than the limit, and too many nodes', () => {
    const deep = (n: number) => '<a>'.repeat(n) + '</a>'.repeat(n);
    assert.doesNotThrow(() => parseXml(deep(100)));
    assert.throws(() => parseXml(deep(101)), /deeper than 100/);
    assert.throws(() => parseXml(`<a>${'<b/>'.repeat(50)}</a>`, { maxDepth: 10, maxNodes: 20 }), /more than 20/);
  });

  test('refuses broken markup', () => {
    for (const bad of ['<a>', '<a></b>', '<a b=c/>', '<a b="1" b="2"/>', 'text<a/>', '<a/><b/>', '', '<a x="<"/>']) {
      assert.throws(() => parseXml(bad), XmlError, bad);
    }
  });
});
