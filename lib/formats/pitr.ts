/**
 * The files of a cluster's point-in-time recovery, kept under `_clusters/<container>/` (lib/pitr/):
 *
 *   wal/<name>.zst         a WAL file as the cluster archived it, zstd-compressed
 *   wal/<name>.zst.json    its record (WalRecord), written last: the marker that it is taken in
 *   base/<id>.tar.zst      a base backup: pg_basebackup's tar (-Ft -X fetch), zstd-compressed
 *   base/<id>.tar.zst.json its metadata (BaseBackupMetadata), written last
 *
 * In the offsite bucket the same keys, `.age` after the object's name when it is encrypted
 * (wal/<name>.zst.age, base/<id>.tar.zst.age, each with `.json` after that), and the record or
 * metadata of the copy: size_bytes/sha256 of the stored (encrypted) bytes and `encryption` saying
 * to whom, with the plaintext's (the local object's) sha256 and size (lib/pitr/offsite.ts).
 *
 * zod is the source; schemas/wal-record.schema.json and schemas/base-backup-metadata.schema.json
 * are generated from these.
 */
import { z } from 'zod';
import { Encryption, OffsiteState } from './metadata.js';

const iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, { message: 'expected a UTC ISO-8601 time' });
const SHA256 = z.string().regex(/^[0-9a-f]{64}$/);
const LSN = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/, { message: 'expected an LSN like 0/2000028' });

/** The names PostgreSQL archives: a segment, a timeline history, a backup history, a partial segment. */
export const WAL_NAME = {
  segment: /^[0-9A-F]{24}$/,
  history: /^[0-9A-F]{8}\.history$/,
  backup: /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/,
  partial: /^[0-9A-F]{24}\.partial$/,
} as const;
export type WalKind = keyof typeof WAL_NAME;

/** The kind of an archived file's name, or null for a name PostgreSQL never archives (`.part` temps, strays). */
export function walKind(name: string): WalKind | null {
  for (const [k, re] of Object.entries(WAL_NAME)) if (re.test(name)) return k as WalKind;
  return null;
}

export const WalRecord = z.strictObject({
  format_version: z.literal(1),
  name: z.string().regex(/^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/, { message: 'not a WAL file name' }),
  kind: z.enum(['segment', 'history', 'backup', 'partial']),
  timeline: z.number().int().min(1),
  /** The file as PostgreSQL archived it. */
  size_bytes: z.number().int().min(0),
  sha256: SHA256,
  /** The compressed object `<name>.zst`. */
  stored: z.strictObject({ file: z.string().min(1), size_bytes: z.number().int().min(0), sha256: SHA256, compression: z.literal('zstd') }),
  /** When the archiver wrote it into the landing directory (the file's mtime). */
  archived_at: iso,
  taken_at: iso,
  /** Only on a copy in the bucket encrypted with age: `stored` is then the encrypted object's, plaintext_* the local `.zst`'s. */
  encryption: Encryption.optional(),
});
export type WalRecord = z.infer<typeof WalRecord>;

export const BASE_BACKUP_ID = /^base_\d{8}_\d{6}Z(_\d+)?$/;

export const BaseBackupMetadata = z.strictObject({
  format_version: z.literal(1),
  id: z.string().regex(BASE_BACKUP_ID),
  container: z.string().min(1),
  /** `.age` only on an encrypted copy in the bucket. */
  file: z.string().regex(/^base_\d{8}_\d{6}Z(_\d+)?\.tar\.zst(\.age)?$/),
  size_bytes: z.number().int().min(0),
  sha256: SHA256,
  compression: z.strictObject({ algorithm: z.literal('zstd'), level: z.number().int() }),
  /** Host clock just before pg_basebackup started, and once it had exited 0. */
  started_at: iso,
  finished_at: iso,
  /**
   * The tar's own size (pg_basebackup's output, counted before compression): what the base backup
   * unpacks to, near enough (the space a recovery needs). Absent in metadata from before it was
   * recorded: then it is counted by decompressing the tar.
   */
  tar_size_bytes: z.number().int().min(0).optional(),
  /** From pg_basebackup -v: the WAL start and end points; consistent once replay passes stop_lsn. */
  start_lsn: LSN,
  stop_lsn: LSN,
  timeline: z.number().int().min(1),
  /** server_version_num and version(). */
  server_version_num: z.number().int(),
  server_version: z.string(),
  /** The cluster's databases (not templates) when it started. */
  databases: z.array(z.string()),
  pg_basebackup_version: z.string(),
  pgfleet_version: z.string(),
  /** Only on an encrypted copy in the bucket: size_bytes/sha256 are the stored bytes', plaintext_* the local tar.zst's. */
  encryption: Encryption.optional(),
  /** In LOCAL metadata, where offsite is configured: its copy in the bucket, 'uploaded' or 'pending' (offsite sync catches up). */
  offsite: OffsiteState.optional(),
  /** The latest verification of its chain (verify-backups): recovered to the end of the archive. */
  verification: z
    .strictObject({
      status: z.enum(['passed', 'failed']),
      verified_at: iso,
      duration_ms: z.number().int().min(0),
      /** WAL segments checked (sha256) and replayed, and the last of them. */
      segments: z.number().int().min(0),
      through: z.string().nullable(),
      /** pg_last_wal_replay_lsn() once recovery ended; null when it never started. */
      replayed_lsn: LSN.nullable(),
      error: z.string().optional(),
    })
    .optional(),
});
export type BaseBackupMetadata = z.infer<typeof BaseBackupMetadata>;
