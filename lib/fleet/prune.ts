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
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Target } from '../config/load.js';
import { TEMP_PREFIX } from '../core/fsutil.js';
import { targetLogger } from '../core/log.js';
import type { Context } from '../runtime/context.js';
import { pinnedByDeployments } from '../storage/manifests.js';
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
  /** Plan only: list what would go, write nothing. */
  dryRun?: boolean;
  /** A backup that does not exist yet, planned as if it did (scheduled-backup's dry run). */
  upcoming?: RetentionInput;
}

/** Plan and (unless dryRun) apply retention for one target. */
export async function pruneTarget(ctx: Context, target: Target, o: PruneOptions = {}): Promise<TargetPrune> {
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
