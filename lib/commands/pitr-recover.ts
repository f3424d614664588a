/**
 * `pgfleet pitr recover <project> <env> --to <ISO-8601 time> --out FILE`: the target's database as
 * it was at that time, as a pg_dump custom-format file (lib/pitr/recover.ts: a temporary instance
 * in the tenant's container, always removed). The live cluster is not touched; restore the file
 * with the safe restore (`pgfleet restore <project> <env> FILE`). Prints the file's path last.
 */
import path from 'node:path';
import { findTarget } from '../config/load.js';
import { UsageError } from '../core/errors.js';
import { clusterOf } from '../pitr/cluster.js';
import { recoverDatabase, type Recovered } from '../pitr/recover.js';
import type { Context } from '../runtime/context.js';

export async function runPitrRecover(ctx: Context, o: { project: string; environment: string; to: string; out: string }): Promise<Recovered> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const cluster = clusterOf(ctx.config, target);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(o.to) || Number.isNaN(Date.parse(o.to)))
    throw new UsageError(`--to must be an ISO-8601 time with its zone, like 2026-03-01T14:32:00Z, not ${JSON.stringify(o.to)}`);
  const outFile = path.resolve(o.out);
  const r = await recoverDatabase(ctx, cluster, { to: new Date(o.to), database: target.database, outFile });
  ctx.logger.info({ container: cluster.container, base: r.base.id, wal: r.wal, to: o.to }, `${target.database} recovered to ${o.to} from ${r.base.id} and ${r.wal} WAL file(s)`);
  ctx.out(`restore it safely with: pgfleet restore ${o.project} ${o.environment} ${outFile}`);
  ctx.out(outFile);
  return r;
}
