/**
 * `pgfleet offsite sync [<project> [<env>]] [--dry-run]`: upload what is offsite pending (catch-up
 * after an outage), per target with offsite configured, under its lock (lib/offsite/sync.ts).
 *
 *   select the targets with offsite → per target, under its lock: plan, upload each pending
 *   backup, abort the unfinished uploads interrupted runs left → one line per target and per backup → metrics
 *
 * Then each PITR cluster of those targets (lib/pitr/offsite.ts): its base backups not yet in the
 * bucket and the WAL the bucket lacks (from the oldest base backup it holds), one line per
 * cluster and bucket; no lock (the uploads are idempotent, each object before its record, so a
 * concurrent intake's upload of the same file is harmless), a failure exits 1.
 *
 * Idempotent: a second run finds nothing pending. A dry run takes no lock and writes nothing
 * (local and bucket stores read-only): it lists what would be uploaded. Exit 0 when every pending
 * backup now has its copy; 1 when one failed (it stays pending, its error recorded and shown);
 * 3 when a target was busy (skipped, the others go on); 130 when interrupted.
 */
import { selectTargets } from '../config/load.js';
import { EXIT, InterruptedError, LockBusyError, UsageError, type ExitCode } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { writeMetrics } from '../fleet/metrics.js';
import { pitrSeries } from '../pitr/status.js';
import { pitrClusters } from '../pitr/cluster.js';
import { clusterSyncFailed, clusterSyncLine, syncCluster, type ClusterSync } from '../pitr/offsite.js';
import { syncTarget, type TargetSync } from '../offsite/sync.js';
import { dryRunContext, type Context } from '../runtime/context.js';
import { withLock } from '../storage/lock.js';

export interface OffsiteSyncResult {
  targets: (TargetSync | { project: string; environment: string; error: string; busy: boolean })[];
  /** Per PITR cluster and bucket: the base backups and WAL uploaded (in a dry run: to upload). */
  clusters: ClusterSync[];
  exitCode: ExitCode;
}

export async function runOffsiteSync(ctx: Context, o: { project?: string; environment?: string; dryRun?: boolean }): Promise<OffsiteSyncResult> {
  const targets = selectTargets(ctx.config, o.project, o.environment).filter((t) => t.offsite);
  if (!targets.length) throw new UsageError(`offsite sync: no target${o.project ? ` of ${o.project}${o.environment ? `/${o.environment}` : ''}` : ''} has offsite configured (platform.offsite or database.offsite)`);
  const results: OffsiteSyncResult['targets'] = [];
  const clusters: ClusterSync[] = [];
  for (const t of targets) {
    const name = `${t.project}/${t.environment}`;
    try {
      const r = o.dryRun ? await syncTarget(dryRunContext(ctx), t) : await withLock(ctx.repo.lockDir(t.project, t.environment), t, 'offsite sync', () => syncTarget(ctx, t));
      results.push(r);
      print(ctx, r);
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      const busy = e instanceof LockBusyError;
      results.push({ project: t.project, environment: t.environment, error: (e as Error).message, busy });
      ctx.out(`${name}: ${busy ? 'busy (another run holds its lock), skipped' : `FAILED: ${(e as Error).message}`}`);
      targetLogger(ctx.logger, t).error({ err: (e as Error).message }, busy ? 'offsite sync skipped: target busy' : 'offsite sync failed');
    }
  }
  let clusterFailed = false;
  for (const c of pitrClusters(ctx.config, targets)) {
    for (const r of await syncCluster(o.dryRun ? dryRunContext(ctx) : ctx, c)) {
      ctx.out(clusterSyncLine(r));
      clusterFailed ||= clusterSyncFailed(r);
      clusters.push(r);
    }
  }
  if (!o.dryRun) await writeMetrics(ctx, pitrSeries(ctx));
  const failed = clusterFailed || results.some((r) => ('error' in r && !r.busy) || ('items' in r && r.items.some((i) => i.status === 'pending')));
  const busy = results.some((r) => 'busy' in r && r.busy);
  return { targets: results, clusters, exitCode: failed ? EXIT.FAILED : busy ? EXIT.LOCKED : EXIT.OK };
}

function print(ctx: Context, r: TargetSync): void {
  const up = r.items.filter((i) => i.action === 'upload');
  const there = r.items.length - up.length;
  const failed = up.filter((i) => i.status === 'pending').length;
  const head = r.dryRun
    ? `would upload ${up.length}, already there ${there} (dry run)`
    : `uploaded ${up.length - failed}, already there ${there}${failed ? `, FAILED ${failed} (still pending)` : ''}`;
  ctx.out(`${r.project}/${r.environment}: ${r.items.length ? head : 'nothing pending'} → ${r.location}`);
  for (const i of r.items) {
    const what = r.dryRun ? (i.action === 'upload' ? 'upload' : 'mark uploaded (already there)') : i.status === 'pending' ? `FAILED: ${i.error}` : i.action === 'upload' ? 'uploaded' : 'already there, marked uploaded';
    ctx.out(`  ${i.id}  ${what}`);
  }
  for (const k of r.abandoned) ctx.out(`  ${r.dryRun ? 'abort' : 'aborted'}  unfinished upload of ${k}`);
}
