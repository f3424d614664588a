/**
 * `pgfleet prune [<project> [<env>]] [--dry-run]`: per target, under its lock, apply retention and
 * clean leftover temp files older than a day (lib/fleet/prune.ts); then refresh the metrics.
 * Damaged backups are listed, never removed by retention. `prune <project> <env> --remove-damaged
 * <id>` removes that one damaged backup (under the lock; a complete one is refused) and nothing else.
 *
 * Promises: those of lib/fleet/prune.ts (only complete backups counted or deleted, the newest and
 * the newest verified never, metadata removed first). A dry run takes no lock and writes nothing: it lists what would go and which rule
 * keeps each backup that stays. A busy target is skipped and reported, the others go on.
 * A target with offsite configured: then offsite retention on its bucket, under the same lock
 * (lib/offsite/prune.ts: its own tiers; a copy under object lock kept with the reason); a failure
 * there fails the target (exit 1), what local retention did stays done.
 * Then each PITR cluster of those targets (lib/pitr/retention.ts, under the cluster's lock): base
 * backups beyond keep_base_backups and base_backup_retention, and the WAL no kept one needs; a
 * dry run says why each base backup and the WAL stays. Then the same over the cluster's copies in
 * each bucket of its targets (lib/pitr/offsite.ts: never a segment a kept base backup needs; what
 * an object lock holds is kept with the reason). A cluster's failure fails the run (exit 1).
 */
import path from 'node:path';
import { selectTargets } from '../config/load.js';
import { dryRunContext, type Context } from '../runtime/context.js';
import { EXIT, LockBusyError, UsageError, type ExitCode } from '../core/errors.js';
import { withLock } from '../storage/lock.js';
import { targetLogger } from '../core/log.js';
import { writeMetrics } from '../fleet/metrics.js';
import { pitrSeries } from '../pitr/status.js';
import { pruneTarget, removeDamaged, type TargetPrune } from '../fleet/prune.js';
import { findTarget } from '../config/load.js';
import { pruneOffsite, type OffsitePrune } from '../offsite/prune.js';
import { Board } from '../core/board.js';
import { pitrClusters, withClusterLock } from '../pitr/cluster.js';
import { bucketPruneLines, destinations, pruneBucketCluster } from '../pitr/offsite.js';
import { clusterPruneLines, pruneCluster } from '../pitr/retention.js';

export interface PruneResult {
  targets: (TargetPrune | { project: string; environment: string; error: string; busy: boolean })[];
  exitCode: ExitCode;
}

export async function runPrune(ctx: Context, o: { project?: string; environment?: string; dryRun?: boolean; removeDamaged?: string }): Promise<PruneResult> {
  if (o.removeDamaged !== undefined) return runRemoveDamaged(ctx, o.project, o.environment, o.removeDamaged, !!o.dryRun);
  const targets = selectTargets(ctx.config, o.project, o.environment);
  const results: PruneResult['targets'] = [];
  // On a terminal, a row per target as each is pruned; the lines printed stay the record.
  const board = new Board(ctx.term, targets.map((t) => `${t.project}/${t.environment}`), o.dryRun ? 'retention (dry run)' : 'retention');
  for (const t of targets) {
    const name = `${t.project}/${t.environment}`;
    board.start(name);
    try {
      // A dry run: the same planning on a repository that refuses writes, and no lock (it creates nothing).
      const both = async (c: Context) => ({ r: await pruneTarget(c, t), offsite: t.offsite ? await pruneOffsite(c, t).catch((e: unknown) => e as Error) : null });
      const { r, offsite } = o.dryRun ? await both(dryRunContext(ctx)) : await withLock(ctx.repo.lockDir(t.project, t.environment), t, 'prune', () => both(ctx));
      results.push(r);
      printPrune(ctx, r);
      if (offsite instanceof Error) throw new Error(`offsite retention: ${offsite.message}`);
      if (offsite) printOffsite(ctx, offsite);
      board.finish(name, 'done', `${o.dryRun ? 'would remove' : 'removed'} ${r.remove.length}`);
    } catch (e) {
      const busy = e instanceof LockBusyError;
      results.push({ project: t.project, environment: t.environment, error: (e as Error).message, busy });
      ctx.out(`${name}: ${busy ? 'busy (another run holds its lock), skipped' : `FAILED: ${(e as Error).message}`}`);
      targetLogger(ctx.logger, t).error({ error: (e as Error).message }, busy ? 'prune skipped: target busy' : 'prune failed');
      board.finish(name, busy ? 'skipped' : 'failed', busy ? 'busy' : (e as Error).message);
    }
  }
  board.close();
  // The PITR clusters of these targets: base backups and the WAL no kept one needs (lib/pitr/retention.ts).
  for (const c of pitrClusters(ctx.config, targets)) {
    try {
      for (const l of clusterPruneLines(await pruneCluster(o.dryRun ? dryRunContext(ctx) : ctx, c))) ctx.out(l);
      // The same rules over its copies in each bucket of its targets (lib/pitr/offsite.ts; a lock keeps what it holds, and the WAL that needs).
      for (const d of destinations(c)) {
        const r = o.dryRun ? await pruneBucketCluster(dryRunContext(ctx), c, d) : await withClusterLock(ctx, c, 'prune', () => pruneBucketCluster(ctx, c, d));
        for (const l of bucketPruneLines(r)) ctx.out(l);
      }
    } catch (e) {
      const busy = e instanceof LockBusyError;
      results.push({ project: `cluster ${c.container}`, environment: '', error: (e as Error).message, busy });
      ctx.out(`cluster ${c.container}: ${busy ? 'busy (another run holds its lock), skipped' : `FAILED: ${(e as Error).message}`}`);
      ctx.logger.error({ container: c.container, error: (e as Error).message }, busy ? 'prune skipped: cluster busy' : 'cluster retention failed');
    }
  }
  if (!o.dryRun) await writeMetrics(ctx, pitrSeries(ctx));
  const failed = results.filter((r) => 'error' in r);
  const exitCode = failed.some((r) => !r.busy) ? EXIT.FAILED : failed.length ? EXIT.LOCKED : EXIT.OK;
  return { targets: results, exitCode };
}

/** `--remove-damaged <id>`: one named damaged backup of one target, and nothing else. */
async function runRemoveDamaged(ctx: Context, project: string | undefined, environment: string | undefined, id: string, dryRun: boolean): Promise<PruneResult> {
  if (!project || !environment) throw new UsageError('--remove-damaged <id> needs the <project> <env> it belongs to');
  const t = findTarget(ctx.config, project, environment);
  const what = dryRun ? 'would remove' : 'removed';
  const d = dryRun ? await removeDamaged(dryRunContext(ctx), t, id) : await withLock(ctx.repo.lockDir(project, environment), t, 'prune --remove-damaged', () => removeDamaged(ctx, t, id));
  ctx.out(`${project}/${environment}: ${what} damaged backup ${id} (${d.problem})${dryRun ? ' (dry run)' : ''}`);
  if (!dryRun) await writeMetrics(ctx, pitrSeries(ctx));
  return { targets: [], exitCode: EXIT.OK };
}

/** The offsite lines under a target's: what went, and what a lock kept (always shown: a lock is news). */
function printOffsite(ctx: Context, r: OffsitePrune): void {
  const verb = r.dryRun ? 'would remove' : 'removed';
  ctx.out(`  offsite ${r.location}: ${verb} ${r.remove.length}, ${r.dryRun ? 'would keep' : 'kept'} ${r.keep.length + r.locked.length}${r.locked.length ? ` (${r.locked.length} under lock)` : ''}`);
  for (const x of r.remove) ctx.out(`    ${r.dryRun ? 'remove' : 'removed'}  ${x.id}  ${x.reason}`);
  for (const x of r.locked) ctx.out(`    keep    ${x.id}  ${x.reason}`);
  if (r.dryRun) for (const k of r.keep) ctx.out(`    keep    ${k.id}  ${k.reasons.join('; ')}`);
}

function printPrune(ctx: Context, r: TargetPrune): void {
  const verb = r.dryRun ? 'would remove' : 'removed';
  ctx.out(`${r.project}/${r.environment}: ${verb} ${r.remove.length}, ${r.dryRun ? 'would keep' : 'kept'} ${r.keep.length}${r.dryRun ? ' (dry run)' : ''}`);
  for (const x of r.remove) ctx.out(`  ${r.dryRun ? 'remove' : 'removed'}  ${x.id}  ${x.reason}`);
  if (r.dryRun) for (const k of r.keep) ctx.out(`  keep    ${k.id}  ${k.reasons.join('; ')}`);
  for (const d of r.damaged) ctx.out(`  DAMAGED ${d.id}  ${d.problem} (kept, not counted; prune ${r.project} ${r.environment} --remove-damaged ${d.id} removes it)`);
  for (const f of r.tempFiles) ctx.out(`  ${r.dryRun ? 'remove' : 'removed'}  ${path.basename(f)}  leftover temp file older than a day`);
}
