/**
 * `pgfleet basebackup <project> <env>`: a base backup of the cluster that target lives in
 * (lib/pitr/basebackup.ts); then, where its targets have offsite, its copy (and the WAL the
 * bucket lacks) uploaded (lib/pitr/offsite.ts: a failed upload leaves it 'offsite pending', the
 * base backup stays complete, exit 0); prints the stored tar's path (the last stdout line).
 */
import { findTarget } from '../config/load.js';
import type { BaseBackupMetadata } from '../formats/pitr.js';
import { takeBaseBackup } from '../pitr/basebackup.js';
import { archiveOf, clusterOf } from '../pitr/cluster.js';
import { clusterSyncLine, syncCluster } from '../pitr/offsite.js';
import type { Context } from '../runtime/context.js';

export async function runBasebackup(ctx: Context, o: { project: string; environment: string }): Promise<BaseBackupMetadata> {
  const cluster = clusterOf(ctx.config, findTarget(ctx.config, o.project, o.environment));
  const meta = await takeBaseBackup(ctx, cluster);
  for (const r of await syncCluster(ctx, cluster)) ctx.out(clusterSyncLine(r));
  const a = archiveOf(ctx, cluster);
  ctx.logger.info({ container: cluster.container, id: meta.id, size_bytes: meta.size_bytes, start_lsn: meta.start_lsn, stop_lsn: meta.stop_lsn, databases: meta.databases }, `base backup ${meta.id} of ${cluster.container} stored`);
  ctx.out(a.store.pathOf ? a.store.pathOf(a.baseKey(meta.id)) : `${a.store.location}/${a.baseKey(meta.id)}`);
  return meta;
}
