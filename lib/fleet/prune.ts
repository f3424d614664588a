/**
 * Retention applied to one target: the pure plan of lib/fleet/retention.ts over the target's
 * complete backups and the backups its deployment manifests pin, then the removals it decides, and
 * the temp files older than a day that interrupted writes left. Used by `prune`, and after every
 * backup by lib/backup/cycle.ts.
 *
 * Promises: only complete backups are counted or deleted; a damaged backup (repository survey) is
 * never counted as one and never deleted here, only reported in the plan (`damaged`), and removed
 * by removeDamaged() when someone names it; the newest and the newest verified are
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
import type { DamagedBackup } from '../storage/repository.js';
import type { Abandoned } from '../storage/store.js';
import { UsageError } from '../core/errors.js';
import { planRetention, type RetentionInput, type RetentionPlan } from './retention.js';

const TEMP_MAX_AGE_MS = 86_400_000;

export interface TargetPrune extends RetentionPlan {
  project: string;
  environment: string;
  dryRun: boolean;
  /** Leftover temp files (paths) removed, or that a real run would remove. */
  tempFiles: string[];
  /** Damaged backups: kept, counted as nothing, each with why (removed only by removeDamaged). */
  damaged: { id: string; problem: string }[];
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
  const { complete: backups, damaged } = await ctx.repo.survey(project, environment, now);
  if (damaged.length) log.warn({ damaged: damaged.map((d) => ({ id: d.id, problem: d.problem })) }, `${damaged.length} damaged backup(s) kept and not counted by retention; remove one with prune --remove-damaged <id>`);
  const pinned = await pinnedByDeployments(ctx.repo, project, environment);
  const plan = planRetention([...backups.map((b) => b.meta), ...(o.upcoming ? [o.upcoming] : [])], target.backup, now, pinned);
  const leftovers = await leftoverTemps(ctx, target, now);
  const dryRun = isReadOnly(ctx.repo.store);
  const result: TargetPrune = { project, environment, dryRun, ...plan, tempFiles: leftovers.map((a) => a.handle), damaged: damaged.map((d) => ({ id: d.id, problem: d.problem })) };
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

/**
 * Remove one damaged backup of the target by id, whatever of it exists (metadata first, then the
 * dump). Throws a UsageError when `id` is not a damaged backup of the target (a complete backup is
 * retention's to remove, never this). The caller holds the target's lock. Returns what it was.
 * On a read-only repository (a dry run) it finds and checks only.
 */
export async function removeDamaged(ctx: Context, target: Target, id: string): Promise<DamagedBackup> {
  const { complete, damaged } = await ctx.repo.survey(target.project, target.environment, ctx.clock());
  const d = damaged.find((x) => x.id === id);
  if (!d) {
    const whole = complete.some((b) => b.meta.id === id);
    throw new UsageError(`${target.project}/${target.environment}: ${id} is ${whole ? 'a complete backup; retention removes those, not --remove-damaged' : 'not a damaged backup of this target'}${damaged.length ? ` (damaged: ${damaged.map((x) => x.id).join(', ')})` : ''}`);
  }
  if (isReadOnly(ctx.repo.store)) return d;
  await ctx.repo.remove(d);
  targetLogger(ctx.logger, target).warn({ id, problem: d.problem }, 'damaged backup removed');
  return d;
}

/** What interrupted saves left under the target (the store's abandoned()), last written more than a day before now. */
async function leftoverTemps(ctx: Context, target: Target, now: Date): Promise<Abandoned[]> {
  const cutoff = new Date(now.getTime() - TEMP_MAX_AGE_MS);
  // abandoned() also gives fresh temps of a writer that is gone; the next backup sweeps those.
  return (await ctx.repo.abandoned(target.project, target.environment, cutoff)).filter((a) => a.startedAt < cutoff);
}
