/**
 * `pgfleet pitr check <project> <env>`: is the cluster this target lives in archiving its WAL
 * safely into database.pitr.archive_dir?
 *
 *   the target's cluster → check it (lib/pitr/check.ts: settings, archiver, mount, a forced
 *   segment switch watched until it lands, the intake) → print each finding, then the exact
 *   settings and mount line to add → exit 1 when anything is wrong
 */
import { findTarget } from '../config/load.js';
import { EXIT, PgfleetError } from '../core/errors.js';
import { checkCluster, type CheckReport } from '../pitr/check.js';
import { clusterOf } from '../pitr/cluster.js';
import type { Context } from '../runtime/context.js';

export const CHECKED = ['wal_level', 'archive_mode', 'archive_command', 'archive_timeout', 'max_wal_senders'] as const;

export async function runPitrCheck(ctx: Context, o: { project: string; environment: string; waitMs?: number }): Promise<CheckReport> {
  const cluster = clusterOf(ctx.config, findTarget(ctx.config, o.project, o.environment));
  const r = await checkCluster(ctx, cluster, { waitMs: o.waitMs ?? 60_000 });
  const v = r.verdict;
  ctx.out(`cluster ${cluster.container} (${cluster.targets.map((t) => `${t.project}/${t.environment}`).join(', ')}), WAL landing in ${cluster.archiveDir}`);
  for (const k of CHECKED) ctx.out(`  ${k} = ${JSON.stringify(r.state.settings[k] ?? null)}`);
  const a = r.state.archiver;
  ctx.out(`  pg_stat_archiver: ${a.archived_count} archived (last ${a.last_archived_wal ?? 'none'}), ${a.failed_count} failed${a.last_failed_wal ? ` (last ${a.last_failed_wal} at ${a.last_failed_time})` : ''}`);
  for (const n of v.notes) ctx.out(`  note: ${n}`);
  if (r.switched) ctx.out(`ok: forced a segment switch; ${r.switched.segment} landed after ${(r.switched.ms / 1000).toFixed(1)} s`);
  if (r.intake) ctx.out(`ok: ${r.intake.taken.length} WAL file(s) taken into the repository${r.intake.newest ? `; newest segment ${r.intake.newest.name}, archived ${r.intake.newest.archivedAt}` : ''}`);
  if (!v.problems.length) {
    ctx.out(`healthy: ${cluster.container} archives its WAL into ${cluster.archiveDir}`);
    return r;
  }
  ctx.out('problems:');
  for (const p of v.problems) ctx.out(`  - ${p}`);
  if (v.settings.length) {
    ctx.out('set these (postgresql.conf, ALTER SYSTEM, or -c options on the server command line), then restart the container (wal_level, archive_mode and max_wal_senders need a restart; the rest a reload: select pg_reload_conf()):');
    for (const l of v.settings) ctx.out(`  ${l}`);
  }
  if (v.mount) {
    ctx.out("mount the landing directory into the container (docker run, or the compose service's volumes:), owned by the container's postgres user:");
    ctx.out(`  ${v.mount}`);
  }
  throw new PgfleetError(`${cluster.container}: WAL archiving is not healthy (${v.problems.length} problem(s), listed above)`, EXIT.FAILED, { project: o.project, environment: o.environment });
}
