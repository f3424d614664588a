/**
 * A backup's metadata: the marker that makes a dump a backup. Written last, atomically, next to
 * the dump as `<dump>.json`. zod is the source; schemas/backup-metadata.schema.json is generated
 * from it, and metadata read from disk is checked against that file with ajv.
 */
import { z } from 'zod';

export const BACKUP_TYPES = ['scheduled', 'manual', 'pre-deploy', 'pre-migration', 'safety'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

/** A backup's id: its UTC start second, with _2, _3… for more in the same second. */
export const BACKUP_ID = /^db_\d{8}_\d{6}Z(_\d+)?$/;

const iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, { message: 'expected a UTC ISO-8601 time' });

export const Verification = z.strictObject({
  status: z.enum(['passed', 'failed']),
  verified_at: iso,
  duration_ms: z.number().int().min(0),
  tables: z.number().int().min(0),
  rows: z.number().int().min(0),
  container: z.string().optional(),
  error: z.string().optional(),
});

export const BackupMetadata = z.strictObject({
  format_version: z.literal(1),
  id: z.string().regex(BACKUP_ID),
  project: z.string().min(1),
  environment: z.string().min(1),
  database: z.string().min(1),
  type: z.enum(BACKUP_TYPES),
  release: z.string().nullable(),
  created_at: iso,
  started_at: iso,
  finished_at: iso,
  duration_ms: z.number().int().min(0),
  file: z.string().regex(/^db_\d{8}_\d{6}Z(_\d+)?\.dump(\.zst)?$/),
  size_bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  format: z.literal('custom'),
  compression: z.strictObject({ algorithm: z.enum(['zstd', 'none']), level: z.number().int().nullable() }),
  encryption: z.null(),
  pg_dump_version: z.string(),
  server_version: z.string(),
  source: z.strictObject({ container: z.string().nullable(), user: z.string().nullable() }),
  tables: z.record(z.string(), z.number().int().min(0)),
  total_rows: z.number().int().min(0),
  pgfleet_version: z.string(),
  verification: Verification.nullable(),
});

export type BackupMetadata = z.infer<typeof BackupMetadata>;
export type VerificationResult = z.infer<typeof Verification>;

/** The one order of backups, newest first: by creation time, then by id (db_…_2 after db_…). */
export function newestFirst(a: Pick<BackupMetadata, 'id' | 'created_at'>, b: Pick<BackupMetadata, 'id' | 'created_at'>): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || b.id.localeCompare(a.id, 'en', { numeric: true });
}
