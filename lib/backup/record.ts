/**
 * A new backup's metadata (lib/backup/take.ts, its last step): the marker that makes the saved
 * dump a backup (ARCHITECTURE.md, "a backup is complete only when its marker is written last").
 * Pure: everything it records was measured by the run (schemas/backup-metadata.schema.json; the
 * repository refuses metadata that fails it). Holds no credential: the source is the container and
 * the user name only. A target with offsite configured starts 'pending' (lib/offsite/upload.ts
 * rewrites it once the copy is confirmed), so a run that dies before its upload is still pending.
 */
import type { Target } from '../config/load.js';
import { VERSION } from '../core/package.js';
import type { BackupMetadata, BackupType } from '../formats/metadata.js';
import { offsiteKey } from '../offsite/bucket.js';
import { DUMP_EXT } from '../storage/repository.js';
import type { Streamed } from './pipeline.js';
import type { Preflight } from './snapshot.js';

export interface Measured {
  id: string;
  type: BackupType;
  release: string | null;
  startedAt: Date;
  durationMs: number;
  level: number;
  container: string | null;
  preflight: Preflight;
  streamed: Streamed;
}

export function backupMetadata(target: Target, m: Measured): BackupMetadata {
  const started = m.startedAt.toISOString();
  return {
    format_version: 1,
    id: m.id,
    project: target.project,
    environment: target.environment,
    database: target.database,
    type: m.type,
    release: m.release,
    created_at: started,
    started_at: started,
    finished_at: new Date(m.startedAt.getTime() + m.durationMs).toISOString(),
    duration_ms: m.durationMs,
    file: m.id + DUMP_EXT,
    size_bytes: m.streamed.size,
    sha256: m.streamed.sha256,
    format: 'custom',
    compression: { algorithm: 'zstd', level: m.level },
    encryption: null,
    pg_dump_version: m.preflight.pgDumpVersion,
    server_version: m.preflight.serverVersion,
    source: { container: m.container, user: target.user ?? null },
    tables: m.streamed.tables,
    total_rows: Object.values(m.streamed.tables).reduce((a, b) => a + b, 0),
    pgfleet_version: VERSION,
    verification: null,
    offsite: target.offsite ? { status: 'pending', key: offsiteKey(target, m.id) } : null,
    ...(m.streamed.partial ? { partial: m.streamed.partial } : {}),
  };
}

