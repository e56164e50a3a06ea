import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  name: string;
  version: string;
};

/** This program's name and version, as announced in discovery and the OpenAPI document. */
export const SOFTWARE = Object.freeze({ name: pkg.name, version: pkg.version });
