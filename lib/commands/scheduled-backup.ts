/**
 * `pgfleet scheduled-backup [--project P] [--env E] [--dry-run] [--concurrency N]`: what cron runs
 * nightly. Every enabled target, at most N at once (platform.concurrency, default 2):
 *
 *   per target (lib/backup/cycle.ts): lock (held → "busy", not waited on) → takeBackup
 *     → retention for that target → unlock; the snapshot sessions are kept between targets and
 *     moved to the next one's database (lib/postgres/pool.ts: one per worker and server, role and
 *     credentials), quit when the targets are done
 *   then: each PITR cluster of those targets (lib/pitr/schedule.ts): WAL taken in, a base backup
 *     where base_backup_every says it is due (a cluster's failure fails the run, named "cluster C")
 *   then: summary table · metrics textfile · webhook
 *
 * Promises: one target's failure never stops the others; retention runs only after that target's
 * backup succeeded, and a retention failure marks the target failed ("backup <id> kept, but
 * retention failed: …"; the backup stays); no enabled target among those selected is a usage
 * error (exit 2: nothing would be backed up) unless `allowEmpty`; the exit code is 1 when any target failed (the summary and the log name them),
 * 3 when none failed but some were busy, 0 otherwise. A dry run takes no lock, creates no file or
 * directory, and sends nothing: it lists the targets and what retention would delete once
 * tonight's backup exists.
 */
import { backupCycle } from '../backup/cycle.js';
import { requireEnabled, selectTargets, type Target } from '../config/load.js';
import { dryRunContext, type Context } from '../runtime/context.js';
import { EXIT, LockBusyError, type ExitCode } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { writeMetrics } from '../fleet/metrics.js';
import { pitrSeries } from '../pitr/status.js';
import { notify } from '../fleet/notify.js';
import { backupStem } from '../storage/repository.js';
import { humanSize, renderTable } from '../core/text.js';
import { Board } from '../core/board.js';
import { Terminal } from '../core/terminal.js';
import { pruneTarget } from '../fleet/prune.js';
import { pitrClusters } from '../pitr/cluster.js';
import { clusterLines, pitrCycle } from '../pitr/schedule.js';
import { SessionPool } from '../postgres/pool.js';

export interface TargetRun {
  project: string;
  environment: string;
  result: 'ok' | 'failed' | 'busy' | 'skipped' | 'dry-run';
  id?: string;
  path?: string;
  size_bytes?: number;
  duration_ms: number;
  /** Backups retention removed after this one (or would remove, in a dry run). */
  removed?: string[];
  /** The new backup's offsite copy: uploaded, pending (its upload failed; the backup is ok), or null without offsite. */
  offsite?: 'uploaded' | 'pending' | null;
  error?: string;
}

export interface ScheduledBackupResult {
  targets: TargetRun[];
  failed: string[];
  exitCode: ExitCode;
}

export async function runScheduledBackup(ctx: Context, o: { project?: string; environment?: string; dryRun?: boolean; concurrency?: number; allowEmpty?: boolean }): Promise<ScheduledBackupResult> {
  const selected = selectTargets(ctx.config, o.project, o.environment);
  requireEnabled(ctx.config, selected, { allowEmpty: o.allowEmpty, command: 'scheduled-backup' });
  const targets = selected.filter((t) => t.backup.enabled);
  const concurrency = Math.max(1, o.concurrency ?? ctx.config.platform.concurrency);
  ctx.logger.info({ targets: targets.length, concurrency, dry_run: !!o.dryRun }, 'scheduled-backup started');

  // A dry run plans each target's retention through the same code, on a repository that refuses writes.
  const dry = dryRunContext(ctx);
  const runs: TargetRun[] = new Array(targets.length);
  // On a terminal, a row per target as they run and finish; the summary below stays the record.
  const board = new Board(o.dryRun ? Terminal.off() : ctx.term, targets.map((t) => `${t.project}/${t.environment}`), 'scheduled backup');
  let next = 0;
  const sessions = new SessionPool();
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      const key = `${targets[i].project}/${targets[i].environment}`;
      board.start(key, 'backing up');
      runs[i] = ctx.signal?.aborted ? skipped(targets[i]) : o.dryRun ? await dryRunTarget(dry, targets[i]) : await backupTarget(ctx, targets[i], sessions);
      const r = runs[i];
      board.finish(key, r.result === 'ok' ? 'done' : r.result === 'failed' ? 'failed' : 'skipped', r.error ?? (r.size_bytes !== undefined ? `${r.id}  ${humanSize(r.size_bytes)}` : r.result), r.duration_ms);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker)).finally(() => board.close());
  } finally {
    await sessions.close();
  }
  if (!o.dryRun) ctx.logger.debug({ sessions_opened: sessions.counts.opened, sessions_reused: sessions.counts.reused }, 'snapshot sessions');

  const failed = runs.filter((r) => r.result === 'failed').map((r) => `${r.project}/${r.environment}`);
  const busy = runs.filter((r) => r.result === 'busy').map((r) => `${r.project}/${r.environment}`);
  printSummary(ctx, runs, !!o.dryRun);
  // Then the PITR clusters of these targets: WAL taken in, a base backup where due (lib/pitr/schedule.ts).
  const clusters = await pitrCycle(o.dryRun ? dry : ctx, pitrClusters(ctx.config, targets), { dryRun: !!o.dryRun });
  for (const l of clusterLines(clusters)) ctx.out(l);
  failed.push(...clusters.filter((c) => c.result === 'failed').map((c) => `cluster ${c.container}`));
  busy.push(...clusters.filter((c) => c.result === 'busy').map((c) => `cluster ${c.container}`));
  const summary = summaryLine(runs, failed, busy);
  ctx.out(summary);
  if (o.dryRun) return { targets: runs, failed, exitCode: EXIT.OK };

  if (failed.length) ctx.logger.error({ failed }, `scheduled-backup: ${failed.length} target(s) failed: ${failed.join(', ')}`);
  else ctx.logger.info({ busy }, 'scheduled-backup finished');
  await writeMetrics(ctx, pitrSeries(ctx));
  await notify(ctx, { command: 'scheduled-backup', ok: failed.length === 0 && busy.length === 0, summary, results: runs });
  return { targets: runs, failed, exitCode: failed.length ? EXIT.FAILED : busy.length ? EXIT.LOCKED : EXIT.OK };
}

/** One target: lock, back up, then retention (lib/backup/cycle.ts). Never throws: the outcome is the result. */
async function backupTarget(ctx: Context, t: Target, sessions: SessionPool): Promise<TargetRun> {
  const base = { project: t.project, environment: t.environment };
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  try {
    // No progress lines: those of parallel dumps would interleave.
    const { backup: b, removed, retentionError, offsite } = await backupCycle(ctx, t, { command: 'scheduled-backup', backup: { type: 'scheduled', sessions }, progress: false });
    const done: TargetRun = { ...base, result: 'ok', id: b.meta.id, path: b.path, size_bytes: b.meta.size_bytes, duration_ms: ms(), removed, offsite: offsite?.state.status ?? null };
    // The backup is good; retention failing must still be seen (the cycle's rule: the run fails).
    return retentionError ? { ...done, result: 'failed', error: retentionError.reason } : done;
  } catch (e) {
    if (e instanceof LockBusyError) {
      targetLogger(ctx.logger, t).warn({ error: e.message }, 'target busy: skipped');
      return { ...base, result: 'busy', duration_ms: ms(), error: e.message };
    }
    return { ...base, result: 'failed', duration_ms: ms(), error: (e as Error).message };
  }
}

/** What retention would remove once tonight's backup exists; `ctx` is a dry run's (read-only). */
async function dryRunTarget(ctx: Context, t: Target): Promise<TargetRun> {
  const now = ctx.clock();
  const upcoming = { id: backupStem(now), created_at: now.toISOString(), type: 'scheduled' as const, verification: null };
  try {
    const plan = await pruneTarget(ctx, t, { upcoming });
    return { project: t.project, environment: t.environment, result: 'dry-run', duration_ms: 0, removed: plan.remove.map((r) => r.id) };
  } catch (e) {
    return { project: t.project, environment: t.environment, result: 'failed', duration_ms: 0, error: (e as Error).message };
  }
}

function skipped(t: Target): TargetRun {
  return { project: t.project, environment: t.environment, result: 'skipped', duration_ms: 0, error: 'interrupted before it started' };
}

function summaryLine(runs: TargetRun[], failed: string[], busy: string[]): string {
  const count = (r: TargetRun['result']) => runs.filter((x) => x.result === r).length;
  const parts = [`${count('ok')} ok`];
  if (failed.length) parts.push(`${failed.length} failed (${failed.join(', ')})`);
  if (busy.length) parts.push(`${busy.length} busy (${busy.join(', ')})`);
  if (count('skipped')) parts.push(`${count('skipped')} skipped`);
  if (count('dry-run')) return `${runs.length} target(s) would be backed up (dry run)`;
  return `${runs.length} target(s): ${parts.join(', ')}`;
}

/** "nothing", "1: db_…", or "109: db_… … db_…" (newest … oldest); `prune --dry-run` lists each with its reason. */
function idRange(ids: string[]): string {
  if (ids.length === 0) return 'nothing';
  return ids.length <= 2 ? `${ids.length}: ${ids.join(', ')}` : `${ids.length}: ${ids[0]} … ${ids[ids.length - 1]}`;
}

function printSummary(ctx: Context, runs: TargetRun[], dryRun: boolean): void {
  const head = dryRun ? ['TARGET', 'WOULD', 'RETENTION WOULD REMOVE'] : ['TARGET', 'RESULT', 'SIZE', 'DURATION', 'BACKUP / ERROR'];
  const rows = runs.map((r) =>
    dryRun
      ? [`${r.project}/${r.environment}`, r.result === 'dry-run' ? 'back up' : r.result, r.error ?? idRange(r.removed ?? [])]
      : [
          `${r.project}/${r.environment}`,
          r.result.toUpperCase(),
          r.size_bytes !== undefined ? humanSize(r.size_bytes) : '-',
          `${(r.duration_ms / 1000).toFixed(1)} s`,
          r.error ?? `${r.id}${r.removed?.length ? ` (retention removed ${r.removed.length})` : ''}${r.offsite === 'pending' ? ' (offsite pending)' : ''}`,
        ],
  );
  for (const l of renderTable(head, rows)) ctx.out(l);
}
