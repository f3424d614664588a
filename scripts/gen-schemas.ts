#!/usr/bin/env node
// Writes schemas/*.schema.json from the zod schemas (lib/schemas.ts). `npm run schemas`.
import { writeFileSync } from 'node:fs';
import { SCHEMAS, generateSchema, schemaFile } from '../lib/schemas.js';

for (const name of Object.keys(SCHEMAS)) {
  writeFileSync(schemaFile(name), JSON.stringify(generateSchema(name), null, 2) + '\n');
  console.log(schemaFile(name));
}
