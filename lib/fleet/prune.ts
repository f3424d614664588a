/**
 * Retention applied to one target: the pure plan of lib/fleet/retention.ts over the target's
 * complete backups and the backups its deployment manifests pin, then the removals it decides, and
 * the temp files older than a day that interrupted writes left. Used by `prune`, and after every
 * backup by lib/backup/cycle.ts.
 *
 * Promises: only complete backups are counted or deleted; the newest and the newest verified are
 * never deleted; a backup goes metadata first (repo.remove), so a half-removed one is never taken
 * for whole. The caller holds the target's lock for a real run; a dry run writes nothing. On a
 * failure (an unreadable directory, a removal refused) it throws; what was removed before stays
 * removed, and a later run picks up the rest.
 */
import path from 'node:path';
import type { Target } from '../config/load.js';
import { targetLogger } from '../core/log.js';
import type { Context } from '../runtime/context.js';
import { pinnedByDeployments } from '../storage/manifests.js';
import { isReadOnly } from '../storage/dryrun.js';
import type { Abandoned } from '../storage/store.js';
import { planRetention, type RetentionInput, type RetentionPlan } from './retention.js';

const TEMP_MAX_AGE_MS = 86_400_000;

export interface TargetPrune extends RetentionPlan {
  project: string;
  environment: string;
  dryRun: boolean;
  /** Leftover temp files (paths) removed, or that a real run would remove. */
  tempFiles: string[];
}

export interface PruneOptions {
  /** A backup that does not exist yet, planned as if it did (scheduled-backup's dry run). */
  upcoming?: RetentionInput;
}

/**
 * Plan and apply retention for one target. On a read-only repository (a dry run: dryRunContext)
 * it plans only: the plan is read through the same code, and the wrapper refuses any write.
 */
export async function pruneTarget(ctx: Context, target: Target, o: PruneOptions = {}): Promise<TargetPrune> {
  const { project, environment } = target;
  const log = targetLogger(ctx.logger, target);
  const now = ctx.clock();
  const backups = await ctx.repo.list(project, environment);
  const pinned = await pinnedByDeployments(ctx.repo, project, environment);
  const plan = planRetention([...backups.map((b) => b.meta), ...(o.upcoming ? [o.upcoming] : [])], target.backup, now, pinned);
  const leftovers = await leftoverTemps(ctx, target, now);
  const dryRun = isReadOnly(ctx.repo.store);
  const result: TargetPrune = { project, environment, dryRun, ...plan, tempFiles: leftovers.map((a) => a.handle) };
  if (dryRun) return result;

  const byId = new Map(backups.map((b) => [b.meta.id, b]));
  for (const r of plan.remove) {
    const b = byId.get(r.id);
    if (!b) continue;
    await ctx.repo.remove(b);
    log.info({ id: r.id, reason: r.reason }, 'backup removed by retention');
  }
  for (const a of leftovers) {
    await ctx.repo.removeAbandoned(a);
    log.info({ file: path.basename(a.handle) }, 'leftover temp file removed');
  }
  return result;
}

/** What interrupted saves left under the target (the store's abandoned()), last written more than a day before now. */
async function leftoverTemps(ctx: Context, target: Target, now: Date): Promise<Abandoned[]> {
  const cutoff = new Date(now.getTime() - TEMP_MAX_AGE_MS);
  // abandoned() also gives fresh temps of a writer that is gone; the next backup sweeps those.
  return (await ctx.repo.abandoned(target.project, target.environment, cutoff)).filter((a) => a.startedAt < cutoff);
}
