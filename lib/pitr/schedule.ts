/**
 * What `scheduled-backup` does for the PITR clusters of the targets it runs (after their dumps):
 *
 *   per cluster, one after another: take the landed WAL in (intake.ts, under the cluster's lock)
 *   → a base backup when the newest is older than base_backup_every, or there is none
 *   → where its targets have offsite: what the bucket lacks uploaded (lib/pitr/offsite.ts: pending
 *     base backups and WAL; a failed upload leaves it pending, logged, the cluster still 'ok')
 *   → the cluster's retention (lib/pitr/retention.ts), only when the intake and the base backup
 *     succeeded, then, after a good upload, the same rules over its copies in each bucket (under
 *     the cluster's lock; a failure there is logged, prune applies it again)
 *
 * A failed intake (a gap, a conflicting duplicate) fails the cluster but still takes a due base
 * backup. Never throws for one cluster's failure: each outcome is a ClusterRun (a busy lock: 'busy'), so
 * one cluster never stops another, nor the dumps' report. A dry run reads only: what is waiting
 * and whether a base backup is due.
 */
import { LockBusyError } from '../core/errors.js';
import { humanSize } from '../core/text.js';
import type { Context } from '../runtime/context.js';
import { takeBaseBackup } from './basebackup.js';
import { archiveOf, withClusterLock, type Cluster } from './cluster.js';
import { landed, takeInWal } from './intake.js';
import { clusterSyncFailed, destinations, pruneBucketCluster, syncCluster } from './offsite.js';
import { pruneCluster } from './retention.js';

export interface ClusterRun {
  container: string;
  result: 'ok' | 'failed' | 'busy' | 'dry-run';
  /** WAL files taken in (in a dry run: waiting). */
  wal: number;
  /** The base backup taken (or, in a dry run, 'due'); absent: none was due. */
  base?: { id: string; size_bytes: number } | 'due';
  /** What the cluster's retention removed (absent: it did not run). */
  pruned?: { bases: number; wal: number };
  /** Offsite (absent: no offsite): WAL files and base backups uploaded, and whether any is still pending. */
  offsite?: { wal: number; bases: number; pending: boolean };
  error?: string;
}

async function baseDue(ctx: Context, c: Cluster): Promise<boolean> {
  const newest = (await archiveOf(ctx, c).baseBackups()).items.map((b) => b.finished_at).sort().at(-1);
  return !newest || ctx.clock().getTime() - Date.parse(newest) >= c.baseBackupEveryMs;
}

export async function pitrCycle(ctx: Context, clusters: readonly Cluster[], o: { dryRun: boolean }): Promise<ClusterRun[]> {
  const runs: ClusterRun[] = [];
  for (const c of clusters) {
    const run: ClusterRun = { container: c.container, result: o.dryRun ? 'dry-run' : 'ok', wal: 0 };
    runs.push(run);
    try {
      if (o.dryRun) {
        run.wal = (await landed(c.archiveDir)).length;
        if (await baseDue(ctx, c)) run.base = 'due';
        continue;
      }
      // A failed intake (a gap) still gets its due base backup: a new one is what a gap needs.
      const intake = await withClusterLock(ctx, c, 'scheduled-backup', () => takeInWal(ctx, archiveOf(ctx, c), c.archiveDir)).catch((e: unknown) => e as Error);
      if (!(intake instanceof Error)) run.wal = intake.taken.length;
      else if (intake instanceof LockBusyError || ctx.signal?.aborted) throw intake;
      if (await baseDue(ctx, c)) {
        const m = await takeBaseBackup(ctx, c, 'scheduled-backup');
        run.base = { id: m.id, size_bytes: m.size_bytes };
      }
      const synced = await syncCluster(ctx, c);
      if (synced.length) run.offsite = { wal: synced.reduce((n, r) => n + r.wal.length, 0), bases: synced.reduce((n, r) => n + r.bases.filter((b) => b.status === 'uploaded' && b.action === 'upload').length, 0), pending: synced.some(clusterSyncFailed) };
      if (intake instanceof Error) throw intake;
      const p = await pruneCluster(ctx, c, 'scheduled-backup');
      run.pruned = { bases: p.remove.length, wal: p.wal.remove.length };
      // The bucket's retention after a good upload, as for dumps: never failing the cluster (prune applies it again).
      for (const t of run.offsite && !run.offsite.pending ? destinations(c) : [])
        await withClusterLock(ctx, c, 'scheduled-backup', () => pruneBucketCluster(ctx, c, t)).catch((e: unknown) => {
          if (ctx.signal?.aborted) throw e;
          ctx.logger.warn({ container: c.container, err: (e as Error).message }, 'offsite retention of the cluster failed; prune applies it again');
        });
    } catch (e) {
      if (ctx.signal?.aborted) throw e;
      run.result = e instanceof LockBusyError ? 'busy' : 'failed';
      run.error = (e as Error).message;
      ctx.logger[run.result === 'busy' ? 'warn' : 'error']({ container: c.container, error: run.error }, `pitr: cluster ${c.container} ${run.result}`);
    }
  }
  return runs;
}

/** One line per cluster for the run's summary. */
export function clusterLines(runs: readonly ClusterRun[]): string[] {
  return runs.map((r) => {
    const base = r.base === 'due' ? 'base backup due' : r.base ? `base backup ${r.base.id} (${humanSize(r.base.size_bytes)})` : 'no base backup due';
    const wal = r.result === 'dry-run' ? `${r.wal} WAL file(s) waiting` : `${r.wal} WAL file(s) taken in`;
    const pruned = r.pruned && (r.pruned.bases || r.pruned.wal) ? `, retention removed ${r.pruned.bases} base backup(s) and ${r.pruned.wal} WAL file(s)` : '';
    const offsite = r.offsite ? `, offsite ${r.offsite.bases} base backup(s) and ${r.offsite.wal} WAL file(s) uploaded${r.offsite.pending ? ' (offsite pending)' : ''}` : '';
    return `cluster ${r.container}: ${r.result.toUpperCase()}: ${r.error ?? `${wal}, ${base}${offsite}${pruned}`}`;
  });
}
