/**
 * `pgfleet pitr recover <project> <env> --to <ISO-8601 time | latest> --out FILE`: the target's
 * database as it was at that time, as a pg_dump custom-format file (lib/pitr/recover.ts: a
 * temporary instance in the tenant's container, always removed). The live cluster is not touched;
 * restore the file with the safe restore (`pgfleet restore <project> <env> FILE`), or do both in
 * one step with `pgfleet restore <project> <env> --to <time>`. Prints the file's path last.
 */
import path from 'node:path';
import { findTarget } from '../config/load.js';
import { clusterOf } from '../pitr/cluster.js';
import { parsePointInTime, recoverDatabase, takeInLanded, type Recovered } from '../pitr/recover.js';
import type { Context } from '../runtime/context.js';

export async function runPitrRecover(ctx: Context, o: { project: string; environment: string; to: string; out: string }): Promise<Recovered> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const cluster = clusterOf(ctx.config, target);
  const to = parsePointInTime(o.to);
  const outFile = path.resolve(o.out);
  await takeInLanded(ctx, cluster);
  const r = await recoverDatabase(ctx, cluster, { to, database: target.database, outFile });
  ctx.logger.info({ container: cluster.container, base: r.base.id, wal: r.wal, to: r.plan.point }, `${target.database} recovered to ${r.plan.point} from ${r.base.id} and ${r.wal} WAL file(s)`);
  ctx.out(`restore it safely with: pgfleet restore ${o.project} ${o.environment} ${outFile}`);
  ctx.out(outFile);
  return r;
}
