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

/**
 * The latest checksum pass over the stored dump (`verify-backups --checksums`): its bytes re-read
 * and hashed against `size_bytes`/`sha256`. Kept apart from `verification` (a full restore): a
 * hash that matches proves the bytes unchanged, not that they restore, so it never counts as a
 * verified backup for retention or status. A `failed` pass makes the backup damaged (repository).
 */
export const Checksum = z.strictObject({
  status: z.enum(['passed', 'failed']),
  checked_at: iso,
  duration_ms: z.number().int().min(0),
  error: z.string().optional(),
});

/** The age public keys a stored copy is encrypted to (bech32, checked again by lib/config on load). */
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const SHA256 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * How the stored bytes are encrypted: null (plaintext: every local backup, and offsite copies of a
 * target without recipients), or age to public keys. `plaintext_*` are the decrypted bytes' (the
 * .dump.zst archive, i.e. the local file's sha256 and size); size_bytes/sha256 are the stored bytes'.
 */
export const Encryption = z.strictObject({
  algorithm: z.literal('age'),
  recipients: z.array(z.string().regex(AGE_RECIPIENT)).min(1),
  plaintext_sha256: SHA256,
  plaintext_size_bytes: z.number().int().min(0),
});

/**
 * In LOCAL metadata: the backup's offsite copy. null: offsite was not configured for the target
 * when it was taken (absent: metadata from before offsite copies, read as null). 'pending': not
 * confirmed in the bucket (`error` says the last failure); 'uploaded': dump and metadata objects
 * written and checked, under `key` (the dump's key in the bucket, below the URL's prefix).
 */
export const OffsiteState = z.strictObject({
  status: z.enum(['uploaded', 'pending']),
  key: z.string().min(1),
  uploaded_at: iso.optional(),
  error: z.string().optional(),
});

/**
 * A partial backup: what its target's database.backup.exclude_tables / exclude_table_data left
 * out. The patterns as configured (passed to pg_dump as they are), and what they matched on the
 * server in the dump's own snapshot (resolved as pg_dump resolves them): `tables_excluded`,
 * relations not in the dump at all; `data_excluded`, tables in the dump without their rows (not
 * in `tables`: they hold no counted rows; a restore of them is empty). Names as in `tables`
 * (quote_ident of schema and name). Absent or null: a full backup (all metadata before exclusions).
 */
export const Partial = z.strictObject({
  exclude_tables: z.array(z.string().min(1)),
  exclude_table_data: z.array(z.string().min(1)),
  tables_excluded: z.array(z.string().min(1)),
  data_excluded: z.array(z.string().min(1)),
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
  /** The dump's name: `.age` only on an encrypted (offsite) copy. */
  file: z.string().regex(/^db_\d{8}_\d{6}Z(_\d+)?\.dump(\.zst)?(\.age)?$/),
  size_bytes: z.number().int().min(0),
  sha256: SHA256,
  format: z.literal('custom'),
  compression: z.strictObject({ algorithm: z.enum(['zstd', 'none']), level: z.number().int().nullable() }),
  encryption: Encryption.nullable(),
  pg_dump_version: z.string(),
  server_version: z.string(),
  source: z.strictObject({ container: z.string().nullable(), user: z.string().nullable() }),
  tables: z.record(z.string(), z.number().int().min(0)),
  total_rows: z.number().int().min(0),
  pgfleet_version: z.string(),
  verification: Verification.nullable(),
  /** Absent in metadata from before checksum passes: read as null. */
  checksum: Checksum.nullable().optional(),
  offsite: OffsiteState.nullable().optional(),
  partial: Partial.nullable().optional(),
});

export type BackupMetadata = z.infer<typeof BackupMetadata>;
export type VerificationResult = z.infer<typeof Verification>;
export type ChecksumResult = z.infer<typeof Checksum>;
export type EncryptionInfo = z.infer<typeof Encryption>;
export type OffsiteStatus = z.infer<typeof OffsiteState>;
export type PartialInfo = z.infer<typeof Partial>;

/** The backup's exclusions, or null for a full backup (patterns configured that matched nothing still make it partial: it was taken with them). */
export function partialOf(meta: Pick<BackupMetadata, 'partial'>): PartialInfo | null {
  const p = meta.partial;
  return p && (p.exclude_tables.length || p.exclude_table_data.length) ? p : null;
}

/** One line for an operator: the patterns, and what they matched. */
export function describePartial(p: PartialInfo): string {
  const part = (what: string, patterns: string[], matched: string[]) => (patterns.length ? `${what} ${patterns.join(', ')} (matched ${matched.join(', ') || 'nothing'})` : '');
  return [part('exclude_tables', p.exclude_tables, p.tables_excluded), part('exclude_table_data', p.exclude_table_data, p.data_excluded)].filter(Boolean).join('; ');
}

/** The one order of backups, newest first: by creation time, then by id (db_…_2 after db_…). */
export function newestFirst(a: Pick<BackupMetadata, 'id' | 'created_at'>, b: Pick<BackupMetadata, 'id' | 'created_at'>): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || byIdNumeric(b.id, a.id);
}

/** localeCompare(…, 'en', { numeric: true }) with one collator: localeCompare with options builds a new one per call (most of list's time over 1,000 targets). */
const byIdNumeric = new Intl.Collator('en', { numeric: true }).compare;
