/**
 * ajv validators over the JSON Schemas in schemas/ (generated from zod by lib/formats/registry.ts):
 * what is read from disk is checked against the same files editors and CI use. Each file is
 * compiled once per process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020.js';
import { PACKAGE_ROOT } from './package.js';

export const schemaFile = (name: string) => path.join(PACKAGE_ROOT, 'schemas', `${name}.schema.json`);

const validators = new Map<string, ValidateFunction>();

/** An ajv validator compiled from schemas/<name>.schema.json (once per process). */
export function validatorFor(name: string): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    const ajv = new (Ajv2020 as unknown as typeof Ajv2020.default)({ allErrors: true, strict: false });
    v = ajv.compile(JSON.parse(readFileSync(schemaFile(name), 'utf8')));
    validators.set(name, v);
  }
  return v;
}

/** Problems of `data` against schemas/<name>.schema.json, as "path: message" strings. */
export function schemaProblems(name: string, data: unknown): string[] {
  const v = validatorFor(name);
  if (v(data)) return [];
  return (v.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`);
}
