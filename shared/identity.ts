/**
 * User identities `name@domain`: who made a version, who owns a token, who is shared with.
 * The domain is the user's home server, as in an `imagine://` URI authority.
 */
import { ProtocolError } from './errors.ts';
import {
  checkAuthority,
  describeType,
  findDisallowedCharacter,
  formatAuthority,
  quoteInput,
  type ValidationResult,
} from './host.ts';

/** Longest identity accepted, checked before anything else. */
export const MAX_IDENTITY_LENGTH = 320;
export const MAX_NAME_LENGTH = 64;

export interface Identity {
  /** Lowercase user name. */
  name: string;
  /** Home server: lowercase host, with `:port` when one was given. */
  domain: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

function invalid(input: string, reason: string): ProtocolError {
  return new ProtocolError('ERR_IDENTITY_INVALID', `invalid user identity ${quoteInput(input)}: ${reason}`);
}

/**
 * Parses a user identity.
 *
 * Grammar (split at the last '@', as Open Cloud Mesh does; at most 320 characters, printable
 * ASCII only, both checked first):
 *
 *     identity = name "@" domain
 *     name     = (alnum) *63(alnum / "." / "_" / "-")   ; case-insensitive
 *     domain   = host [":" port]                        ; as in imagine:// URI authorities
 *
 * Name and domain come back lowercase (IPv6 in canonical form).
 *
 * @example
 *   parseIdentity('Alice@Studio.Example')  // { name: 'alice', domain: 'studio.example' }
 *   parseIdentity('bob@localhost:7420')    // { name: 'bob', domain: 'localhost:7420' }
 *
 * @throws ProtocolError `ERR_IDENTITY_INVALID`, its message saying what is wrong.
 */
export function parseIdentity(input: string): Identity {
  if (typeof input !== 'string') {
    throw new ProtocolError('ERR_IDENTITY_INVALID', `invalid user identity: expected a string, got ${describeType(input)}`);
  }
  if (input === '') throw invalid(input, 'is empty');
  if (input.length > MAX_IDENTITY_LENGTH) {
    throw invalid(input, `is ${input.length} characters long; at most ${MAX_IDENTITY_LENGTH} are allowed`);
  }
  const badChar = findDisallowedCharacter(input);
  if (badChar) throw invalid(input, badChar);
  const at = input.lastIndexOf('@');
  if (at === -1) throw invalid(input, "must have the form name@domain (no '@' found)");
  const name = input.slice(0, at).toLowerCase();
  const rawDomain = input.slice(at + 1);
  if (name === '') throw invalid(input, "name (before '@') is empty");
  if (name.length > MAX_NAME_LENGTH) {
    throw invalid(input, `name is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`);
  }
  if (!NAME.test(name)) {
    const bad = /[^a-z0-9._-]/.exec(name);
    if (bad) throw invalid(input, `name contains ${quoteInput(bad[0])}; only a-z, 0-9, '.', '_' and '-' are allowed`);
    throw invalid(input, 'name must start with a letter or a digit');
  }
  if (rawDomain === '') throw invalid(input, "domain (after '@') is empty");
  const domain = checkAuthority(rawDomain);
  if (!domain.ok) throw invalid(input, `domain: ${domain.reason}`);
  return { name, domain: formatAuthority(domain.value) };
}

/** Like `parseIdentity`, but answers with a result instead of throwing. */
export function validateIdentity(input: unknown): ValidationResult<Identity> {
  try {
    return { ok: true, value: parseIdentity(input as string) };
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error };
    throw error;
  }
}

/** Whether `input` is a valid user identity. */
export function isValidIdentity(input: unknown): boolean {
  return validateIdentity(input).ok;
}

/** Throws `ERR_IDENTITY_INVALID` unless `input` is a valid user identity. */
export function ensureValidIdentity(input: unknown): asserts input is string {
  parseIdentity(input as string);
}

/**
 * Writes an identity in normal form; the result is parsed again, so invalid parts throw.
 *
 * @example
 *   formatIdentity({ name: 'Alice', domain: 'Studio.Example' }) // 'alice@studio.example'
 *
 * @throws ProtocolError `ERR_IDENTITY_INVALID`
 */
export function formatIdentity(identity: Identity): string {
  const { name, domain } = parseIdentity(`${identity.name}@${identity.domain}`);
  return `${name}@${domain}`;
}
