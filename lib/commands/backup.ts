/** `pgfleet backup <project> <env> [--type T]`: one backup under the target's lock; prints its path. */
import { takeBackup, type BackupOptions } from '../backup/take.js';
import { findTarget } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import { withLock } from '../storage/lock.js';
import { retainAfterBackup } from './prune.js';
import { writeMetrics } from '../fleet/metrics.js';
import type { StoredBackup } from '../storage/repository.js';

export interface BackupCommandOptions extends BackupOptions {
  project: string;
  environment: string;
}

export async function runBackup(ctx: Context, o: BackupCommandOptions): Promise<StoredBackup> {
  const target = findTarget(ctx.config, o.project, o.environment);
  // Lock, dump, record, then retention (never before the new backup is complete).
  const b = await withLock(ctx.repo.targetDir(target.project, target.environment), target, `backup --type ${o.type}`, async () => {
    const taken = await takeBackup(ctx, target, o);
    await retainAfterBackup(ctx, target);
    return taken;
  });
  await writeMetrics(ctx); // never throws: metrics must not fail a backup
  ctx.out(b.path);
  return b;
}
