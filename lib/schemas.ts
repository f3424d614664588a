/**
 * The JSON Schemas in schemas/, generated from zod (scripts/gen-schemas.ts), and ajv validators
 * over those files: what is read from disk is checked against the same files editors and CI use.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020.js';
import { ProjectsFile } from './config/schema.js';
import { BackupMetadata } from './metadata.js';
import { DeploymentManifest } from './manifest.js';

/** The package root (where package.json is), from source or from dist/. */
export const PACKAGE_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('pgfleet: cannot find package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

export const VERSION: string = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;

/** name → zod schema; each becomes schemas/<name>.schema.json. Later modules register theirs here. */
export const SCHEMAS: Record<string, z.ZodType> = {
  projects: ProjectsFile,
  'backup-metadata': BackupMetadata,
  'deployment-manifest': DeploymentManifest,
};

export function generateSchema(name: string): object {
  const s = SCHEMAS[name];
  const json = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: `https://pgfleet.dev/schemas/${name}.schema.json`, title: name, ...json };
}

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
