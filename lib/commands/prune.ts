/**
 * `pgfleet prune [<project> [<env>]] [--dry-run]`: apply retention (lib/retention.ts) to each
 * target, under its lock, and clean leftover temp files older than a day.
 *
 * Promises: only complete backups are counted or deleted; the newest and the newest verified are
 * never deleted; a backup goes metadata first (repo.remove), so a half-removed one is never taken
 * for whole. A dry run takes no lock and writes nothing: it lists what would go and which rule
 * keeps each backup that stays. A busy target is skipped and reported, the others go on.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { selectTargets, type Target } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import { pinnedByDeployments } from '../storage/manifests.js';
import { EXIT, LockBusyError, type ExitCode } from '../core/errors.js';
import { TEMP_PREFIX } from '../core/fsutil.js';
import { acquireLock } from '../storage/lock.js';
import { targetLogger } from '../core/log.js';
import { writeMetrics } from '../fleet/metrics.js';
import { planRetention, type RetentionInput, type RetentionPlan } from '../fleet/retention.js';

const TEMP_MAX_AGE_MS = 86_400_000;

export interface TargetPrune extends RetentionPlan {
  project: string;
  environment: string;
  dryRun: boolean;
  /** Leftover temp files (names) removed, or that a real run would remove. */
  tempFiles: string[];
}

/**
 * Plan and (unless dryRun) apply retention for one target. The caller holds the target's lock
 * for a real run. `upcoming` adds a backup that does not exist yet (scheduled-backup's dry run).
 */
export async function pruneTarget(ctx: Context, target: Target, o: { dryRun?: boolean; upcoming?: RetentionInput } = {}): Promise<TargetPrune> {
  const { project, environment } = target;
  const log = targetLogger(ctx.logger, target);
  const now = ctx.clock();
  const backups = await ctx.repo.list(project, environment);
  const pinned = await pinnedByDeployments(ctx.repo, project, environment);
  const plan = planRetention([...backups.map((b) => b.meta), ...(o.upcoming ? [o.upcoming] : [])], target.backup, now, pinned);
  const tempFiles = await leftoverTemps(ctx, target, now);
  const result: TargetPrune = { project, environment, dryRun: !!o.dryRun, ...plan, tempFiles };
  if (o.dryRun) return result;

  const byId = new Map(backups.map((b) => [b.meta.id, b]));
  for (const r of plan.remove) {
    const b = byId.get(r.id);
    if (!b) continue;
    await ctx.repo.remove(b);
    log.info({ id: r.id, reason: r.reason }, 'backup removed by retention');
  }
  for (const f of tempFiles) {
    await fs.rm(f, { force: true });
    log.info({ file: path.basename(f) }, 'leftover temp file removed');
  }
  return result;
}

/** Temp files (TEMP_PREFIX) in the target's directories last modified more than a day before now. */
async function leftoverTemps(ctx: Context, target: Target, now: Date): Promise<string[]> {
  const dirs = [ctx.repo.databaseDir(target.project, target.environment), ctx.repo.deploymentsDir(target.project, target.environment)];
  const found: string[] = [];
  for (const dir of dirs) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const n of names.filter((n) => n.startsWith(TEMP_PREFIX))) {
      const st = await fs.stat(path.join(dir, n)).catch(() => null);
      if (st && now.getTime() - st.mtimeMs > TEMP_MAX_AGE_MS) found.push(path.join(dir, n));
    }
  }
  return found;
}

export interface PruneResult {
  targets: (TargetPrune | { project: string; environment: string; error: string; busy: boolean })[];
  exitCode: ExitCode;
}

export async function runPrune(ctx: Context, o: { project?: string; environment?: string; dryRun?: boolean }): Promise<PruneResult> {
  const targets = selectTargets(ctx.config, o.project, o.environment);
  const results: PruneResult['targets'] = [];
  for (const t of targets) {
    const name = `${t.project}/${t.environment}`;
    try {
      let r: TargetPrune;
      if (o.dryRun) r = await pruneTarget(ctx, t, { dryRun: true });
      else {
        const lock = await acquireLock(ctx.repo.targetDir(t.project, t.environment), t, 'prune');
        try {
          r = await pruneTarget(ctx, t);
        } finally {
          await lock.release();
        }
      }
      results.push(r);
      printPrune(ctx, r);
    } catch (e) {
      const busy = e instanceof LockBusyError;
      results.push({ project: t.project, environment: t.environment, error: (e as Error).message, busy });
      ctx.out(`${name}: ${busy ? 'busy (another run holds its lock), skipped' : `FAILED: ${(e as Error).message}`}`);
      targetLogger(ctx.logger, t).error({ error: (e as Error).message }, busy ? 'prune skipped: target busy' : 'prune failed');
    }
  }
  if (!o.dryRun) await writeMetrics(ctx);
  const failed = results.filter((r) => 'error' in r);
  const exitCode = failed.some((r) => !r.busy) ? EXIT.FAILED : failed.length ? EXIT.LOCKED : EXIT.OK;
  return { targets: results, exitCode };
}

function printPrune(ctx: Context, r: TargetPrune): void {
  const verb = r.dryRun ? 'would remove' : 'removed';
  ctx.out(`${r.project}/${r.environment}: ${verb} ${r.remove.length}, ${r.dryRun ? 'would keep' : 'kept'} ${r.keep.length}${r.dryRun ? ' (dry run)' : ''}`);
  for (const x of r.remove) ctx.out(`  ${r.dryRun ? 'remove' : 'removed'}  ${x.id}  ${x.reason}`);
  if (r.dryRun) for (const k of r.keep) ctx.out(`  keep    ${k.id}  ${k.reasons.join('; ')}`);
  for (const f of r.tempFiles) ctx.out(`  ${r.dryRun ? 'remove' : 'removed'}  ${path.basename(f)}  leftover temp file older than a day`);
}

/**
 * Retention right after a successful backup (the caller holds the target's lock). Its failure is
 * logged and does not undo or fail the backup that was just taken.
 */
export async function retainAfterBackup(ctx: Context, target: Target): Promise<string[]> {
  try {
    return (await pruneTarget(ctx, target)).remove.map((r) => r.id);
  } catch (e) {
    targetLogger(ctx.logger, target).error({ err: (e as Error)?.message ?? String(e) }, 'retention after the backup failed; the backup is kept, run prune later');
    return [];
  }
}
