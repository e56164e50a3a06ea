/**
 * Extension names: reverse-domain names (atproto NSID rules) that servers announce in their
 * capabilities, e.g. `com.example.ai-tagging`. The domain part says who defines the extension.
 */
import { ProtocolError } from './errors.ts';
import {
  describeType,
  findDisallowedCharacter,
  MAX_HOST_LENGTH,
  MAX_LABEL_LENGTH,
  quoteInput,
  type ValidationResult,
} from './host.ts';

/** Longest extension name accepted (253-character authority + '.' + 63-character name). */
export const MAX_EXTENSION_NAME_LENGTH = 317;
/** Authority of the names this protocol keeps for itself. */
export const RESERVED_EXTENSION_AUTHORITY = 'org.imagine';

export interface ExtensionName {
  /** The whole name, domain part lowercased: `com.example.ai-tagging`. */
  full: string;
  /** The reverse-domain part: `com.example`. */
  authority: string;
  /** The authority as a domain name: `example.com`. */
  domain: string;
  /** The final, case-sensitive segment: `ai-tagging`. */
  name: string;
}

const AUTHORITY_SEGMENT = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const NAME_SEGMENT = /^[a-zA-Z][a-zA-Z0-9-]*$/;

function invalid(input: string, reason: string): ProtocolError {
  return new ProtocolError('ERR_EXTENSION_NAME_INVALID', `invalid extension name ${quoteInput(input)}: ${reason}`);
}

/**
 * Parses an extension name.
 *
 * Grammar (at most 317 characters, printable ASCII only, both checked first):
 *
 *     extension-name = authority "." name
 *     authority      = segment 1*("." segment)        ; reversed domain, at most 253 characters
 *     segment        = alnum [*(alnum / "-") alnum]   ; 1-63, case-insensitive; the first
 *                                                     ; segment must not start with a digit
 *     name           = ALPHA *62(ALPHA / DIGIT / "-") ; case-sensitive
 *
 * So at least three segments. The authority comes back lowercase; the name is kept as written.
 *
 * @example
 *   parseExtensionName('Com.Example.aiTagging')
 *   // { full: 'com.example.aiTagging', authority: 'com.example', domain: 'example.com', name: 'aiTagging' }
 *   parseExtensionName('example.com') // throws: needs at least three segments
 *
 * @throws ProtocolError `ERR_EXTENSION_NAME_INVALID`, its message saying what is wrong.
 */
export function parseExtensionName(input: string): ExtensionName {
  if (typeof input !== 'string') {
    throw new ProtocolError(
      'ERR_EXTENSION_NAME_INVALID',
      `invalid extension name: expected a string, got ${describeType(input)}`,
    );
  }
  if (input === '') throw invalid(input, 'is empty');
  if (input.length > MAX_EXTENSION_NAME_LENGTH) {
    throw invalid(input, `is ${input.length} characters long; at most ${MAX_EXTENSION_NAME_LENGTH} are allowed`);
  }
  const badChar = findDisallowedCharacter(input);
  if (badChar) throw invalid(input, badChar);
  const segments = input.split('.');
  if (segments.some((s) => s === '')) throw invalid(input, "has an empty segment (leading, trailing or double '.')");
  if (segments.length < 3) {
    throw invalid(input, `has ${segments.length} segment${segments.length === 1 ? '' : 's'}; at least 3 are needed`);
  }
  const name = segments.pop() ?? '';
  const authoritySegments = segments.map((s) => s.toLowerCase());
  for (const [i, segment] of authoritySegments.entries()) {
    if (segment.length > MAX_LABEL_LENGTH) {
      throw invalid(input, `segment ${i + 1} is ${segment.length} characters long; at most ${MAX_LABEL_LENGTH} are allowed`);
    }
    if (!AUTHORITY_SEGMENT.test(segment)) {
      const bad = /[^a-z0-9-]/.exec(segment);
      if (bad) {
        throw invalid(input, `domain part contains ${quoteInput(bad[0])}; only a-z, 0-9 and '-' are allowed`);
      }
      throw invalid(input, `segment ${quoteInput(segment)} must not start or end with '-'`);
    }
    if (i === 0 && /^[0-9]/.test(segment)) throw invalid(input, 'the first segment must not start with a digit');
  }
  const authority = authoritySegments.join('.');
  if (authority.length > MAX_HOST_LENGTH) {
    throw invalid(input, `domain part is ${authority.length} characters long; at most ${MAX_HOST_LENGTH} are allowed`);
  }
  if (name.length > MAX_LABEL_LENGTH) {
    throw invalid(input, `name segment is ${name.length} characters long; at most ${MAX_LABEL_LENGTH} are allowed`);
  }
  if (!NAME_SEGMENT.test(name)) {
    if (!/^[a-zA-Z]/.test(name)) throw invalid(input, `name segment ${quoteInput(name)} must start with a letter`);
    const bad = /[^a-zA-Z0-9-]/.exec(name)?.[0] ?? '';
    throw invalid(input, `name segment contains ${quoteInput(bad)}; only letters, digits and '-' are allowed`);
  }
  return {
    full: `${authority}.${name}`,
    authority,
    domain: [...authoritySegments].reverse().join('.'),
    name,
  };
}

/** Like `parseExtensionName`, but answers with a result instead of throwing. */
export function validateExtensionName(input: unknown): ValidationResult<ExtensionName> {
  try {
    return { ok: true, value: parseExtensionName(input as string) };
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error };
    throw error;
  }
}

/** Whether `input` is a valid extension name. */
export function isValidExtensionName(input: unknown): boolean {
  return validateExtensionName(input).ok;
}

/** Throws `ERR_EXTENSION_NAME_INVALID` unless `input` is a valid extension name. */
export function ensureValidExtensionName(input: unknown): asserts input is string {
  parseExtensionName(input as string);
}

/**
 * Writes an extension name in normal form from its authority and name; the result is parsed
 * again, so invalid parts throw.
 *
 * @example
 *   formatExtensionName({ authority: 'Com.Example', name: 'ai-tagging' }) // 'com.example.ai-tagging'
 *
 * @throws ProtocolError `ERR_EXTENSION_NAME_INVALID`
 */
export function formatExtensionName(parts: { authority: string; name: string }): string {
  return parseExtensionName(`${parts.authority}.${parts.name}`).full;
}

/**
 * Whether `input` is a valid extension name under `org.imagine` (or a subdomain of it): names
 * this protocol keeps for its own extensions. Other parties must not define them.
 *
 * @example
 *   isReservedExtensionName('org.imagine.workflow-policy') // true
 *   isReservedExtensionName('com.example.ai-tagging')      // false
 */
export function isReservedExtensionName(input: string): boolean {
  const parsed = validateExtensionName(input);
  if (!parsed.ok) return false;
  const { authority } = parsed.value;
  return authority === RESERVED_EXTENSION_AUTHORITY || authority.startsWith(`${RESERVED_EXTENSION_AUTHORITY}.`);
}
