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

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** The textfile (Prometheus text exposition format 0.0.4). Pure. `disk`: backup_root's free and needed bytes (lib/fleet/space.ts). */
export function renderMetrics(rows: readonly { target: Target; facts: TargetFacts }[], disk: DiskOutlook | null = null): string {
  const lines: string[] = [];
  for (const [name, help, value] of FAMILIES) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const { target, facts } of rows) lines.push(`${name}{project="${label(target.project)}",environment="${label(target.environment)}"} ${value(target, facts, disk)}`);
  }
  return lines.join('\n') + '\n';
}

/** Rewrite the textfile from the repository. Returns its path, or null when unset or it failed. */
export async function writeMetrics(ctx: Pick<Context, 'config' | 'repo' | 'logger' | 'clock'>): Promise<string | null> {
  const file = ctx.config.platform.metricsTextfile;
  if (!file) return null;
  try {
    const rows = await Promise.all(
      ctx.config.targets.map(async (target) => {
        const { complete, damaged } = await ctx.repo.survey(target.project, target.environment, ctx.clock());
        return { target, facts: targetFacts(complete, damaged) };
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
