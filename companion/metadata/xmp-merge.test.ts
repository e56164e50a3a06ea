import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { xmpPacket } from '../../test/helpers/metadata.ts';
import {
  addProperties,
  canonicalProperty,
  emptyXmpDocument,
  parseXmpDocument,
  pruneEmptyDescriptions,
  removeProperty,
  serializeXmpDocument,
  xmpProperties,
} from './xmp-merge.ts';

const DC = 'http://purl.org/dc/elements/1.1/';
const MY = 'urn:example:my/';

describe('XMP packets as top-level properties', () => {
  test('properties are named by namespace URI, in element and attribute form', () => {
    const doc = parseXmpDocument(xmpPacket('<dc:title><rdf:Alt><rdf:li xml:lang="x-default">T</rdf:li></rdf:Alt></dc:title>').replace('rdf:about=""', 'rdf:about="" dc:format="image/jpeg"'));
    assert.deepEqual(
      xmpProperties(doc).map((p) => p.key),
      [`${DC}format`, `${DC}title`],
    );
  });

  test('a property keeps its identity under another prefix', () => {
    const a = xmpProperties(parseXmpDocument(xmpPacket('<my:x><rdf:Seq><rdf:li>1</rdf:li></rdf:Seq></my:x>', { my: MY })))[0]!;
    const b = xmpProperties(parseXmpDocument(xmpPacket('<other:x>\n <rdf:Seq>\n  <rdf:li>1</rdf:li>\n </rdf:Seq>\n</other:x>', { other: MY })))[0]!;
    assert.equal(a.key, b.key);
    assert.equal(canonicalProperty(a), canonicalProperty(b));
    const c = xmpProperties(parseXmpDocument(xmpPacket('<my:x><rdf:Seq><rdf:li>2</rdf:li></rdf:Seq></my:x>', { my: MY })))[0]!;
    assert.notEqual(canonicalProperty(a), canonicalProperty(c));
  });

  test('properties move between packets with the namespaces they need', () => {
    const from = parseXmpDocument(xmpPacket('<my:struct rdf:parseType="Resource"><my:a>1</my:a></my:struct><dc:subject><rdf:Bag><rdf:li>k</rdf:li></rdf:Bag></dc:subject>', { my: MY }));
    const to = emptyXmpDocument();
    addProperties(to, xmpProperties(from));
    const round = parseXmpDocument(serializeXmpDocument(to));
    assert.deepEqual(
      xmpProperties(round).map((p) => p.key),
      [`${MY}struct`, `${DC}subject`],
    );
    assert.deepEqual(xmpProperties(round).map(canonicalProperty), xmpProperties(from).map(canonicalProperty));
  });

  test('blank nodes (rdf:nodeID) are not properties, and travel with the property that points at them', () => {
    const packet = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:my="${MY}">
<rdf:Description rdf:about=""><my:who rdf:nodeID="n1"/></rdf:Description>
<rdf:Description rdf:nodeID="n1" my:name="Phil"/></rdf:RDF></x:xmpmeta>`;
    const from = parseXmpDocument(packet);
    assert.deepEqual(
      xmpProperties(from).map((p) => p.key),
      [`${MY}who`],
    );
    const to = emptyXmpDocument();
    addProperties(to, xmpProperties(from));
    assert.match(serializeXmpDocument(to), /rdf:nodeID="n1" my:name="Phil"/);
  });

  test('removing properties, then empty descriptions', () => {
    const doc = parseXmpDocument(xmpPacket('<dc:format>image/jpeg</dc:format>'));
    removeProperty(xmpProperties(doc)[0]!);
    pruneEmptyDescriptions(doc);
    assert.equal(xmpProperties(doc).length, 0);
    assert.doesNotMatch(serializeXmpDocument(doc), /Description/);
  });

  test('what is not XMP is refused', () => {
    assert.throws(() => parseXmpDocument('<a/>'), /rdf:RDF/);
    assert.throws(() => parseXmpDocument('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="urn:wrong"/></x:xmpmeta>'), /RDF namespace/);
    assert.throws(() => xmpProperties(parseXmpDocument(xmpPacket('<zz:a>1</zz:a>'))), /not declared/);
  });
});
