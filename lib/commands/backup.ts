/**
 * `pgfleet backup <project> <env> [--type T] [--release R] [--lock-wait-timeout D]`: one backup.
 *
 *   find the target → under its lock: take the backup, then retention (lib/backup/cycle.ts)
 *   → refresh the metrics textfile → print the dump's path (the last stdout line)
 *
 * A failed backup leaves nothing and exits non-zero. A retention failure keeps the backup and
 * still prints its path, then exits 1 (the cycle's one rule).
 */
import { backupCycle } from '../backup/cycle.js';
import type { BackupOptions } from '../backup/take.js';
import { findTarget } from '../config/load.js';
import { writeMetrics } from '../fleet/metrics.js';
import { pitrSeries } from '../pitr/status.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';

export interface BackupCommandOptions extends BackupOptions {
  project: string;
  environment: string;
}

export async function runBackup(ctx: Context, o: BackupCommandOptions): Promise<StoredBackup> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const { backup, retentionError } = await backupCycle(ctx, target, { command: `backup --type ${o.type}`, backup: o });
  await writeMetrics(ctx, pitrSeries(ctx)); // never throws: metrics must not fail a backup
  ctx.out(backup.path);
  if (retentionError) throw retentionError;
  return backup;
}
