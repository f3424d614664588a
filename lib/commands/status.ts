/**
 * `pgfleet status [--json]`, for monitoring. Per target: the age of the latest complete backup,
 * its size against the previous one, and the latest verification's result and age.
 *
 * Exit 1 when an enabled target has no complete backup newer than platform.max_backup_age
 * (default 26h; a target never backed up fails too) or its latest verification failed, when any
 * target (disabled ones too) has a damaged backup (lib/storage/repository.ts survey: each is
 * named). No enabled target at all is a usage error (exit 2, config/load.ts requireEnabled:
 * nothing is being watched), unless `allowEmpty`. Disabled targets are shown and fail it only
 * through damage.
 * Also lists the databases a restore kept (`<db>__before_<stamp>`) until someone drops them;
 * they never fail status, and a target whose database cannot be reached shows them as unknown.
 * One psql call per server (container, as one role) answers for all its targets
 * (lib/restore/kept.ts leftoverDatabasesOf); everything else status reads is files.
 * A target with offsite configured also fails when its newest backup with a confirmed offsite copy
 * is older than offsite.max_age (or there is none); backups that are offsite pending are counted
 * and shown, and fail it only through that age. Read from the local metadata: status makes no
 * request to the bucket, so an endpoint that is down never makes it hang.
 * A PITR target (database.pitr) also fails when its cluster's newest archived WAL segment is older
 * than max_wal_age, its archiver is failing, it has no base backup or a gap (lib/pitr/status.ts);
 * its restorable window is shown, per cluster.
 * Read-only: takes no lock, writes nothing. "Now" is ctx.clock() (PGFLEET_NOW).
 */
import type { Context } from '../runtime/context.js';
import { EXIT, type ExitCode } from '../core/errors.js';
import { targetFacts } from '../fleet/metrics.js';
import { sizeAnomaly, type SizeAnomaly } from '../fleet/anomaly.js';
import { leftoverDatabasesOf } from '../restore/kept.js';
import { humanSize, renderTable } from '../core/text.js';
import { partialOf } from '../formats/metadata.js';
import { requireEnabled } from '../config/load.js';
import { diskOutlook, type DiskOutlook } from '../fleet/space.js';
import { Board } from '../core/board.js';
import { Terminal } from '../core/terminal.js';
import { clusterOf } from '../pitr/cluster.js';
import { clusterStatus, type PitrStatus } from '../pitr/status.js';

export interface TargetStatus {
  project: string;
  environment: string;
  enabled: boolean;
  ok: boolean;
  problems: string[];
  backups: number;
  /** partial: taken with exclusions (database.backup.exclude_tables / exclude_table_data; `show <id>` tells which). */
  latest: { id: string; type: string; created_at: string; age_seconds: number; size_bytes: number; partial: boolean } | null;
  previous_size_bytes: number | null;
  /** (latest size / previous size) − 1, e.g. -0.4 for a dump 40 % smaller than the one before. */
  size_change: number | null;
  /** The latest dump far off the median of the ones before it (platform.report.anomaly_share); a shrink is a problem. */
  size_anomaly: SizeAnomaly | null;
  verification: { status: 'passed' | 'failed'; verified_at: string; age_seconds: number; backup_id: string; error?: string } | null;
  /** null: offsite not configured. latest: the newest backup whose offsite copy is confirmed. */
  offsite: { max_age_seconds: number; latest: { id: string; created_at: string; age_seconds: number; uploaded_at: string | null; key: string } | null; pending: number } | null;
  /** null: no point-in-time recovery. Its cluster's archive, base backups and restorable window. */
  pitr: PitrStatus | null;
  /** Backups that are not complete (never restored): each id and why. */
  damaged: { id: string; problem: string }[];
  /** Databases kept by restores (drop them once the restore is known good); null: could not look. */
  leftover_databases: string[] | null;
}

export interface StatusReport {
  ok: boolean;
  now: string;
  max_backup_age_seconds: number;
  targets: TargetStatus[];
  /** backup_root's free space against the next run's expected need (lib/fleet/space.ts); a warning, never a failure. null: not local. */
  disk: DiskOutlook | null;
}

export function ago(seconds: number): string {
  if (seconds < 0) return 'in the future';
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}

export async function runStatus(ctx: Context, o: { json?: boolean; allowEmpty?: boolean } = {}): Promise<{ report: StatusReport; exitCode: ExitCode }> {
  const now = ctx.clock();
  requireEnabled(ctx.config, ctx.config.targets, { allowEmpty: o.allowEmpty, command: 'status' });
  const maxAge = ctx.config.platform.maxBackupAgeMs / 1000;
  const secondsSince = (iso: string) => (now.getTime() - Date.parse(iso)) / 1000;
  const clusters = new Map<string, Promise<PitrStatus>>(); // one look per cluster, shared by its targets
  const pitrOf = (t: (typeof ctx.config.targets)[number]) => {
    const c = clusterOf(ctx.config, t);
    if (!clusters.has(c.container)) clusters.set(c.container, clusterStatus(ctx, c, now));
    return clusters.get(c.container)!;
  };
  // The kept databases: one psql call per server for all its targets, not one per target.
  const kept = leftoverDatabasesOf(ctx, ctx.config.targets);
  // On a terminal, a row per target as its facts come in; the table below stays the record.
  const board = new Board(o.json ? Terminal.off() : ctx.term, ctx.config.targets.map((t) => `${t.project}/${t.environment}`), 'status');
  const targets = await Promise.all(
    ctx.config.targets.map((t) => board.track(`${t.project}/${t.environment}`, async (): Promise<TargetStatus> => {
      const [survey, leftovers, pitr] = await Promise.all([ctx.repo.survey(t.project, t.environment, now), kept.then((k) => k.get(t) ?? null), t.pitr ? pitrOf(t) : null]);
      const f = targetFacts(survey.complete, survey.damaged);
      const problems: string[] = [];
      const damaged = survey.damaged.map((d) => ({ id: d.id, problem: d.problem }));
      if (damaged.length) problems.push(`${damaged.length} damaged backup(s): ${damaged.map((d) => `${d.id} (${d.problem})`).join(', ')}`);
      const latest = f.latest && { id: f.latest.meta.id, type: f.latest.meta.type, created_at: f.latest.meta.created_at, age_seconds: Math.round(secondsSince(f.latest.meta.created_at)), size_bytes: f.latest.meta.size_bytes, partial: partialOf(f.latest.meta) !== null };
      if (!latest) problems.push('no complete backup');
      else if (latest.age_seconds > maxAge) problems.push(`latest complete backup is ${ago(latest.age_seconds)} old (max_backup_age ${ago(maxAge)})`);
      const v = f.verification;
      // A tenant that lost its data must not look green: its dump shrinks.
      const anomaly = sizeAnomaly(survey.complete.map((b) => b.meta), ctx.config.platform.report.anomalyShare);
      if (anomaly?.kind === 'shrank') problems.push(anomaly.message);
      if (v?.status === 'failed') problems.push(`latest verification failed (${v.backup_id}, ${v.verified_at})${v.error ? `: ${v.error}` : ''}`);
      const offsite = t.offsite ? offsiteStatus(t.offsite.maxAgeMs / 1000, f, secondsSince) : null;
      if (offsite && !offsite.latest) problems.push(`no confirmed offsite copy${offsite.pending ? ` (${offsite.pending} pending)` : ''}`);
      else if (offsite?.latest && offsite.latest.age_seconds > offsite.max_age_seconds)
        problems.push(`newest offsite copy is ${ago(offsite.latest.age_seconds)} old (offsite.max_age ${ago(offsite.max_age_seconds)})${offsite.pending ? `, ${offsite.pending} pending` : ''}`);
      if (pitr) problems.push(...pitr.problems.map((p) => `pitr: ${p}`));
      const prev = f.previous?.meta.size_bytes ?? null;
      return {
        project: t.project,
        environment: t.environment,
        enabled: t.backup.enabled,
        ok: problems.length === 0 || (!t.backup.enabled && damaged.length === 0),
        problems,
        backups: f.count,
        latest,
        previous_size_bytes: prev,
        size_change: latest && prev ? latest.size_bytes / prev - 1 : null,
        size_anomaly: anomaly,
        verification: v && { status: v.status, verified_at: v.verified_at, age_seconds: Math.round(secondsSince(v.verified_at)), backup_id: v.backup_id, ...(v.error ? { error: v.error } : {}) },
        leftover_databases: leftovers,
        offsite,
        pitr,
        damaged,
      };
    }, (s) => [s.ok ? 'done' : 'failed', s.problems[0]])),
  ).finally(() => board.close());
  const disk = await diskOutlook(ctx).catch(() => null);
  const report: StatusReport = { ok: targets.every((t) => t.ok), now: now.toISOString(), max_backup_age_seconds: maxAge, targets, disk };
  if (o.json) ctx.out(JSON.stringify(report, null, 2));
  else print(ctx, report);
  return { report, exitCode: report.ok ? EXIT.OK : EXIT.FAILED };
}

function offsiteStatus(maxAge: number, f: ReturnType<typeof targetFacts>, secondsSince: (iso: string) => number): NonNullable<TargetStatus['offsite']> {
  const b = f.offsite.latest;
  const latest = b && { id: b.meta.id, created_at: b.meta.created_at, age_seconds: Math.round(secondsSince(b.meta.created_at)), uploaded_at: b.meta.offsite?.uploaded_at ?? null, key: b.meta.offsite!.key };
  return { max_age_seconds: maxAge, latest, pending: f.offsite.pending };
}

function offsiteCell(t: TargetStatus): string {
  if (!t.offsite) return '-';
  const age = t.offsite.latest ? `${ago(t.offsite.latest.age_seconds)} old` : 'none';
  return t.offsite.pending ? `${age}, ${t.offsite.pending} pending` : age;
}

function print(ctx: Context, r: StatusReport): void {
  const withOffsite = r.targets.some((t) => t.offsite);
  const withPitr = r.targets.some((t) => t.pitr);
  const head = ['TARGET', 'STATE', 'LATEST BACKUP', 'AGE', 'SIZE', 'VS PREVIOUS', 'VERIFIED', ...(withOffsite ? ['OFFSITE'] : []), ...(withPitr ? ['PITR'] : []), 'PROBLEMS'];
  const rows = r.targets.map((t) => [
    `${t.project}/${t.environment}`,
    !t.enabled ? 'disabled' : t.ok ? 'OK' : 'FAIL',
    t.latest ? `${t.latest.id}${t.latest.partial ? ' (partial)' : ''}` : '-',
    t.latest ? ago(t.latest.age_seconds) : '-',
    t.latest ? humanSize(t.latest.size_bytes) : '-',
    t.size_change === null ? '-' : `${t.size_change >= 0 ? '+' : ''}${(t.size_change * 100).toFixed(1)}%`,
    t.verification ? `${t.verification.status} ${ago(t.verification.age_seconds)} ago` : 'never',
    ...(withOffsite ? [offsiteCell(t)] : []),
    ...(withPitr ? [t.pitr ? `WAL ${t.pitr.newest_segment ? ago(t.pitr.newest_segment.age_seconds) : 'none'}, base ${t.pitr.newest_base_backup ? ago(t.pitr.newest_base_backup.age_seconds) : 'none'}, chain ${t.pitr.verification ? `${t.pitr.verification.status} ${ago(t.pitr.verification.age_seconds)} ago` : 'never verified'}` : '-'] : []),
    t.problems.join('; '),
  ]);
  for (const l of renderTable(head, rows)) ctx.out(l);
  const windows = new Map(r.targets.flatMap((t) => (t.pitr ? [[t.pitr.container, t.pitr.window] as const] : [])));
  for (const [c, w] of windows) ctx.out(`restorable window of cluster ${c}: ${w ? `${w.from} … ${w.to}` : 'none (no base backup)'}`);
  const kept = r.targets.flatMap((t) => (t.leftover_databases ?? []).map((d) => `${t.project}/${t.environment}: ${d}`));
  if (kept.length) ctx.out(`databases kept by restores (drop each once the restore is known good: DROP DATABASE "<name>"):\n  ${kept.join('\n  ')}`);
  if (r.disk?.warning) ctx.out(`warning: ${r.disk.warning}`);
  ctx.out(r.ok ? 'status: ok' : `status: FAIL (${r.targets.filter((t) => !t.ok).map((t) => `${t.project}/${t.environment}`).join(', ')})`);
}
