/**
 * Prometheus metrics, as a textfile for node_exporter's textfile collector.
 *
 * Stateless: every series is derived from the repository (all configured targets), so any run
 * can rewrite the whole file and a lost run loses nothing. The file is written atomically (temp,
 * fsync, rename) at 0644: node_exporter usually runs as another user, and the file holds no
 * secrets. Its directory is not created (node_exporter's textfile directory must exist).
 * No-op when `platform.metrics.textfile` is unset. `writeMetrics` never throws: metrics must not
 * fail a backup; a problem is logged.
 *
 * Series, one per target (labels project, environment); 0 stands for "never":
 *   pgfleet_backup_enabled                           1 when backup.enabled
 *   pgfleet_backup_count                             complete backups stored
 *   pgfleet_backup_damaged_count                     damaged backups (repository survey: never restored; alert on > 0)
 *   pgfleet_backup_last_success_timestamp_seconds    when the newest complete backup finished
 *   pgfleet_backup_last_duration_seconds             how long it took
 *   pgfleet_backup_last_size_bytes                   its stored size
 *   pgfleet_verification_last_timestamp_seconds      when the latest verification restore ran
 *   pgfleet_verification_last_success                1 if it passed, 0 if it failed or none ran
 *   pgfleet_backup_next_expected_bytes               what its next backup is expected to need (newest × 1.5; lib/fleet/space.ts)
 *   pgfleet_backup_root_free_bytes                   free bytes on backup_root's filesystem (the same for every target;
 *                                                    alert when below the sum of the enabled targets' next_expected)
 *   pgfleet_offsite_enabled                          1 when the target has offsite configured
 *   pgfleet_offsite_last_success_timestamp_seconds   when the newest backup whose offsite copy is confirmed finished
 *   pgfleet_offsite_pending_count                    complete backups whose offsite copy is not confirmed ("offsite pending")
 * The offsite series come from the local metadata (`offsite.status`), never from the bucket: a
 * metrics run makes no network request.
 *
 * Point-in-time recovery, one series per PITR target (its cluster's values; 0 and NaN as below; a target
 * without PITR has only pgfleet_pitr_enabled 0),
 * from `pitr` (lib/pitr/status.ts pitrSeries: the cluster's archive, and pg_stat_archiver):
 *   pgfleet_pitr_enabled                             1 when database.pitr is enabled
 *   pgfleet_pitr_window_start_timestamp_seconds      the restorable window's earliest point (0: none)
 *   pgfleet_pitr_window_end_timestamp_seconds        its latest point (0: none)
 *   pgfleet_pitr_wal_last_archived_timestamp_seconds when the newest archived WAL segment was archived (0: none)
 *   pgfleet_pitr_wal_newest_age_seconds              its age when the file was written (NaN: none)
 *   pgfleet_pitr_archiver_failed_count               pg_stat_archiver.failed_count (NaN: unreadable)
 *   pgfleet_pitr_archiver_failing                    1 when its last failure is newer than its last success
 *   pgfleet_pitr_base_backup_count                   base backups stored
 *   pgfleet_pitr_chain_verification_last_success    1 if the latest chain verification passed, 0 if it failed or none ran
 */
import type { Target } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import { writeFileAtomic } from '../core/fsutil.js';
import type { VerificationResult } from '../formats/metadata.js';
import type { StoredBackup } from '../storage/repository.js';
import { diskOutlook, SPACE_MARGIN, type DiskOutlook } from './space.js';

/** What status and metrics know of a target, from its complete backups (newest first). */
export interface TargetFacts {
  count: number;
  /** Damaged backups (lib/storage/repository.ts survey). */
  damaged: number;
  latest: StoredBackup | null;
  previous: StoredBackup | null;
  /** The most recent verification of any of its backups, and which backup it was. */
  verification: (VerificationResult & { backup_id: string }) | null;
  /** From the local metadata: the newest backup whose offsite copy is confirmed, and how many are offsite pending. */
  offsite: { latest: StoredBackup | null; pending: number };
}

export function targetFacts(backups: readonly StoredBackup[], damaged: readonly unknown[] = []): TargetFacts {
  let verification: TargetFacts['verification'] = null;
  for (const b of backups) {
    const v = b.meta.verification;
    if (v && (!verification || Date.parse(v.verified_at) > Date.parse(verification.verified_at))) verification = { ...v, backup_id: b.meta.id };
  }
  const offsite = { latest: backups.find((b) => b.meta.offsite?.status === 'uploaded') ?? null, pending: backups.filter((b) => b.meta.offsite?.status === 'pending').length };
  return { count: backups.length, damaged: damaged.length, latest: backups[0] ?? null, previous: backups[1] ?? null, verification, offsite };
}

const FAMILIES: [name: string, help: string, value: (t: Target, f: TargetFacts, disk: DiskOutlook | null) => number][] = [
  ['pgfleet_backup_enabled', 'Whether scheduled backups are enabled for the target (1) or not (0).', (t) => (t.backup.enabled ? 1 : 0)],
  ['pgfleet_backup_count', 'Complete backups stored for the target.', (_t, f) => f.count],
  ['pgfleet_backup_damaged_count', 'Damaged backups of the target (metadata without its dump or of another size, a dump without metadata): never restored.', (_t, f) => f.damaged],
  ['pgfleet_backup_last_success_timestamp_seconds', 'When the newest complete backup finished, Unix time (0: none).', (_t, f) => (f.latest ? Date.parse(f.latest.meta.finished_at) / 1000 : 0)],
  ['pgfleet_backup_last_duration_seconds', 'How long the newest complete backup took (0: none).', (_t, f) => (f.latest ? f.latest.meta.duration_ms / 1000 : 0)],
  ['pgfleet_backup_last_size_bytes', 'Stored size of the newest complete backup (0: none).', (_t, f) => f.latest?.meta.size_bytes ?? 0],
  ['pgfleet_verification_last_timestamp_seconds', 'When the latest verification restore ran, Unix time (0: never).', (_t, f) => (f.verification ? Date.parse(f.verification.verified_at) / 1000 : 0)],
  ['pgfleet_verification_last_success', 'Whether the latest verification restore passed (1) or failed or never ran (0).', (_t, f) => (f.verification?.status === 'passed' ? 1 : 0)],
  ['pgfleet_offsite_enabled', 'Whether the target has offsite copies configured (1) or not (0).', (t) => (t.offsite ? 1 : 0)],
  ['pgfleet_offsite_last_success_timestamp_seconds', 'When the newest backup whose offsite copy is confirmed finished, Unix time (0: none).', (_t, f) => (f.offsite.latest ? Date.parse(f.offsite.latest.meta.finished_at) / 1000 : 0)],
  ['pgfleet_backup_next_expected_bytes', "What the target's next backup is expected to need on backup_root: its newest complete backup's size x 1.5 (0: never backed up).", (_t, f) => (f.latest ? Math.ceil(f.latest.meta.size_bytes * SPACE_MARGIN) : 0)],
  ['pgfleet_backup_root_free_bytes', 'Bytes free (for an unprivileged writer) on the filesystem of backup_root, where the target\'s backups go (NaN: not a local directory or unreadable).', (_t, _f, d) => d?.free_bytes ?? NaN],
  ['pgfleet_offsite_pending_count', 'Complete backups whose offsite copy is not confirmed (offsite pending).', (_t, f) => f.offsite.pending],
];

/** A target's point-in-time recovery as the metrics see it (null: not enabled). Seconds are Unix time. */
export interface PitrSeries {
  windowStart: number | null;
  windowEnd: number | null;
  walLastArchived: number | null;
  walNewestAge: number | null;
  archiverFailedCount: number | null;
  archiverFailing: boolean;
  baseBackups: number;
  chainVerified: boolean;
}

const PITR_FAMILIES: [name: string, help: string, value: (p: PitrSeries | null) => number][] = [
  ['pgfleet_pitr_enabled', "Whether point-in-time recovery is enabled for the target's cluster (1) or not (0).", (p) => (p ? 1 : 0)],
  ['pgfleet_pitr_window_start_timestamp_seconds', "The restorable window's earliest point, Unix time (0: none).", (p) => p?.windowStart ?? 0],
  ['pgfleet_pitr_window_end_timestamp_seconds', "The restorable window's latest point, Unix time (0: none).", (p) => p?.windowEnd ?? 0],
  ['pgfleet_pitr_wal_last_archived_timestamp_seconds', 'When the newest archived WAL segment was archived, Unix time (0: none).', (p) => p?.walLastArchived ?? 0],
  ['pgfleet_pitr_wal_newest_age_seconds', 'Age of the newest archived WAL segment when this file was written (NaN: none or not enabled).', (p) => p?.walNewestAge ?? NaN],
  ['pgfleet_pitr_archiver_failed_count', "pg_stat_archiver.failed_count of the target's cluster (NaN: unreadable or not enabled).", (p) => p?.archiverFailedCount ?? NaN],
  ['pgfleet_pitr_archiver_failing', 'Whether the archiver is failing: its last failure is newer than its last success (1) or not (0).', (p) => (p?.archiverFailing ? 1 : 0)],
  ['pgfleet_pitr_base_backup_count', "Base backups stored for the target's cluster.", (p) => p?.baseBackups ?? 0],
  ['pgfleet_pitr_chain_verification_last_success', 'Whether the latest verification of a base backup and its WAL chain passed (1) or failed or never ran (0).', (p) => (p?.chainVerified ? 1 : 0)],
];

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** The textfile (Prometheus text exposition format 0.0.4). Pure. `disk`: backup_root's free and needed bytes (lib/fleet/space.ts). */
export function renderMetrics(rows: readonly { target: Target; facts: TargetFacts; pitr?: PitrSeries | null }[], disk: DiskOutlook | null = null): string {
  const lines: string[] = [];
  const labels = (t: Target) => `{project="${label(t.project)}",environment="${label(t.environment)}"}`;
  for (const [name, help, value] of FAMILIES) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const { target, facts } of rows) lines.push(`${name}${labels(target)} ${value(target, facts, disk)}`);
  }
  for (const [name, help, value] of PITR_FAMILIES) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    // A target without PITR has only pgfleet_pitr_enabled 0: the other series do not apply to it (absent, not NaN).
    for (const { target, pitr } of rows) if (pitr || name === 'pgfleet_pitr_enabled') lines.push(`${name}${labels(target)} ${value(pitr ?? null)}`);
  }
  return lines.join('\n') + '\n';
}

/** Where writeMetrics gets a PITR target's series (lib/pitr/status.ts pitrSeries); it may throw (then NaN and 0). */
export type PitrSource = (t: Target) => Promise<PitrSeries | null>;

const UNKNOWN_PITR: PitrSeries = { windowStart: null, windowEnd: null, walLastArchived: null, walNewestAge: null, archiverFailedCount: null, archiverFailing: false, baseBackups: 0, chainVerified: false };

/** Rewrite the textfile from the repository. Returns its path, or null when unset or it failed. `pitr`: the PITR targets' series (without it, they are written as unknown). */
export async function writeMetrics(ctx: Pick<Context, 'config' | 'repo' | 'logger' | 'clock'>, pitr?: PitrSource): Promise<string | null> {
  const file = ctx.config.platform.metricsTextfile;
  if (!file) return null;
  try {
    const rows = await Promise.all(
      ctx.config.targets.map(async (target) => {
        const { complete, damaged } = await ctx.repo.survey(target.project, target.environment, ctx.clock());
        const p = !target.pitr ? null : pitr ? await pitr(target).catch(() => UNKNOWN_PITR) : UNKNOWN_PITR;
        return { target, facts: targetFacts(complete, damaged), pitr: p };
      }),
    );
    await writeFileAtomic(file, renderMetrics(rows, await diskOutlook(ctx).catch(() => null)), 0o644);
    ctx.logger.debug({ file, targets: rows.length }, 'metrics written');
    return file;
  } catch (e) {
    ctx.logger.error({ file, error: (e as Error)?.message ?? String(e) }, 'metrics textfile could not be written');
    return null;
  }
}
