/**
 * Retention of a cluster's base backups and WAL: planCluster() is the pure plan, pruneCluster()
 * applies it (`prune`, and `scheduled-backup` after a cluster's cycle).
 *
 * A base backup is kept when any rule keeps it:
 * - the newest base backup (the last good one: never deleted), and the newest whose chain
 *   verification passed;
 * - one of the newest `keep_base_backups`;
 * - younger than `base_backup_retention` (by finished_at), or finished after now.
 * WAL is kept exactly as long as a kept base backup needs it: a segment (and a .partial or
 * .backup file of it) goes only when it lies before the segment holding the start LSN of the
 * oldest kept base backup, on that backup's timeline or an older one. Timeline history files are
 * always kept; a segment of a newer timeline than that backup's is kept (retention cannot tell
 * it is unneeded). With no base backup, no WAL goes.
 *
 * When the archive has a problem (a base backup's metadata unreadable or its tar missing, a WAL
 * record unreadable), nothing goes: what a damaged base backup needs cannot be known.
 * pruneCluster() removes base backups first (metadata, then tar), then WAL (record, then file), so
 * an interruption never leaves a kept base backup without its WAL; it runs under the cluster's lock
 * for a real run, and on a read-only repository (dryRunContext) it only plans.
 */
import type { BaseBackupMetadata, WalRecord } from '../formats/pitr.js';
import type { Context } from '../runtime/context.js';
import { isReadOnly } from '../storage/dryrun.js';
import { archiveOf, ref, withClusterLock, type Cluster } from './cluster.js';
import { segmentNumber, segmentOfLsn, timelineOf } from './segments.js';

export interface ClusterPolicy {
  keepBaseBackups: number;
  baseBackupRetentionMs: number;
}

export interface ClusterPlan {
  /** Base backups, newest first, with every rule that keeps each. */
  keep: { id: string; reasons: string[] }[];
  remove: { id: string; reason: string }[];
  wal: {
    /** WAL files to remove, in name order, with why. */
    remove: { name: string; reason: string }[];
    /** How many stay, and why the oldest of them stays. */
    kept: number;
    why: string;
  };
  /** Why nothing is removed at all (a damaged archive), when so. */
  blocked?: string;
}

const DEFAULT_SEGMENT = 16 << 20;

/** A duration as projects.yml writes it: 7d, 36h, 90m, 45s. */
export function humanDuration(ms: number): string {
  for (const [unit, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}

/** Pure; see the header. `problems`: the archive's unreadable records or damaged base backups. */
export function planCluster(bases: readonly BaseBackupMetadata[], wal: readonly WalRecord[], policy: ClusterPolicy, now: Date, problems: readonly string[] = []): ClusterPlan {
  const sorted = [...bases].sort((a, b) => (a.finished_at > b.finished_at ? -1 : a.finished_at < b.finished_at ? 1 : 0));
  const reasons = new Map(sorted.map((b) => [b.id, [] as string[]]));
  const keep = (id: string, why: string) => reasons.get(id)!.push(why);
  if (problems.length) {
    for (const b of sorted) keep(b.id, 'the archive has a problem');
    return { keep: sorted.map((b) => ({ id: b.id, reasons: reasons.get(b.id)! })), remove: [], wal: { remove: [], kept: wal.length, why: 'the archive has a problem' }, blocked: `nothing removed while the archive has a problem: ${problems.join('; ')}` };
  }
  if (sorted[0]) keep(sorted[0].id, 'newest base backup');
  const verified = sorted.find((b) => b.verification?.status === 'passed');
  if (verified) keep(verified.id, 'newest verified base backup');
  sorted.slice(0, policy.keepBaseBackups).forEach((b, i) => keep(b.id, `newest ${i + 1} of ${policy.keepBaseBackups} (keep_base_backups)`));
  for (const b of sorted) {
    const age = now.getTime() - Date.parse(b.finished_at);
    if (age < 0) keep(b.id, 'finished after now');
    else if (age < policy.baseBackupRetentionMs) keep(b.id, `younger than ${humanDuration(policy.baseBackupRetentionMs)} (base_backup_retention)`);
  }
  const plan: ClusterPlan = { keep: [], remove: [], wal: { remove: [], kept: 0, why: '' } };
  for (const b of sorted) {
    const r = reasons.get(b.id)!;
    if (r.length) plan.keep.push({ id: b.id, reasons: r });
    else plan.remove.push({ id: b.id, reason: `older than ${humanDuration(policy.baseBackupRetentionMs)} and not among the newest ${policy.keepBaseBackups}` });
  }
  plan.wal = planWal(sorted.filter((b) => reasons.get(b.id)!.length), wal);
  return plan;
}

/** The WAL the kept base backups do not need; see the header. */
export function planWal(kept: readonly BaseBackupMetadata[], wal: readonly WalRecord[]): ClusterPlan['wal'] {
  if (!kept.length) return { remove: [], kept: wal.length, why: 'no base backup: all WAL kept' };
  const size = wal.find((r) => r.kind === 'segment')?.size_bytes ?? DEFAULT_SEGMENT;
  const starts = kept.map((b) => ({ b, first: segmentOfLsn(b.start_lsn, b.timeline, size) }));
  const oldest = starts.reduce((a, x) => (segmentNumber(x.first, size) < segmentNumber(a.first, size) ? x : a));
  const cut = segmentNumber(oldest.first, size);
  const remove: { name: string; reason: string }[] = [];
  for (const r of [...wal].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (r.kind === 'history') continue;
    const seg = r.name.slice(0, 24);
    if (timelineOf(seg) <= oldest.b.timeline && segmentNumber(seg, size) < cut) remove.push({ name: r.name, reason: `before ${oldest.first}, where the oldest kept base backup ${oldest.b.id} starts` });
  }
  return { remove, kept: wal.length - remove.length, why: `from ${oldest.first} on: needed by base backup ${oldest.b.id} (start ${oldest.b.start_lsn}, timeline ${oldest.b.timeline}) and the newer ones` };
}

export interface ClusterPrune extends ClusterPlan {
  container: string;
  dryRun: boolean;
}

/** Plan and apply a cluster's retention; a real run takes the cluster's lock (busy: LockBusyError). */
export async function pruneCluster(ctx: Context, c: Cluster, command = 'prune'): Promise<ClusterPrune> {
  const dryRun = isReadOnly(ctx.repo.store);
  const run = async (): Promise<ClusterPrune> => {
    const a = archiveOf(ctx, c);
    const [bases, recs] = await Promise.all([a.baseBackups(), a.walRecords()]);
    const plan = planCluster(bases.items, recs.items, c, ctx.clock(), [...bases.problems, ...recs.problems]);
    const result: ClusterPrune = { container: c.container, dryRun, ...plan };
    if (dryRun) return result;
    const log = ctx.logger.child({ container: c.container, ...ref(c) });
    for (const r of plan.remove) {
      await a.store.remove(a.baseMetaKey(r.id));
      await a.store.remove(a.baseKey(r.id));
      log.info({ id: r.id, reason: r.reason }, 'base backup removed by retention');
    }
    for (const w of plan.wal.remove) {
      await a.store.remove(a.walRecordKey(w.name));
      await a.store.remove(a.walKey(w.name));
    }
    if (plan.wal.remove.length) log.info({ files: plan.wal.remove.length, first: plan.wal.remove[0].name, last: plan.wal.remove.at(-1)!.name }, 'WAL removed by retention');
    return result;
  };
  return dryRun ? run() : withClusterLock(ctx, c, command, run);
}

/** The lines prune prints for a cluster: what went (or would), and, in a dry run, why the rest stays. */
export function clusterPruneLines(r: ClusterPrune): string[] {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = [`cluster ${r.container}: ${verb} ${r.remove.length} base backup(s) and ${r.wal.remove.length} WAL file(s), ${r.dryRun ? 'would keep' : 'kept'} ${r.keep.length} and ${r.wal.kept}${r.dryRun ? ' (dry run)' : ''}`];
  if (r.blocked) lines.push(`  ${r.blocked}`);
  for (const x of r.remove) lines.push(`  ${r.dryRun ? 'remove' : 'removed'}  ${x.id}  ${x.reason}`);
  if (r.wal.remove.length) {
    const [first, last] = [r.wal.remove[0], r.wal.remove.at(-1)!];
    lines.push(`  ${r.dryRun ? 'remove' : 'removed'}  WAL ${first.name}${r.wal.remove.length > 1 ? ` … ${last.name}` : ''} (${r.wal.remove.length} file(s))  ${last.reason}`);
  }
  if (r.dryRun) {
    for (const k of r.keep) lines.push(`  keep    ${k.id}  ${k.reasons.join('; ')}`);
    lines.push(`  keep    WAL (${r.wal.kept} file(s))  ${r.wal.why}`);
  }
  return lines;
}
