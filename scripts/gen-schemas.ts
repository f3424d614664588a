#!/usr/bin/env node
// Writes schemas/*.schema.json from the zod schemas (lib/schemas.ts). `npm run schemas`.
import { writeFileSync } from 'node:fs';
import { schemaFile } from '../lib/core/schema-files.js';
import { SCHEMAS, generateSchema } from '../lib/formats/registry.js';

for (const name of Object.keys(SCHEMAS)) {
  writeFileSync(schemaFile(name), JSON.stringify(generateSchema(name), null, 2) + '\n');
  console.log(schemaFile(name));
}
