/**
 * Compiled schema checks for the companion: TypeBox generates a checker per schema once (Node
 * allows code generation; UXP does not, so `shared/` defaults to the interpreter). Installed by
 * `buildApp` and the CLI before anything checks a server's answer.
 */
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { useSchemaChecker } from '../shared/validate.ts';

const compiled = new WeakMap<TSchema, ReturnType<typeof Compile>>();

export function installCompiledSchemaChecks(): void {
  useSchemaChecker((schema, value) => {
    let checker = compiled.get(schema);
    if (!checker) {
      checker = Compile(schema);
      compiled.set(schema, checker);
    }
    return checker.Check(value);
  });
}
