/**
 * A cluster's point-in-time recovery as `status` reports it: the newest archived segment and its
 * age, the newest base backup, the restorable window, the archiver's failures, and what fails it.
 *
 * pitrFacts() is pure; clusterStatus() gathers its inputs read-only (the repository, the landing
 * directory's names and mtimes, pg_stat_archiver) and never throws for what it finds: an
 * unreachable cluster or an unreadable directory is one of its problems.
 *
 * The window runs from the oldest base backup's finished_at (it is consistent by then; an
 * earlier point is not restorable from it) to the archive time of the last segment reachable
 * from that backup without a gap, along its timeline and across the timeline switches its
 * history files lead to (lib/pitr/timelines.ts, as restore --to and verification follow them); a
 * gap ends it there and is a problem, and so is a newer timeline's segment without its history. The latest chain
 * verification (verify-backups, recorded in a base backup's metadata) is shown; a failed one is a
 * problem.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { BaseBackupMetadata } from '../formats/pitr.js';
import type { Context } from '../runtime/context.js';
import type { Target } from '../config/load.js';
import type { PitrSeries, PitrSource } from '../fleet/metrics.js';
import { archiveOf, clusterOf, clusterSql, type Cluster } from './cluster.js';
import { landed } from './intake.js';
import { historiesMissing, missingHistoryProblem, readHistories, walkChain, type TimelineHistory } from './timelines.js';

export interface Segment {
  name: string;
  /** When it was archived (the landing file's mtime), ISO. */
  archivedAt: string;
  size: number;
}

export interface Archiver {
  failed_count: number;
  last_failed_wal: string | null;
  last_failed_time: string | null;
  last_archived_time: string | null;
}

export interface PitrStatus {
  container: string;
  max_wal_age_seconds: number;
  newest_segment: { name: string; archived_at: string; age_seconds: number } | null;
  newest_base_backup: { id: string; finished_at: string; age_seconds: number } | null;
  /** The latest chain verification of any base backup (verify-backups), and which; null: never verified. */
  verification: { status: 'passed' | 'failed'; verified_at: string; age_seconds: number; base_backup_id: string; through: string | null; error?: string } | null;
  base_backups: number;
  /** The restorable window, or null when there is no base backup. */
  window: { from: string; to: string } | null;
  /** Segments waiting in the landing directory, not yet taken in. */
  waiting: number;
  archiver: (Archiver & { failing: boolean }) | null;
  problems: string[];
}

const ageOf = (now: Date, iso: string) => Math.round((now.getTime() - Date.parse(iso)) / 1000);

export function pitrFacts(i: { container: string; maxWalAgeMs: number; now: Date; segments: Segment[]; histories?: TimelineHistory[]; waiting: number; bases: BaseBackupMetadata[]; archiver: Archiver | null; problems: string[] }): PitrStatus {
  const problems = [...i.problems];
  const maxAge = i.maxWalAgeMs / 1000;
  const segs = [...i.segments].sort((a, b) => (a.name < b.name ? -1 : 1));
  const newest = segs.at(-1);
  const newestSegment = newest ? { name: newest.name, archived_at: newest.archivedAt, age_seconds: ageOf(i.now, newest.archivedAt) } : null;
  if (!newestSegment) problems.push('no WAL archived yet');
  else if (newestSegment.age_seconds > maxAge) problems.push(`newest archived WAL segment ${newestSegment.name} is ${newestSegment.age_seconds}s old (max_wal_age ${maxAge}s): archiving is stale`);
  const failing = !!i.archiver && i.archiver.failed_count > 0 && !!i.archiver.last_failed_time && (!i.archiver.last_archived_time || i.archiver.last_failed_time > i.archiver.last_archived_time);
  if (failing) problems.push(`the archiver is failing: last failure for ${i.archiver!.last_failed_wal} at ${i.archiver!.last_failed_time}, no success since`);
  const bases = [...i.bases].sort((a, b) => (a.finished_at < b.finished_at ? -1 : 1));
  const nb = bases.at(-1);
  if (!nb) problems.push('no base backup: nothing to recover from (pgfleet basebackup)');
  const checked = bases.filter((b) => b.verification).sort((a, b) => (a.verification!.verified_at < b.verification!.verified_at ? -1 : 1)).at(-1);
  const v = checked?.verification;
  const verification = checked && v ? { status: v.status, verified_at: v.verified_at, age_seconds: ageOf(i.now, v.verified_at), base_backup_id: checked.id, through: v.through, ...(v.error ? { error: v.error } : {}) } : null;
  if (verification?.status === 'failed') problems.push(`chain verification of base backup ${verification.base_backup_id} failed (${verification.verified_at}): ${verification.error ?? 'no reason recorded'}`);
  let window: PitrStatus['window'] = null;
  const oldest = bases[0];
  const lost = historiesMissing(segs.map((s) => s.name), i.histories ?? []);
  if (lost.length) problems.push(missingHistoryProblem(lost));
  if (oldest) {
    const size = segs[0]?.size ?? 16 << 20;
    const walk = walkChain(oldest, i.histories ?? [], segs.map((s) => s.name), size);
    const at = new Map(segs.map((s) => [s.name, s.archivedAt]));
    let to = oldest.finished_at;
    for (const n of walk.run) if (at.get(n)! > to) to = at.get(n)!;
    if (walk.missing.length) problems.push(`the WAL archive has a gap after base backup ${oldest.id}: ${walk.next} missing; recovery stops there`);
    window = { from: oldest.finished_at, to };
  }
  return {
    container: i.container,
    max_wal_age_seconds: maxAge,
    newest_segment: newestSegment,
    newest_base_backup: nb ? { id: nb.id, finished_at: nb.finished_at, age_seconds: ageOf(i.now, nb.finished_at) } : null,
    verification,
    base_backups: bases.length,
    window,
    waiting: i.waiting,
    archiver: i.archiver && { ...i.archiver, failing },
    problems,
  };
}

const ARCHIVER_SQL = `select json_build_object('failed_count', failed_count, 'last_failed_wal', last_failed_wal,
  'last_failed_time', to_char(last_failed_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'last_archived_time', to_char(last_archived_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) from pg_stat_archiver`;

/** Read-only; see the header. */
export async function clusterStatus(ctx: Context, c: Cluster, now: Date): Promise<PitrStatus> {
  const a = archiveOf(ctx, c);
  const problems: string[] = [];
  const [recs, bases] = await Promise.all([a.walRecords(), a.baseBackups()]);
  problems.push(...recs.problems, ...bases.problems);
  const segments: Segment[] = recs.items.filter((r) => r.kind === 'segment').map((r) => ({ name: r.name, archivedAt: r.archived_at, size: r.size_bytes }));
  let waiting = 0;
  try {
    for (const n of (await landed(c.archiveDir)).filter((x) => /^[0-9A-F]{24}$/.test(x))) {
      const st = await fs.stat(path.join(c.archiveDir, n)).catch(() => null);
      if (st && !segments.some((s) => s.name === n)) segments.push({ name: n, archivedAt: st.mtime.toISOString(), size: st.size });
      waiting++;
    }
  } catch (e) {
    problems.push((e as Error).message);
  }
  const hist = await readHistories(ctx, a, recs.items, c.archiveDir);
  problems.push(...hist.problems);
  let archiver: Archiver | null = null;
  try {
    archiver = JSON.parse(await clusterSql(ctx, c, ARCHIVER_SQL)) as Archiver;
  } catch (e) {
    problems.push(`cannot read pg_stat_archiver in ${c.container}: ${(e as Error).message.split('\n')[0]}`);
  }
  return pitrFacts({ container: c.container, maxWalAgeMs: c.maxWalAgeMs, now, segments, histories: hist.histories, waiting, bases: bases.items, archiver, problems });
}

/** A PitrStatus as metrics series (pure). */
export function seriesOf(s: PitrStatus): PitrSeries {
  const unix = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : null);
  return {
    windowStart: unix(s.window?.from),
    windowEnd: unix(s.window?.to),
    walLastArchived: unix(s.newest_segment?.archived_at),
    walNewestAge: s.newest_segment?.age_seconds ?? null,
    archiverFailedCount: s.archiver?.failed_count ?? null,
    archiverFailing: !!s.archiver?.failing,
    baseBackups: s.base_backups,
    chainVerified: s.verification?.status === 'passed',
  };
}

/** writeMetrics' source of PITR series: one clusterStatus per cluster, shared by its targets. */
export function pitrSeries(ctx: Context): PitrSource {
  const seen = new Map<string, Promise<PitrSeries>>();
  return async (t: Target) => {
    if (!t.pitr) return null;
    const c = clusterOf(ctx.config, t);
    if (!seen.has(c.container)) seen.set(c.container, clusterStatus(ctx, c, ctx.clock()).then(seriesOf));
    return seen.get(c.container)!;
  };
}
