/**
 * A simulated backup history for the report (tests and the demo): one backup a night for `days`
 * nights up to `now`, its metadata written through the repository as takeBackup writes it (the
 * schema checked), its dump a sparse file of the recorded size (no disk used; the report and
 * `status` read sizes, never contents). A tenant can be made to grow, slow down, fail a
 * verification, lag offsite, or shrink on its last nights (lost data looks like that).
 * Never for a real backup_root: these dumps hold no data.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BackupMetadata } from '../../lib/formats/metadata.js';
import { VERSION } from '../../lib/core/package.js';
import { backupStem, DUMP_EXT, Repository } from '../../lib/storage/repository.js';

export interface HistorySpec {
  project: string;
  environment: string;
  database: string;
  days: number;
  now: Date;
  /** Size of the first night's dump, and growth a day (a share, e.g. 0.004). */
  startBytes: number;
  growth: number;
  /** Backup time of the first night, and its growth a day in ms. */
  startMs: number;
  msPerDay: number;
  /** The last `nights` dumps are `factor` of the size they would have been. */
  shrink?: { nights: number; factor: number };
  /** A verification every `every` nights; `failing` of those (by index from the oldest) fail. */
  verify?: { every: number; failing?: number[] };
  /** Offsite copies: confirmed after `lagHours`; the last `pending` nights are not yet. */
  offsite?: { lagHours: number; pending: number };
  /** Deterministic jitter (a share of size and time). */
  jitter?: number;
}

/** Writes the history; returns the metadata written, newest first. */
export async function simulateHistory(backupRoot: string, s: HistorySpec): Promise<BackupMetadata[]> {
  const repo = new Repository(backupRoot);
  const out: BackupMetadata[] = [];
  let seed = [...`${s.project}/${s.environment}`].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) >>> 0;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const j = s.jitter ?? 0.02;
  for (let i = 0; i < s.days; i++) {
    const at = new Date(s.now.getTime() - (s.days - 1 - i) * 86_400_000 - 3_600_000);
    at.setUTCHours(2, 15, 0, 0);
    if (at > s.now) at.setUTCDate(at.getUTCDate() - 1);
    const id = backupStem(at);
    const shrunk = s.shrink && i >= s.days - s.shrink.nights ? s.shrink.factor : 1;
    const size = Math.max(1024, Math.round(s.startBytes * (1 + s.growth) ** i * (1 + j * rand()) * shrunk));
    const ms = Math.max(200, Math.round((s.startMs + s.msPerDay * i) * (1 + 3 * j * rand())));
    const rows = Math.round(size / 60);
    const verified = s.verify && i % s.verify.every === s.verify.every - 1;
    const failed = verified && (s.verify!.failing ?? []).includes(i);
    const pending = s.offsite && i >= s.days - s.offsite.pending;
    const meta: BackupMetadata = {
      format_version: 1,
      id,
      project: s.project,
      environment: s.environment,
      database: s.database,
      type: 'scheduled',
      release: null,
      created_at: at.toISOString(),
      started_at: at.toISOString(),
      finished_at: new Date(at.getTime() + ms).toISOString(),
      duration_ms: ms,
      file: id + DUMP_EXT,
      size_bytes: size,
      sha256: (BigInt(seed) * 2654435761n).toString(16).padStart(64, '0').slice(-64),
      format: 'custom',
      compression: { algorithm: 'zstd', level: 3 },
      encryption: null,
      pg_dump_version: '15.8',
      server_version: '15.8',
      source: { container: `${s.project}-db`, user: s.project },
      tables: { 'public.events': rows },
      total_rows: rows,
      pgfleet_version: VERSION,
      verification: verified
        ? { status: failed ? 'failed' : 'passed', verified_at: new Date(at.getTime() + 4 * 3_600_000).toISOString(), duration_ms: ms * 2, tables: failed ? 0 : 1, rows: failed ? 0 : rows, ...(failed ? { error: 'public.events: 0 rows restored, 4120 recorded' } : {}) }
        : null,
      offsite: s.offsite
        ? pending
          ? { status: 'pending', key: `${s.project}/${s.environment}/${id}${DUMP_EXT}`, error: 'connect ETIMEDOUT' }
          : { status: 'uploaded', key: `${s.project}/${s.environment}/${id}${DUMP_EXT}`, uploaded_at: new Date(at.getTime() + ms + s.offsite.lagHours * 3_600_000 * (1 + j * rand())).toISOString() }
        : null,
    };
    const file = repo.dumpPath(s.project, s.environment, id);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(file, 'w', 0o600);
    ftruncateSync(fd, size); // sparse: the size is recorded, no block written
    closeSync(fd);
    await repo.saveMetadata(meta);
    out.unshift(meta);
  }
  return out;
}

/**
 * The demo's tenants over a simulated year to `now` (the README's report picture): acme grows and
 * is verified weekly (one failure), with offsite copies; acme/staging is never verified; globex's
 * last dump shrank to a quarter; initech's backup time creeps towards a 2 h window. Writes
 * `dir`/projects.yml (backup_root `dir`/backups, offsite configured for acme only) and returns its path.
 */
export async function demoHistory(dir: string, now: Date): Promise<string> {
  const MiB = 1048576;
  const root = path.join(dir, 'backups');
  const year = { days: 365, now, growth: 0.002, startMs: 20_000, msPerDay: 20 };
  await simulateHistory(root, { ...year, project: 'acme', environment: 'production', database: 'acme_production', startBytes: 40 * MiB, verify: { every: 7, failing: [160] }, offsite: { lagHours: 0.5, pending: 2 } });
  await simulateHistory(root, { ...year, project: 'acme', environment: 'staging', database: 'acme_staging', startBytes: 8 * MiB });
  await simulateHistory(root, { ...year, project: 'globex', environment: 'production', database: 'globex_production', startBytes: 20 * MiB, shrink: { nights: 1, factor: 0.25 }, verify: { every: 7 } });
  await simulateHistory(root, { ...year, project: 'initech', environment: 'production', database: 'initech_production', startBytes: 5 * MiB, startMs: 1_200_000, msPerDay: 15_000, verify: { every: 30 } });
  const db = (p: string, dbs: string, extra = '') => `${p}:\n  database:\n    type: postgresql\n    container: pgfleet-demo-${p}\n    databases: { ${dbs} }\n${extra}`;
  const file = path.join(dir, 'projects.yml');
  writeFileSync(
    file,
    `platform:\n  backup_root: ${JSON.stringify(root)}\n  container_cli: podman\n  report: { backup_window: 2h }\n` +
      db('acme', 'production: acme_production, staging: acme_staging', '    offsite: { url: "s3://pgfleet-demo/history", endpoint: "http://127.0.0.1:9" }\n') +
      db('globex', 'production: globex_production') +
      db('initech', 'production: initech_production'),
    { mode: 0o600 },
  );
  return file;
}
