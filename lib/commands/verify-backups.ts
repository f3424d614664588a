/**
 * `pgfleet verify-backups [<project> [<env>]] [--all] [--backup <id>] [--dry-run] [--offsite]`: the weekly job.
 *
 *   per enabled target, its latest complete backup (--all: every one; --backup: that one)
 *   → checksum → full restore into a scratch database (the target's container, or
 *     platform.verify.container) → every table's row count compared with the metadata
 *   → the scratch database dropped, ALWAYS (failure, SIGINT/SIGTERM included)
 *   → the result recorded in the backup's metadata (`verification`)
 *   → metrics textfile rewritten, webhook notified (as scheduled-backup)
 *
 * --dry-run reads the same plan through a read-only repository, prints it and stops: no scratch
 * database, nothing recorded, no metrics or webhook.
 *
 * --checksums: the fast pass instead (lib/fleet/checksums.ts): every stored dump of the selected
 * targets (--backup: that one) re-hashed against its metadata, the result recorded in the
 * metadata's `checksum`; exit 4 on a mismatch or a damaged backup, 1 when a dump could not be read.
 *
 * --offsite: the same of the copies in each target's offsite bucket (from the bucket alone), each
 * streamed and decrypted as restore --from-offsite reads it (lib/restore/remote.ts: the identity
 * checked for every copy before the first is read), the result recorded in the copy's own metadata
 * object in the bucket (rewritten whole); a damaged copy fails (exit 4).
 *
 * A damaged backup of a selected target (lib/storage/repository.ts survey; every one, not only the
 * latest) fails as a backup that failed verification: reported, nothing recorded, exit 4. No
 * enabled target is a usage error (exit 2) unless allowEmpty.
 *
 * Exit 4 when a backup failed verification, 1 when a verification could not run (container down,
 * no connection: nothing is recorded then, the backup is not to blame), 130 when interrupted.
 * Runs without the target's lock: it never changes a dump, and writes the metadata by an atomic
 * replace of a freshly read copy, so backups and prunes are not blocked by an hour-long check.
 *
 * PITR targets (database.pitr): then, per cluster of the selected targets, its newest base backup
 * (--all: every one) is verified with its chain (lib/pitr/chain.ts: every WAL file after it hashed,
 * no gap, recovered by a temporary instance to the end of the archive), the result recorded in the
 * base backup's metadata; a gap, a damaged file or a recovery that stops short is exit 4. Not with
 * --backup, --checksums or --offsite (the chain is verified from the local archive).
 */
import { requireEnabled, selectTargets, type Target } from '../config/load.js';
import { dryRunContext, type Context } from '../runtime/context.js';
import { canCreateDatabases, dbProps, dropDatabase, scratchName, withMaintenanceSession } from '../postgres/dbadmin.js';
import { CommandError, EXIT, InterruptedError, PgfleetError, UsageError, VerificationError, type ExitCode } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { checksumPass } from '../fleet/checksums.js';
import { writeMetrics } from '../fleet/metrics.js';
import { pitrSeries } from '../pitr/status.js';
import { humanSize } from '../core/text.js';
import { notify } from '../fleet/notify.js';
import { partialOf, type VerificationResult } from '../formats/metadata.js';
import { Repository, type DamagedBackup, type StoredBackup } from '../storage/repository.js';
import { readOnly } from '../storage/dryrun.js';
import { offsiteRepository } from '../offsite/catalog.js';
import type { DumpSource } from '../restore/dump.js';
import { readableCopy } from '../restore/remote.js';
import { restoreInto, verificationShell } from '../restore/into.js';
import { Board } from '../core/board.js';
import { openDump, openWhile } from '../restore/stage.js';
import { archiveOf, pitrClusters, type Cluster } from '../pitr/cluster.js';
import { verifyChain } from '../pitr/chain.js';
import type { BaseBackupMetadata } from '../formats/pitr.js';

export interface VerifyOptions {
  project?: string;
  environment?: string;
  all?: boolean;
  backup?: string;
  dryRun?: boolean;
  jobs?: number;
  /** No enabled target is not an error (see config/load.ts requireEnabled). */
  allowEmpty?: boolean;
  /** The fast pass instead of restores: every stored dump re-hashed against its metadata (lib/fleet/checksums.ts). */
  checksums?: boolean;
  /** The copies in the offsite bucket instead of the local backups. */
  offsite?: boolean;
}

export interface VerifyOutcome {
  project: string;
  environment: string;
  /** A base backup's chain (PITR), of this cluster; project/environment are its first target's. */
  cluster?: string;
  id: string;
  /** error: the check could not run (not recorded). */
  status: 'passed' | 'failed' | 'error';
  error?: string;
  verification?: VerificationResult;
}

/** The backups to verify and the target's damaged ones (every one, or the --backup named; each fails the run). */
async function chosenBackups(ctx: Context, repo: Repository, t: Target, o: VerifyOptions): Promise<{ backups: StoredBackup[]; damaged: DamagedBackup[] }> {
  const { complete, damaged } = await repo.survey(t.project, t.environment, ctx.clock());
  if (o.backup) return { backups: complete.filter((b) => b.meta.id === o.backup), damaged: damaged.filter((d) => d.id === o.backup) };
  return { backups: o.all ? complete : complete.slice(0, 1), damaged };
}

/** A failure of the backup itself (to record): its checks, or the programs that read its bytes (zstd, pg_restore); anything else is the machinery around it. */
function backupsFault(e: unknown): boolean {
  return e instanceof VerificationError || (e instanceof CommandError && (e.program === 'pg_restore' || e.program === 'zstd'));
}

/** Verify one backup of `repo` (read from `src`: the backup itself, or its copy in the bucket). The scratch database is dropped whatever happens. */
async function verifyOne(ctx: Context, t: Target, b: StoredBackup, jobs: number | undefined, repo: Repository, src: DumpSource = b): Promise<VerifyOutcome> {
  const log = targetLogger(ctx.logger, t);
  const { sh, foreign } = verificationShell(ctx, t);
  const scratch = scratchName(t.database, ctx.clock());
  const base = { project: t.project, environment: t.environment, id: b.meta.id };
  const t0 = performance.now();
  // One maintenance session, connected while the dump is staged, answers the preflight and creates and drops the scratch database.
  const done = await withMaintenanceSession(sh, async (admin): Promise<{ verification: VerificationResult } | { outcome: VerifyOutcome }> => {
    try {
      const [checked, [like, mayCreate]] = await openWhile(
        openDump(ctx, sh, src, { jobs, signal: ctx.signal }),
        Promise.all([foreign ? null : dbProps(sh, t.database, { signal: ctx.signal, session: admin }).catch(() => null), canCreateDatabases(sh, admin)]),
        sh.ref,
      );
      if (!mayCreate) {
        await checked.close();
        throw new PgfleetError(
          `${t.project}/${t.environment}: role ${t.user ?? '(default)'} may not create databases; a verification restore needs CREATEDB (ALTER ROLE ${t.user ?? '…'} CREATEDB) or platform.verify.container`,
          EXIT.FAILED,
          sh.ref,
        );
      }
      const r = await restoreInto(ctx, t, checked, scratch, { shell: sh, like, owner: foreign ? 'postgres' : t.user, noOwner: foreign, jobs, signal: ctx.signal, admin });
      return { verification: { status: 'passed', verified_at: ctx.clock().toISOString(), duration_ms: Math.round(performance.now() - t0), tables: r.tables, rows: r.rows, ...(sh.container ? { container: sh.container } : {}) } };
    } catch (e) {
      if (e instanceof InterruptedError || ctx.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError(String(ctx.signal?.reason ?? 'SIGINT'));
      const error = ((e as Error)?.message ?? String(e)).slice(0, 2000);
      if (!backupsFault(e)) {
        log.error({ id: b.meta.id, err: error }, 'verification could not run; nothing recorded');
        return { outcome: { ...base, status: 'error', error } };
      }
      return { verification: { status: 'failed', verified_at: ctx.clock().toISOString(), duration_ms: Math.round(performance.now() - t0), tables: 0, rows: 0, ...(sh.container ? { container: sh.container } : {}), error } };
    } finally {
      await dropDatabase(sh, scratch, admin).catch((e) => log.error({ database: scratch, err: (e as Error).message }, 'could not drop the scratch database; drop it by hand'));
    }
  });
  if ('outcome' in done) return done.outcome;
  const { verification } = done;
  // Record on a freshly read copy: another run may have changed the metadata (or pruned the backup) meanwhile.
  const fresh = await repo.check(b.metaKey);
  if (fresh.backup) {
    await repo.saveMetadata({ ...fresh.backup.meta, verification });
    // verify-backups takes no lock: had prune removed the dump meanwhile, this metadata would name
    // a missing file. Take it back rather than leave a marker of a backup that is gone.
    if (!(await repo.check(b.metaKey)).backup) await repo.remove(fresh.backup);
  }
  else log.warn({ id: b.meta.id, problem: fresh.problem }, 'the backup changed or disappeared during verification; result not recorded');
  const partial = partialOf(b.meta);
  log[verification.status === 'passed' ? 'info' : 'error']({ id: b.meta.id, ...verification, ...(partial ? { data_excluded: partial.data_excluded, tables_excluded: partial.tables_excluded } : {}) }, `verification ${verification.status}`);
  return { ...base, status: verification.status, verification, ...(verification.error ? { error: verification.error } : {}) };
}

/** What a passed verification of a partial backup checked beyond the recorded counts ('' for a full backup). */
function partialNote(meta: StoredBackup['meta']): string {
  const p = partialOf(meta);
  if (!p) return '';
  const data = p.data_excluded.length ? `; no rows expected and none found in ${p.data_excluded.join(', ')} (data excluded)` : '';
  const gone = p.tables_excluded.length ? `; not in the backup: ${p.tables_excluded.join(', ')} (excluded)` : '';
  return `; partial backup${data}${gone}`;
}

/** A damaged backup as a failed outcome (nothing to restore; nothing recorded). */
function damagedOutcome(ctx: Context, t: Target, d: DamagedBackup): VerifyOutcome {
  const error = `damaged backup: ${d.problem}`;
  targetLogger(ctx.logger, t).error({ id: d.id, problem: d.problem }, 'damaged backup');
  return { project: t.project, environment: t.environment, id: d.id, status: 'failed', error };
}

export async function runVerifyBackups(ctx: Context, o: VerifyOptions): Promise<{ results: VerifyOutcome[]; exitCode: ExitCode }> {
  const selected = selectTargets(ctx.config, o.project, o.environment);
  const targets = selected.filter((t) => t.backup.enabled || (o.project && o.environment));
  if (!(o.project && o.environment)) requireEnabled(ctx.config, selected, { allowEmpty: o.allowEmpty, command: 'verify-backups' });
  if (o.checksums && o.offsite) throw new UsageError('--checksums reads the local dumps; verify the offsite copies without it');
  if (o.checksums) return runChecksums(ctx, targets, o);
  // The plan is read the same way for a dry run, on a repository that refuses any write.
  const planner = o.dryRun ? dryRunContext(ctx) : ctx;
  const repoOf = async (t: Target) => (!o.offsite ? planner.repo : o.dryRun ? new Repository(readOnly((await offsiteRepository(t, ctx.env)).store)) : offsiteRepository(t, ctx.env));
  const plan: [Target, StoredBackup[], DamagedBackup[]][] = [];
  const repos = new Map<Target, Repository>();
  for (const t of o.offsite && !(o.project && o.environment) ? targets.filter((x) => x.offsite) : targets) {
    repos.set(t, await repoOf(t));
    const { backups, damaged } = await chosenBackups(planner, repos.get(t)!, t, o);
    plan.push([t, backups, damaged]);
  }
  if (o.backup && plan.every(([, bs, ds]) => !bs.length && !ds.length)) throw new UsageError(`no complete backup ${o.backup} in ${o.project ?? 'any project'}${o.environment ? `/${o.environment}` : ''}`);

  if (o.dryRun) {
    if (!o.offsite && !o.backup)
      for (const [c, bases] of await chainPlan(planner, pitrClusters(ctx.config, targets), o))
        for (const b of bases) ctx.out(`would verify cluster ${c.container} ${b.id} (base backup, ${b.finished_at}): its WAL hashed and recovered to the end of the archive in ${c.container}`);
    for (const [t, bs, ds] of plan) {
      const where = verificationShell(ctx, t).sh.where;
      if (!bs.length) ctx.out(`${t.project}/${t.environment}: no complete backup to verify`);
      for (const b of bs) ctx.out(`would verify ${t.project}/${t.environment} ${b.meta.id} (${b.meta.type}, ${b.meta.created_at}) in ${where}`);
      for (const d of ds) ctx.out(`would fail ${t.project}/${t.environment} ${d.id}: damaged backup: ${d.problem}`);
    }
    ctx.out('dry run: nothing changed');
    return { results: [], exitCode: EXIT.OK };
  }
  // Every copy's identity is checked before the first is read (a missing one: exit 2, nothing done).
  const sources = new Map<StoredBackup, DumpSource>();
  if (o.offsite) for (const [t, bs] of plan) for (const b of bs) sources.set(b, await readableCopy(ctx, t, b));

  const results: VerifyOutcome[] = [];
  // On a terminal, a row per target as each is verified; the lines below stay the record.
  const board = new Board(ctx.term, plan.map(([t]) => `${t.project}/${t.environment}`), 'verification restores');
  for (const [t, bs, ds] of plan) {
    const key = `${t.project}/${t.environment}`;
    const before = results.length;
    board.start(key, bs.length ? `restoring ${bs.length === 1 ? bs[0].meta.id : `${bs.length} backups`}` : undefined);
    for (const d of ds) {
      const r = damagedOutcome(ctx, t, d);
      results.push(r);
      ctx.out(`FAILED  ${r.project}/${r.environment} ${r.id}: ${r.error}`);
    }
    if (!bs.length) targetLogger(ctx.logger, t).warn('no complete backup to verify');
    for (const b of bs) {
      const r = await verifyOne(ctx, t, b, o.jobs, repos.get(t)!, sources.get(b));
      results.push(r);
      const v = r.verification;
      ctx.out(
        r.status === 'passed'
          ? `passed  ${r.project}/${r.environment} ${r.id}: ${v!.tables} tables, ${v!.rows} rows${partialNote(b.meta)} (${(v!.duration_ms / 1000).toFixed(1)} s)`
          : `${r.status === 'failed' ? 'FAILED' : 'ERROR '}  ${r.project}/${r.environment} ${r.id}: ${r.error}`,
      );
    }
    const mine = results.slice(before);
    const bad = mine.filter((r) => r.status !== 'passed');
    board.finish(key, !mine.length ? 'skipped' : bad.length ? 'failed' : 'done', !mine.length ? 'no complete backup' : bad.length ? `${bad.length} of ${mine.length} failed` : `${mine.length} passed`);
  }
  board.close();
  if (!o.offsite && !o.backup) for (const [c, bases] of await chainPlan(ctx, pitrClusters(ctx.config, targets), o)) results.push(...(await verifyChains(ctx, c, bases)));
  const failed = results.filter((r) => r.status === 'failed').length;
  const errors = results.filter((r) => r.status === 'error').length;
  const bad = results.filter((r) => r.status !== 'passed').map((r) => (r.cluster ? `cluster ${r.cluster} ${r.id}` : `${r.project}/${r.environment} ${r.id}`));
  const summary = `${results.length} verified: ${results.length - failed - errors} passed, ${failed} failed${errors ? `, ${errors} could not run` : ''}${bad.length ? ` (${bad.join(', ')})` : ''}`;
  ctx.out(summary);
  await writeMetrics(ctx, pitrSeries(ctx));
  await notify(ctx, { command: 'verify-backups', ok: !failed && !errors, summary, results });
  return { results, exitCode: failed ? EXIT.VERIFY_FAILED : errors ? EXIT.FAILED : EXIT.OK };
}

/** Per cluster, the base backups to verify with their chains: the newest (--all: every one); damaged ones fail. */
async function chainPlan(ctx: Context, clusters: Cluster[], o: VerifyOptions): Promise<[Cluster, BaseBackupMetadata[]][]> {
  const plan: [Cluster, BaseBackupMetadata[]][] = [];
  for (const c of clusters) {
    const bases = (await archiveOf(ctx, c).baseBackups()).items.sort((a, b) => (a.finished_at > b.finished_at ? -1 : 1));
    plan.push([c, o.all ? bases : bases.slice(0, 1)]);
  }
  return plan;
}

/** Each base backup's chain verified and recorded (lib/pitr/chain.ts), a line each; as outcomes of the cluster's first target. */
async function verifyChains(ctx: Context, c: Cluster, bases: BaseBackupMetadata[]): Promise<VerifyOutcome[]> {
  const [{ project, environment }] = c.targets;
  const problems = (await archiveOf(ctx, c).baseBackups()).problems;
  const outcomes: VerifyOutcome[] = problems.map((p) => ({ project, environment, cluster: c.container, id: p.split(':')[0], status: 'failed', error: `damaged base backup: ${p}` }));
  for (const o of outcomes) ctx.out(`FAILED  cluster ${c.container} ${o.id}: ${o.error}`);
  if (!bases.length) ctx.out(`cluster ${c.container}: no base backup to verify`);
  for (const b of bases) {
    const r = await verifyChain(ctx, c, b);
    const v = r.verification;
    ctx.out(
      r.status === 'passed'
        ? `passed  cluster ${c.container} ${b.id}: recovered through ${v!.segments} WAL segment(s) to ${v!.through} (replayed to ${v!.replayed_lsn}) (${(v!.duration_ms / 1000).toFixed(1)} s)`
        : `${r.status === 'failed' ? 'FAILED' : 'ERROR '}  cluster ${c.container} ${b.id}: ${r.error}`,
    );
    outcomes.push({ project, environment, cluster: c.container, id: b.id, status: r.status, ...(r.error ? { error: r.error } : {}) });
  }
  return outcomes;
}

/** --checksums: every stored dump of the targets re-hashed, each result recorded (checksum); exit 4 on a mismatch or damage, 1 when one could not be read. */
async function runChecksums(ctx: Context, targets: Target[], o: VerifyOptions): Promise<{ results: VerifyOutcome[]; exitCode: ExitCode }> {
  const t0 = performance.now();
  const { results, planned } = await checksumPass(o.dryRun ? dryRunContext(ctx) : ctx, targets, { backup: o.backup, dryRun: o.dryRun });
  if (o.backup && !planned) throw new UsageError(`no backup ${o.backup} in ${o.project ?? 'any project'}${o.environment ? `/${o.environment}` : ''}`);
  if (o.dryRun) {
    ctx.out(`would hash ${planned} stored dump(s) of ${targets.length} target(s) against their metadata`);
    ctx.out('dry run: nothing changed');
    return { results: [], exitCode: EXIT.OK };
  }
  for (const r of results) if (r.status !== 'passed') ctx.out(`${r.status === 'failed' ? 'FAILED' : 'ERROR '}  ${r.project}/${r.environment} ${r.id}: ${r.error}`);
  const count = (s: string) => results.filter((r) => r.status === s).length;
  const [failed, errors] = [count('failed'), count('error')];
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  const secs = (performance.now() - t0) / 1000;
  const bad = results.filter((r) => r.status !== 'passed').map((r) => `${r.project}/${r.environment} ${r.id}`);
  const summary = `${results.length} checksummed (${humanSize(bytes)} in ${secs.toFixed(1)} s, ${humanSize(bytes / Math.max(secs, 1e-3))}/s): ${results.length - failed - errors} passed, ${failed} failed${errors ? `, ${errors} could not be read` : ''}${bad.length ? ` (${bad.join(', ')})` : ''}`;
  ctx.out(summary);
  await writeMetrics(ctx, pitrSeries(ctx));
  await notify(ctx, { command: 'verify-backups', ok: !failed && !errors, summary, results });
  const outcomes: VerifyOutcome[] = results.map((r) => ({ project: r.project, environment: r.environment, id: r.id, status: r.status, ...(r.error ? { error: r.error } : {}) }));
  return { results: outcomes, exitCode: failed ? EXIT.VERIFY_FAILED : errors ? EXIT.FAILED : EXIT.OK };
}
