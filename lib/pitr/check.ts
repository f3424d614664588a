/**
 * `pitr check`'s runbook for one cluster:
 *
 *   container running → read its settings, pg_stat_archiver and mounts → judge them (settings.ts)
 *   → when archiving is set up: write a restore point, force pg_switch_wal(), and watch that
 *     segment arrive in the landing directory (bounded) → take the landed WAL in (intake.ts)
 *
 * Reports, never half-answers: every problem found is in the report (a gap or a conflicting
 * duplicate found by the intake too); the caller fails when there is any. Changes nothing on the
 * cluster but one restore point and one segment switch.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PgfleetError } from '../core/errors.js';
import type { Context } from '../runtime/context.js';
import { archiveOf, clusterSql, mountsOf, ref, withClusterLock, type Cluster } from './cluster.js';
import { takeInWal, type IntakeResult } from './intake.js';
import { judge, type ClusterState, type Verdict } from './settings.js';

export interface CheckReport {
  cluster: Cluster;
  state: ClusterState;
  verdict: Verdict;
  /** The segment forced out and how long it took to land; absent when not tried. */
  switched?: { segment: string; ms: number };
  intake?: IntakeResult;
}

const STATE_SQL = `select json_build_object(
  'settings', (select json_object_agg(name, setting) from pg_settings where name in ('wal_level','archive_mode','archive_command','archive_library','archive_timeout','max_wal_senders','server_version_num')),
  'archiver', (select json_build_object('archived_count', archived_count, 'failed_count', failed_count, 'last_archived_wal', last_archived_wal,
     'last_archived_time', to_char(last_archived_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'last_failed_wal', last_failed_wal,
     'last_failed_time', to_char(last_failed_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) from pg_stat_archiver))`;

export async function readState(ctx: Context, c: Cluster): Promise<ClusterState> {
  const j = JSON.parse(await clusterSql(ctx, c, STATE_SQL)) as Omit<ClusterState, 'mounts'>;
  return { ...j, mounts: await mountsOf(ctx, c) };
}

export async function checkCluster(ctx: Context, c: Cluster, o: { waitMs: number }): Promise<CheckReport> {
  await ctx.containers.requireRunning(c.container, ref(c));
  const landing = await fs.realpath(c.archiveDir).catch(() => null);
  const state = await readState(ctx, c);
  const verdict = judge(state, landing ?? c.archiveDir, c.maxWalAgeMs);
  const report: CheckReport = { cluster: c, state, verdict };
  if (!landing) {
    verdict.problems.push(`archive_dir ${c.archiveDir} does not exist on the host (mkdir it, owned by the container's postgres user, mode 0700)`);
    return report;
  }
  // A switch is worth watching only once the cluster archives into the mounted landing directory.
  if (verdict.settings.some((l) => /^(wal_level|archive_mode|archive_command|archive_library) /.test(l)) || verdict.mount) return report;
  const segment = (await clusterSql(ctx, c, "select pg_create_restore_point('pgfleet_pitr_check');\nselect pg_walfile_name(pg_switch_wal());")).split('\n').at(-1)!.trim();
  const t0 = performance.now();
  const arrived = await watchArrival(ctx, c, landing, segment, o.waitMs);
  if (arrived === true) report.switched = { segment, ms: Math.round(performance.now() - t0) };
  else verdict.problems.push(arrived);
  try {
    report.intake = await withClusterLock(ctx, c, 'pitr check', () => takeInWal(ctx, archiveOf(ctx, c), landing));
  } catch (e) {
    if (!(e instanceof PgfleetError) || ctx.signal?.aborted) throw e;
    verdict.problems.push(e.message);
  }
  return report;
}

/** true once `segment` is in the landing directory or already taken in; else why not (a failure, the wait ran out). */
async function watchArrival(ctx: Context, c: Cluster, landing: string, segment: string, waitMs: number): Promise<true | string> {
  const archive = archiveOf(ctx, c);
  const until = performance.now() + waitMs;
  for (let i = 0; ; i++) {
    ctx.signal?.throwIfAborted();
    if (await fs.stat(path.join(landing, segment)).catch(() => null)) return true;
    if (await archive.store.stat(archive.walRecordKey(segment))) return true;
    if (i % 5 === 4) {
      const a = (await readState(ctx, c)).archiver;
      if (a.last_failed_wal === segment && (!a.last_archived_time || (a.last_failed_time ?? '') > a.last_archived_time))
        return `the archiver failed to archive ${segment} (${a.failed_count} failure(s); the server log says why: ${c.archiveDir} not writable by the container's postgres user, or a file of that name already there)`;
    }
    if (performance.now() > until) return `forced a switch to a new segment, but ${segment} did not arrive in ${c.archiveDir} within ${Math.round(waitMs / 1000)}s`;
    await new Promise((r) => setTimeout(r, 200));
  }
}
