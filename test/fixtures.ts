/** Small test fixtures shared by unit tests: a valid backup metadata record for acme/production. */
import type { BackupMetadata } from '../lib/formats/metadata.js';

/** Valid metadata of backup `id` created at `at` (a 4-byte dump of one one-row table); `over` replaces fields. */
export function sampleMetadata(id: string, at: string, over: Partial<BackupMetadata> = {}): BackupMetadata {
  return {
    format_version: 1,
    id,
    project: 'acme',
    environment: 'production',
    database: 'acme_production',
    type: 'scheduled',
    release: null,
    created_at: at,
    started_at: at,
    finished_at: at,
    duration_ms: 1,
    file: id + '.dump.zst',
    size_bytes: 4,
    sha256: 'a'.repeat(64),
    format: 'custom',
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    pg_dump_version: '15.4',
    server_version: '15.4',
    source: { container: 'pg', user: 'acme' },
    tables: { 'public.t': 1 },
    total_rows: 1,
    pgfleet_version: '0.1.0',
    verification: null,
    ...over,
  };
}
