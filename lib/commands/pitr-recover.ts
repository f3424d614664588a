/**
 * `pgfleet pitr recover <project> <env> --to <ISO-8601 time | latest> --out FILE`: the target's
 * database as it was at that time, as a pg_dump custom-format file (lib/pitr/recover.ts: a
 * temporary instance in the tenant's container, always removed). The live cluster is not touched;
 * restore the file with the safe restore (`pgfleet restore <project> <env> FILE`), or do both in
 * one step with `pgfleet restore <project> <env> --to <time>`. Prints the file's path last.
 * --from-offsite: from the bucket alone (lib/pitr/offsite.ts): planned over the copies of the
 * cluster's base backups and WAL, what the plan needs fetched, checked and decrypted into a
 * private directory, recovered from there (the local archive and landing directory not read).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { findTarget } from '../config/load.js';
import { clusterOf } from '../pitr/cluster.js';
import { noOffsite, planFromBucket, withBucketRecovery } from '../pitr/offsite.js';
import { parsePointInTime, recoverDatabase, takeInLanded, type Recovered, type RecoveryPlan } from '../pitr/recover.js';
import type { Context } from '../runtime/context.js';

export async function runPitrRecover(ctx: Context, o: { project: string; environment: string; to: string; out: string; fromOffsite?: boolean }): Promise<Recovered | { plan: RecoveryPlan }> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const cluster = clusterOf(ctx.config, target);
  const to = parsePointInTime(o.to);
  const outFile = path.resolve(o.out);
  if (o.fromOffsite) {
    if (!target.offsite) throw noOffsite(target);
    const bp = await planFromBucket(ctx, target, cluster, to);
    await withBucketRecovery(ctx, target.database, bp, (file) => fs.copyFile(file, outFile).then(() => fs.chmod(outFile, 0o600)));
    ctx.logger.info({ container: cluster.container, base: bp.plan.base.id, wal: bp.plan.wal.length, to: bp.plan.point, location: bp.location }, `${target.database} recovered to ${bp.plan.point} from ${bp.plan.base.id} and ${bp.plan.wal.length} WAL file(s) of ${bp.location}`);
    ctx.out(`restore it safely with: pgfleet restore ${o.project} ${o.environment} ${outFile}`);
    ctx.out(outFile);
    return { plan: bp.plan };
  }
  await takeInLanded(ctx, cluster);
  const r = await recoverDatabase(ctx, cluster, { to, database: target.database, outFile });
  ctx.logger.info({ container: cluster.container, base: r.base.id, wal: r.wal, to: r.plan.point }, `${target.database} recovered to ${r.plan.point} from ${r.base.id} and ${r.wal} WAL file(s)`);
  ctx.out(`restore it safely with: pgfleet restore ${o.project} ${o.environment} ${outFile}`);
  ctx.out(outFile);
  return r;
}
