/**
 * XMP packets as sets of top-level properties, for merging two packets the way preserve.ts
 * needs: a property is identified by its namespace URI and local name (never by prefix), can
 * be taken from one packet and added to another with the namespace declarations it relies
 * on, and compared with another property by value (prefixes and attribute order aside).
 * Properties in attribute form (`<rdf:Description dc:format="image/jpeg">`) are supported.
 */
import { childElements, declaredNamespaces, localName, parseXml, prefixOf, serializeXml, XmlError, type XmlElement, type XmlNode } from './xmp-xml.ts';
import { MAX_XMP_DEPTH, wrapPacket } from './xmp-packet.ts';

export const RDF_NS = 'http://www.w3.org/1999/02/22-rdf-syntax-ns#';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

export interface XmpDocument {
  root: XmlElement;
  rdf: XmlElement;
  /** rdf:about of the first description ('' for most packets). */
  about: string;
}

export interface XmpProperty {
  /** Namespace URI + local name: the property's identity. */
  key: string;
  ns: string;
  local: string;
  description: XmlElement;
  /** Namespace bindings in scope at the description. */
  scope: Map<string, string>;
  element?: XmlElement;
  attr?: [string, string];
  /** Top-level blank-node descriptions of the property's document, by rdf:nodeID. */
  nodes: Map<string, XmlElement>;
}

function scopeOf(...elements: XmlElement[]): Map<string, string> {
  const scope = new Map<string, string>([['xml', XML_NS]]);
  for (const e of elements) for (const [p, uri] of declaredNamespaces(e)) scope.set(p, uri);
  return scope;
}

function resolveName(name: string, scope: Map<string, string>): string {
  const prefix = prefixOf(name);
  const uri = scope.get(prefix);
  if (uri === undefined) throw new XmlError(`namespace prefix "${prefix}" of <${name}> is not declared`);
  return uri + localName(name);
}

/** Parses a packet (text) into a document; throws XmlError for anything that is not XMP. */
export function parseXmpDocument(text: string): XmpDocument {
  const root = parseXml(text, { maxDepth: MAX_XMP_DEPTH, maxNodes: 2_000_000 });
  const rdf = localName(root.name) === 'RDF' ? root : childElements(root).find((e) => localName(e.name) === 'RDF');
  if (!rdf) throw new XmlError('no rdf:RDF element');
  const scope = scopeOf(...(rdf === root ? [root] : [root, rdf]));
  if (resolveName(rdf.name, scope) !== `${RDF_NS}RDF`) throw new XmlError('rdf:RDF is not in the RDF namespace');
  const first = childElements(rdf)[0];
  const about = first?.attrs.find(([n]) => localName(n) === 'about')?.[1] ?? '';
  return { root, rdf, about };
}

/** A document with no properties. */
export function emptyXmpDocument(): XmpDocument {
  return parseXmpDocument(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="${RDF_NS}"></rdf:RDF></x:xmpmeta>`);
}

const isRdfAttr = (name: string, scope: Map<string, string>) => {
  if (name === 'xmlns' || name.startsWith('xmlns:')) return true;
  const prefix = prefixOf(name);
  return prefix === '' || scope.get(prefix) === RDF_NS || prefix === 'xml';
};

const nodeIdOf = (element: XmlElement, scope: Map<string, string>) =>
  element.attrs.find(([n]) => localName(n) === 'nodeID' && scope.get(prefixOf(n)) === RDF_NS)?.[1];

/**
 * The top-level properties of a document, in order. Top-level descriptions with an
 * rdf:nodeID are blank nodes other properties point at, not properties of the picture.
 */
export function xmpProperties(doc: XmpDocument): XmpProperty[] {
  const out: XmpProperty[] = [];
  const outer = doc.rdf === doc.root ? [doc.root] : [doc.root, doc.rdf];
  const nodes = new Map<string, XmlElement>();
  for (const description of childElements(doc.rdf)) {
    const id = nodeIdOf(description, scopeOf(...outer, description));
    if (id !== undefined) nodes.set(id, description);
  }
  for (const description of childElements(doc.rdf)) {
    const scope = scopeOf(...outer, description);
    if (resolveName(description.name, scope) !== `${RDF_NS}Description` || nodeIdOf(description, scope) !== undefined) continue;
    for (const attr of description.attrs) {
      if (isRdfAttr(attr[0], scope)) continue;
      const key = resolveName(attr[0], scope);
      out.push({ key, ns: key.slice(0, key.length - localName(attr[0]).length), local: localName(attr[0]), description, scope, attr, nodes });
    }
    for (const element of childElements(description)) {
      const key = resolveName(element.name, scopeOf(...outer, description, element));
      out.push({ key, ns: key.slice(0, key.length - localName(element.name).length), local: localName(element.name), description, scope, element, nodes });
    }
  }
  return out;
}

/** Removes a property from its document. */
export function removeProperty(prop: XmpProperty): void {
  if (prop.attr) prop.description.attrs = prop.description.attrs.filter((a) => a !== prop.attr);
  else prop.description.children = prop.description.children.filter((c) => c !== prop.element);
}

function prefixesUsed(element: XmlElement, into: Set<string>): void {
  into.add(prefixOf(element.name));
  for (const [name] of element.attrs) if (name.includes(':') && !name.startsWith('xmlns')) into.add(prefixOf(name));
  for (const child of childElements(element)) prefixesUsed(child, into);
}

/**
 * Adds properties taken from other documents: one new rdf:Description per source scope, with
 * the namespace declarations the properties use.
 */
export function addProperties(doc: XmpDocument, props: readonly XmpProperty[]): void {
  const groups = new Map<Map<string, string>, XmpProperty[]>();
  for (const p of props) groups.set(p.scope, [...(groups.get(p.scope) ?? []), p]);
  const outer = doc.rdf === doc.root ? [doc.root] : [doc.root, doc.rdf];
  const targetScope = scopeOf(...outer);
  const rdfPrefix = prefixOf(doc.rdf.name);
  for (const [scope, list] of groups) {
    const used = new Set<string>();
    for (const p of list) {
      if (p.attr) used.add(prefixOf(p.attr[0]));
      if (p.element) prefixesUsed(p.element, used);
    }
    const description: XmlElement = { kind: 'element', name: rdfPrefix ? `${rdfPrefix}:Description` : 'Description', attrs: [], children: [] };
    description.attrs.push([rdfPrefix ? `${rdfPrefix}:about` : 'about', doc.about]);
    for (const prefix of [...used].sort()) {
      const uri = scope.get(prefix);
      if (uri === undefined || prefix === 'xml' || targetScope.get(prefix) === uri) continue;
      description.attrs.push([prefix ? `xmlns:${prefix}` : 'xmlns', uri]);
    }
    // Our own rdf prefix must mean RDF inside the new description.
    if (rdfPrefix && targetScope.get(rdfPrefix) !== RDF_NS) description.attrs.push([`xmlns:${rdfPrefix}`, RDF_NS]);
    for (const p of list) {
      if (p.attr) description.attrs.push([...p.attr]);
      else if (p.element) description.children.push(cloneElement(p.element));
    }
    doc.rdf.children.push({ kind: 'text', text: '\n' }, description, { kind: 'text', text: '\n' });
  }
  // Blank nodes the moved properties point at come along (with every namespace they had).
  const present = new Set(childElements(doc.rdf).flatMap((d) => d.attrs.filter(([n]) => localName(n) === 'nodeID').map(([, v]) => v)));
  for (const p of props) {
    if (!p.element) continue;
    for (const id of nodeIdsIn(p.element)) {
      const node = p.nodes.get(id);
      if (!node || present.has(id)) continue;
      present.add(id);
      const clone = cloneElement(node);
      const own = new Set(clone.attrs.map(([n]) => n));
      for (const [prefix, uri] of p.scope) {
        const name = prefix ? `xmlns:${prefix}` : 'xmlns';
        if (prefix !== 'xml' && !own.has(name)) clone.attrs.push([name, uri]);
      }
      doc.rdf.children.push(clone, { kind: 'text', text: '\n' });
    }
  }
}

function nodeIdsIn(element: XmlElement): string[] {
  const ids = element.attrs.filter(([n]) => localName(n) === 'nodeID').map(([, v]) => v);
  return [...ids, ...childElements(element).flatMap(nodeIdsIn)];
}

function cloneElement(element: XmlElement): XmlElement {
  return {
    kind: 'element',
    name: element.name,
    attrs: element.attrs.map(([n, v]) => [n, v]),
    children: element.children.map((c): XmlNode => (c.kind === 'element' ? cloneElement(c) : { ...c })),
  };
}

/** A prefix-free, order-stable rendering of a property's value, for comparing properties. */
export function canonicalProperty(prop: XmpProperty): string {
  if (prop.attr) return JSON.stringify(prop.attr[1]);
  const walk = (element: XmlElement, scope: Map<string, string>): string => {
    const inner = new Map(scope);
    for (const [p, uri] of declaredNamespaces(element)) inner.set(p, uri);
    const attrs = element.attrs
      .filter(([n]) => n !== 'xmlns' && !n.startsWith('xmlns:'))
      .map(([n, v]) => `${n.includes(':') ? resolveName(n, inner) : n}=${JSON.stringify(v)}`)
      .sort();
    const children = element.children
      .map((c) => (c.kind === 'element' ? walk(c, inner) : c.kind === 'text' ? (c.text.trim() ? JSON.stringify(c.text) : '') : ''))
      .join('');
    return `<${resolveName(element.name, inner)} ${attrs.join(' ')}>${children}</>`;
  };
  return walk(prop.element!, prop.scope);
}

/** Drops descriptions that were left with no properties. */
export function pruneEmptyDescriptions(doc: XmpDocument): void {
  const outer = doc.rdf === doc.root ? [doc.root] : [doc.root, doc.rdf];
  doc.rdf.children = doc.rdf.children.filter((child) => {
    if (child.kind !== 'element') return child.kind !== 'text' || child.text.trim() !== '';
    const scope = scopeOf(...outer, child);
    return childElements(child).length > 0 || child.attrs.some(([n]) => !isRdfAttr(n, scope));
  });
}

/** The document as a complete UTF-8 packet. */
export function serializeXmpDocument(doc: XmpDocument): string {
  return wrapPacket(serializeXml(doc.root));
}
