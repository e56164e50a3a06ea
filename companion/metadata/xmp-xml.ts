/**
 * A small, strict XML reader and writer for XMP packets: enough to take packets apart at the
 * level of their top-level properties and put them back together, and nothing that can be
 * abused. Grammar accepted (a subset of XML 1.0):
 *
 *   document  := (PI | comment | ws)* element (PI | comment | ws)*
 *   element   := '<' name attribute* '/>' | '<' name attribute* '>' content '</' name '>'
 *   content   := (element | text | CDATA | PI | comment)*
 *   reference := '&lt;' | '&gt;' | '&amp;' | '&quot;' | '&apos;' | '&#' digits ';' | '&#x' hex ';'
 *
 * Refused with an `XmlError` (never expanded, never followed): DOCTYPE and entity
 * declarations (billion-laughs packets), other entity references, nesting deeper than
 * `maxDepth`, more than `maxNodes` nodes, and malformed markup. Processing instructions and
 * comments outside the root are dropped; inside it they are kept.
 */

export interface XmlElement {
  kind: 'element';
  /** Qualified name as written (`dc:title`). */
  name: string;
  /** Attributes in document order, values decoded. */
  attrs: Array<[string, string]>;
  children: XmlNode[];
}

export type XmlNode = XmlElement | { kind: 'text'; text: string } | { kind: 'raw'; xml: string };

export interface XmlLimits {
  maxDepth: number;
  maxNodes: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({ maxDepth: 100, maxNodes: 2_000_000 });

export class XmlError extends Error {
  override name = 'XmlError';
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.\u00b7\u00c0-\uffff]*/y;
const SPACE = /[ \t\r\n]*/y;

function decodeReferences(text: string, at: number): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&\s]{0,12});?/g, (match, ref: string) => {
    if (!match.endsWith(';')) throw new XmlError(`bare "&" at ${at}`);
    switch (ref) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const code = ref.startsWith('#x') ? parseInt(ref.slice(2), 16) : ref.startsWith('#') ? parseInt(ref.slice(1), 10) : NaN;
    if (!Number.isInteger(code) || code < 1 || code > 0x10ffff) throw new XmlError(`entity reference "&${ref};" is not allowed`);
    return String.fromCodePoint(code);
  });
}

/** Parses an XML document and returns its root element. */
export function parseXml(input: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  let pos = 0;
  let nodes = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;

  const count = () => {
    if (++nodes > limits.maxNodes) throw new XmlError(`more than ${limits.maxNodes} XML nodes`);
  };
  const add = (node: XmlNode) => {
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(node);
    else if (node.kind === 'text' && node.text.trim()) throw new XmlError(`text outside the root element at ${pos}`);
  };
  const readName = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(input);
    if (!m) throw new XmlError(`a name was expected at ${pos}`);
    pos += m[0].length;
    return m[0];
  };
  const skipSpace = () => {
    SPACE.lastIndex = pos;
    pos += SPACE.exec(input)![0].length;
  };
  const until = (end: string, what: string): number => {
    const at = input.indexOf(end, pos);
    if (at === -1) throw new XmlError(`unterminated ${what} at ${pos}`);
    return at;
  };

  while (pos < input.length) {
    const lt = input.indexOf('<', pos);
    if (lt !== pos) {
      const end = lt === -1 ? input.length : lt;
      const text = input.slice(pos, end);
      count();
      add({ kind: 'text', text: decodeReferences(text, pos) });
      pos = end;
      continue;
    }
    if (input.startsWith('<!--', pos)) {
      const end = until('-->', 'comment') + 3;
      if (stack.length) add({ kind: 'raw', xml: input.slice(pos, end) });
      pos = end;
    } else if (input.startsWith('<![CDATA[', pos)) {
      const end = until(']]>', 'CDATA section');
      if (!stack.length) throw new XmlError(`CDATA outside the root element at ${pos}`);
      count();
      add({ kind: 'text', text: input.slice(pos + 9, end) });
      pos = end + 3;
    } else if (input.startsWith('<!', pos)) {
      throw new XmlError('DOCTYPE and entity declarations are not allowed in XMP');
    } else if (input.startsWith('<?', pos)) {
      const end = until('?>', 'processing instruction') + 2;
      if (stack.length) add({ kind: 'raw', xml: input.slice(pos, end) });
      pos = end;
    } else if (input.startsWith('</', pos)) {
      pos += 2;
      const name = readName();
      skipSpace();
      if (input[pos] !== '>') throw new XmlError(`">" expected at ${pos}`);
      pos++;
      const open = stack.pop();
      if (!open || open.name !== name) throw new XmlError(`</${name}> does not close <${open?.name ?? ''}>`);
    } else {
      pos++;
      const element: XmlElement = { kind: 'element', name: readName(), attrs: [], children: [] };
      count();
      for (;;) {
        skipSpace();
        if (input.startsWith('/>', pos) || input[pos] === '>') break;
        const attr = readName();
        skipSpace();
        if (input[pos] !== '=') throw new XmlError(`"=" expected after ${attr} at ${pos}`);
        pos++;
        skipSpace();
        const quote = input[pos];
        if (quote !== '"' && quote !== "'") throw new XmlError(`quoted value expected at ${pos}`);
        const end = input.indexOf(quote, pos + 1);
        if (end === -1) throw new XmlError(`unterminated attribute value at ${pos}`);
        const raw = input.slice(pos + 1, end);
        if (raw.includes('<')) throw new XmlError(`"<" in attribute value at ${pos}`);
        if (element.attrs.some(([n]) => n === attr)) throw new XmlError(`duplicate attribute ${attr} at ${pos}`);
        element.attrs.push([attr, decodeReferences(raw, pos)]);
        pos = end + 1;
      }
      if (stack.length === 0) {
        if (root) throw new XmlError(`a second root element at ${pos}`);
        root = element;
      } else {
        add(element);
      }
      if (input.startsWith('/>', pos)) {
        pos += 2;
      } else {
        pos++;
        stack.push(element);
        if (stack.length > limits.maxDepth) throw new XmlError(`XML nests deeper than ${limits.maxDepth} levels`);
      }
    }
  }
  if (stack.length) throw new XmlError(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (!root) throw new XmlError('no root element');
  return root;
}

const escapeText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttr = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');

/** Writes a node back as XML (attribute values in double quotes). */
export function serializeXml(node: XmlNode): string {
  if (node.kind === 'text') return escapeText(node.text);
  if (node.kind === 'raw') return node.xml;
  const attrs = node.attrs.map(([n, v]) => ` ${n}="${escapeAttr(v)}"`).join('');
  if (!node.children.length) return `<${node.name}${attrs}/>`;
  return `<${node.name}${attrs}>${node.children.map(serializeXml).join('')}</${node.name}>`;
}

/** The element children of an element. */
export function childElements(element: XmlElement): XmlElement[] {
  return element.children.filter((c): c is XmlElement => c.kind === 'element');
}

/** The prefix → namespace URI bindings an element declares. */
export function declaredNamespaces(element: XmlElement): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of element.attrs) {
    if (name === 'xmlns') out.set('', value);
    else if (name.startsWith('xmlns:')) out.set(name.slice(6), value);
  }
  return out;
}

export function prefixOf(name: string): string {
  const colon = name.indexOf(':');
  return colon === -1 ? '' : name.slice(0, colon);
}

export function localName(name: string): string {
  return name.slice(name.indexOf(':') + 1);
}
