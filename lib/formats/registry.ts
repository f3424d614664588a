/**
 * The file formats pgfleet reads and writes, by name: each zod schema here becomes
 * schemas/<name>.schema.json (scripts/gen-schemas.ts), and a test fails when the two drift.
 */
import { z } from 'zod';
import { ProjectsFile } from '../config/schema.js';
import { BackupMetadata } from './metadata.js';
import { DeploymentManifest } from './manifest.js';
import { BaseBackupMetadata, WalRecord } from './pitr.js';

/** name → zod schema; each becomes schemas/<name>.schema.json. Later formats register theirs here. */
export const SCHEMAS: Record<string, z.ZodType> = {
  projects: ProjectsFile,
  'backup-metadata': BackupMetadata,
  'deployment-manifest': DeploymentManifest,
  'wal-record': WalRecord,
  'base-backup-metadata': BaseBackupMetadata,
};

export function generateSchema(name: string): object {
  const s = SCHEMAS[name];
  const json = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { $id: `https://pgfleet.dev/schemas/${name}.schema.json`, title: name, ...json };
}
