/**
 * `pgfleet pitr archive [<project> <env>]`: take the WAL landed by each PITR cluster (or the one
 * that target lives in) into the repository (lib/pitr/intake.ts), under the cluster's lock.
 *
 * A gap or a conflicting duplicate fails that cluster (exit 1), after the others were done.
 * Then, where the cluster's targets have offsite, the WAL the bucket lacks is uploaded
 * (lib/pitr/offsite.ts; base backups are basebackup's and offsite sync's), so a segment reaches
 * the bucket with the intake that took it in; a failed upload stays pending (logged, said in the output, caught up by the next run or
 * offsite sync) and does not fail the intake.
 */
import { findTarget } from '../config/load.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import { archiveOf, clusterOf, pitrClusters, withClusterLock } from '../pitr/cluster.js';
import { takeInWal } from '../pitr/intake.js';
import { clusterSyncFailed, clusterSyncLine, syncCluster } from '../pitr/offsite.js';
import type { Context } from '../runtime/context.js';

export async function runPitrArchive(ctx: Context, o: { project?: string; environment?: string }): Promise<{ exitCode: number }> {
  const clusters = o.project ? [clusterOf(ctx.config, findTarget(ctx.config, o.project, o.environment ?? ''))] : pitrClusters(ctx.config, ctx.config.targets);
  if (!clusters.length) throw new UsageError(`pitr archive: no project in ${ctx.config.file} enables database.pitr`);
  let failed = 0;
  for (const c of clusters) {
    try {
      const r = await withClusterLock(ctx, c, 'pitr archive', () => takeInWal(ctx, archiveOf(ctx, c), c.archiveDir));
      ctx.out(`${c.container}: ${r.taken.length} WAL file(s) taken in${r.newest ? `; newest segment ${r.newest.name}, archived ${r.newest.archivedAt}` : ''}`);
    } catch (e) {
      if (!(e instanceof PgfleetError) || ctx.signal?.aborted) throw e;
      failed++;
      ctx.logger.error({ container: c.container }, e.message);
      ctx.out(`${c.container}: FAILED: ${e.message}`);
    }
    for (const r of await syncCluster(ctx, c, { bases: false })) if (r.wal.length || r.bases.length || clusterSyncFailed(r)) ctx.out(clusterSyncLine(r));
  }
  return { exitCode: failed ? EXIT.FAILED : EXIT.OK };
}
