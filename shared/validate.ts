/**
 * Runtime-neutral schema checks for values received over the wire. Uses TypeBox's interpreter
 * (no code generation), so it also runs where `eval` is forbidden (UXP). Where code generation
 * is allowed (the companion on Node), `useSchemaChecker` installs a compiled checker for the
 * valid case, about 25 times faster on a search page; issues are still described by the
 * interpreter.
 */
import type { TSchema, Static } from 'typebox';
import { Value } from 'typebox/value';

export interface SchemaIssue {
  path: string;
  message: string;
}

export type CheckResult<T> = { ok: true; value: T } | { ok: false; issues: SchemaIssue[] };

/** Whether a value matches a schema. */
export type SchemaChecker = (schema: TSchema, value: unknown) => boolean;

let isValid: SchemaChecker = (schema, value) => Value.Check(schema, value);

/** Replaces the checker used for the valid case (it must agree with TypeBox's interpreter). */
export function useSchemaChecker(checker: SchemaChecker): void {
  isValid = checker;
}

/** Checks `value` against `schema`; at most `maxIssues` issues are reported. */
export function checkSchema<S extends TSchema>(
  schema: S,
  value: unknown,
  maxIssues = 5,
): CheckResult<Static<S>> {
  if (isValid(schema, value)) return { ok: true, value: value as Static<S> };
  // One issue per path: a union reports one error per member, which would crowd out others.
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const path = error.instancePath || '/';
    if (seen.has(path)) continue;
    seen.add(path);
    issues.push({ path, message: error.message });
    if (issues.length >= maxIssues) break;
  }
  return { ok: false, issues };
}

/** One line describing the issues, for error messages. */
export function describeIssues(issues: SchemaIssue[]): string {
  return issues.map((i) => `${i.path} ${i.message}`).join('; ');
}
