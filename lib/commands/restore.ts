/**
 * `pgfleet restore <project> <env> (<id> | <path> | --latest) [--yes] [--dry-run] [--no-safety-backup]
 *  [--into <database>] [--jobs N] [--from-offsite]`
 * `pgfleet restore <project> <env> --to <ISO-8601 time | latest> [--into <database>] [--yes] [--dry-run]`
 *
 *   which dump → the plan (printed) → consent (--dry-run stops here, after checking the file;
 *   --yes, or a question on a TTY; without a TTY, exit 2) → under the target's lock, the safe
 *   restore of lib/restore/over.ts → how to drop the kept database
 *
 * With --into, the dump goes into a NEW database of that name and nothing live is touched (no
 * lock, no safety backup, no app container stopped). A live database that does not exist (a host
 * rebuilt) is restored with --into its own name: refused when it exists after all.
 *
 * With --from-offsite, the copy in the target's bucket (by id or --latest, found from the bucket
 * alone) is streamed, its stored bytes and its decrypted archive checked while it is staged; the
 * identity (PGFLEET_AGE_IDENTITY_FILE) is checked before anything else (lib/restore/remote.ts).
 *
 * With --to, the dump is the database as it was at that time (lib/pitr/recover.ts): the window,
 * the archive and the container's free space are checked before consent and before anything is
 * touched; then a temporary instance recovers it and dumps it into a private temporary file that
 * the same safe restore (or --into) reads, and that is removed at the end, also on failure.
 * With --to and --from-offsite, the same from the bucket alone (lib/pitr/offsite.ts): planned over
 * the copies of the cluster's base backups and WAL, the identity and this host's space checked
 * before consent; then what the plan needs fetched, checked and decrypted into a private
 * directory, recovered from there, and removed (for a host whose local archive is gone).
 */
import path from 'node:path';
import { findTarget, type Target } from '../config/load.js';
import { isPgIdent, PG_IDENT } from '../config/names.js';
import { confirmOrExit, type ConfirmOptions } from '../runtime/confirm.js';
import type { Context } from '../runtime/context.js';
import { dbProps, propsStatements, withMaintenanceSession } from '../postgres/dbadmin.js';
import { UsageError } from '../core/errors.js';
import { humanSize } from '../core/text.js';
import { withLock } from '../storage/lock.js';
import { checkDumpFile } from '../restore/dump.js';
import { restoreInto } from '../restore/into.js';
import { restoreOver } from '../restore/over.js';
import { partialGate } from '../restore/partial.js';
import { describePartial } from '../formats/metadata.js';
import { openDump, openWhile } from '../restore/stage.js';
import { describeSource, resolveSource } from '../restore/source.js';
import { resolveOffsiteSource } from '../restore/remote.js';
import type { DumpSource } from '../restore/dump.js';
import { isRemoteDump } from '../offsite/fetch.js';
import { WAL_NAME } from '../formats/pitr.js';
import { clusterOf } from '../pitr/cluster.js';
import { noOffsite, planFromBucket, withBucketRecovery } from '../pitr/offsite.js';
import { checkRecoverySpace, parsePointInTime, planRecovery, takeInLanded, withRecoveredDump } from '../pitr/recover.js';

export interface RestoreCommandOptions {
  project: string;
  environment: string;
  /** A backup id or a dump's path. */
  source?: string;
  latest?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  /** Default true. */
  safetyBackup?: boolean;
  into?: string;
  /** Restore the copy in the target's offsite bucket (a backup id or latest). */
  fromOffsite?: boolean;
  jobs?: number;
  /** Restore a partial backup (taken with exclude_tables / exclude_table_data) as a whole database anyway. */
  allowPartial?: boolean;
  /** Recover the database to this point first (`latest`: the end of the WAL archive); see the header. */
  to?: string;
  /** Tests: how confirmation is asked (see lib/runtime/confirm.ts). */
  confirm?: Pick<ConfirmOptions, 'tty' | 'ask'>;
}

export interface RestoreCommandResult {
  dryRun: boolean;
  database: string;
  previousDatabase?: string;
  safetyBackup?: string;
}


export async function runRestore(ctx: Context, o: RestoreCommandOptions): Promise<RestoreCommandResult> {
  const t = findTarget(ctx.config, o.project, o.environment);
  const ref = { project: t.project, environment: t.environment };
  if (o.into !== undefined && !isPgIdent(o.into)) throw new UsageError(`--into ${JSON.stringify(o.into)}: not a valid database name (allowed: ${PG_IDENT.source})`);
  if (o.to !== undefined && (o.source || o.latest || o.safetyBackup === false))
    throw new UsageError('--to restores the database as it was at that time: give no backup, path, --latest or --no-safety-backup with it');
  const pitr = o.to !== undefined ? await pitrPlan(ctx, t, o.to, !o.dryRun, !!o.fromOffsite) : undefined;
  const src: DumpSource | undefined = pitr ? undefined : o.fromOffsite ? await resolveOffsiteSource(ctx, t, o) : await resolveSource(ctx, t, o);
  const where = t.container ? `container ${t.container}` : 'DATABASE_URL';
  // A partial backup restored whole: refused before the plan unless --allow-partial (lib/restore/partial.ts).
  const partial = src ? await partialGate(src, { allowPartial: o.allowPartial, target: ref, what: o.into ? `a restore into ${o.into}` : `a restore over ${t.database}` }) : null;

  // The plan, shown before consent and as the whole output of --dry-run.
  ctx.out(`restore plan for ${t.project}/${t.environment} (${where}):`);
  if (pitr) for (const line of pitr.lines) ctx.out(line);
  else ctx.out(`  from          ${describeSource(src!)}`);
  if (src && isRemoteDump(src)) ctx.out(`  offsite       ${src.path}${src.stored.encryption ? ' (age-encrypted, read with PGFLEET_AGE_IDENTITY_FILE)' : ''}; streamed, never a file on this host`);
  if (partial) ctx.out(`  PARTIAL       ${describePartial(partial)} (--allow-partial: restored without those tables, or with them empty)`);
  if (o.into) {
    ctx.out(o.into === t.database ? `  into          a new database ${o.into}, the live database's own name (refused when it exists)` : `  into          a new database ${o.into}; the live database ${t.database} is not touched`);
  } else {
    ctx.out(`  1. check       size and sha256 of the dump against its metadata`);
    ctx.out(`  2. safety      ${o.safetyBackup === false ? 'NO safety backup (--no-safety-backup)' : `a safety backup of ${t.database}`}`);
    ctx.out(`  3. stop        ${t.appContainers.length ? t.appContainers.join(', ') : '(no app containers configured)'}`);
    ctx.out(`  4. restore     into a scratch database, then check every table's row count`);
    ctx.out(`  5. swap        ${t.database} → ${t.database}__before_<stamp> (kept), scratch → ${t.database}`);
    ctx.out(`  6. start       the app containers stopped in step 3${t.backup.verify_on_restore ? ', after checking the live copy (verify_on_restore)' : ''}`);
  }
  if (o.dryRun && src) {
    const c = await checkDumpFile(src, { signal: ctx.signal, target: ref });
    ctx.out(c.meta ? `  the dump matches its metadata (sha256 ${c.sha256.slice(0, 16)}…)` : `  WARNING: ${c.path} has no metadata; its content cannot be checked`);
  }
  const question = o.into ? `Restore into a new database ${o.into}?` : `Replace the live database ${t.database} of ${t.project}/${t.environment}?`;
  if (!(await confirmOrExit(ctx, question, { yes: o.yes, dryRun: o.dryRun, ...o.confirm }))) {
    ctx.out('dry run: nothing changed');
    return { dryRun: true, database: o.into ?? t.database };
  }
  if (pitr) return recoverWith(ctx, t, pitr, (file) => restoreFrom(ctx, t, o, { path: file }, `${t.database} as it was at ${pitr.plan.point}`));
  return restoreFrom(ctx, t, o, src!);
}

/** After consent: the dump restored --into a new database, or over the live one (the safe restore). `recovered`: what a --to dump is (its row counts are the recovered instance's). */
async function restoreFrom(ctx: Context, t: Target, o: RestoreCommandOptions, src: DumpSource, recovered?: string): Promise<RestoreCommandResult> {
  const ref = { project: t.project, environment: t.environment };

  if (o.into) {
    const sh = ctx.shellFor(t);
    const { r, checked } = await withMaintenanceSession(sh, async (admin) => {
      const [opened, like] = await openWhile(openDump(ctx, sh, src, { jobs: o.jobs, signal: ctx.signal }), dbProps(sh, t.database, { signal: ctx.signal, session: admin }), ref);
      const restored = await restoreInto(ctx, t, opened, o.into!, { shell: sh, like, jobs: o.jobs, admin });
      // What defines the live database beyond its encoding and locale, in one transaction: settings, grants, role-in-database settings, comment, labels.
      if (like) await admin.query(['BEGIN;', ...propsStatements(o.into!, like), 'COMMIT;'].join('\n'), ctx.signal);
      return { r: restored, checked: opened };
    });
    ctx.out(`restored into ${o.into}: ${r.tables} tables, ${r.rows} rows${checked.meta ? `, row counts match the ${recovered ? 'recovered instance' : 'backup'}` : ''} (${(r.durationMs / 1000).toFixed(1)} s)`);
    if (o.into === t.database) ctx.out(`${o.into} is the live database again; start its app containers`);
    else ctx.out(`drop it when done: ${dropHint(ctx, t, o.into)}`);
    ctx.term.finish(`live now: ${t.database} untouched; ${o.into} holds the restored copy`, `drop ${o.into} when done: ${dropHint(ctx, t, o.into)}`);
    return { dryRun: false, database: o.into };
  }

  const r = await withLock(ctx.repo.lockDir(t.project, t.environment), t, 'restore', () =>
    restoreOver(ctx, t, src, { safetyBackup: o.safetyBackup !== false, jobs: o.jobs, signal: ctx.signal }),
  );
  ctx.out(`restored ${recovered ?? r.backupId ?? path.basename('path' in src ? src.path : '')} into ${t.database}: ${r.tables} tables, ${r.rows} rows${recovered && r.backupId ? ', row counts match the recovered instance' : ''} (${(r.durationMs / 1000).toFixed(1)} s)`);
  if (r.safetyBackup) ctx.out(`safety backup: ${r.safetyBackup.meta.id} (${r.safetyBackup.path})`);
  ctx.out(`the replaced database is kept as ${r.previousDatabase}; drop it when satisfied: ${dropHint(ctx, t, r.previousDatabase)}`);
  ctx.term.finish(`live now: ${t.database} of ${t.project}/${t.environment}, restored from ${recovered ?? r.backupId ?? path.basename('path' in src ? src.path : '')}`, `drop the kept ${r.previousDatabase} when satisfied: ${dropHint(ctx, t, r.previousDatabase)}`);
  return { dryRun: false, database: t.database, previousDatabase: r.previousDatabase, safetyBackup: r.safetyBackup?.meta.id };
}

/** The recovery --to plans (read-only, refused before anything is touched), and its lines of the printed plan. */
async function pitrPlan(ctx: Context, t: Target, to: string, takeIn: boolean, fromOffsite: boolean) {
  const point = parsePointInTime(to);
  const cluster = clusterOf(ctx.config, t);
  // --from-offsite: planned over the bucket's copies alone (lib/pitr/offsite.ts); the container's space is checked once they are fetched.
  if (fromOffsite && !t.offsite) throw noOffsite(t);
  const bucket = fromOffsite ? await planFromBucket(ctx, t, cluster, point) : undefined;
  if (takeIn && !bucket) await takeInLanded(ctx, cluster);
  const plan = bucket?.plan ?? (await planRecovery(ctx, cluster, point));
  const space = bucket ? null : await checkRecoverySpace(ctx, cluster, plan);
  const segs = plan.wal.filter((r) => r.kind === 'segment').length + plan.waiting.filter((n) => WAL_NAME.segment.test(n)).length;
  const lines = [
    `  from          ${t.database} as it was at ${plan.point}${point === 'latest' ? ' (latest: the end of the WAL archive)' : ''}, recovered by a temporary instance in container ${cluster.container} (removed after)`,
    `  window        restorable from ${plan.window.from} to ${plan.window.to}`,
    `  base backup   ${plan.base.id} (finished ${plan.base.finished_at}, ${humanSize(plan.base.size_bytes)})`,
    `  WAL           ${plan.segments.first} … ${plan.segments.last} (${segs} segment(s)${plan.waiting.length ? `, ${plan.waiting.length} of them still in the landing directory, taken in first` : ''}), replayed ${plan.target ? `to ${plan.target} inclusive` : 'to the end of the archive'}, then promoted`,
    `  timelines     ${plan.timelines.replace(/^timelines? /, '')}${plan.timeline !== plan.base.timeline ? ' (recovery follows the timeline switch, as the history file says)' : ''}`,
    ...(space
      ? [`  space         ${humanSize(space.needed)} needed in the container's /tmp, ${humanSize(space.available)} free`]
      : [
          `  offsite       fetched from ${bucket!.location}/_clusters/${cluster.container}/${bucket!.identityFile ? ' (age-encrypted, read with PGFLEET_AGE_IDENTITY_FILE)' : ''}, each file checked, into a private directory under ${ctx.config.platform.backupRoot} (removed after)`,
          `  space         ${humanSize(bucket!.bytes)} to fetch, ${humanSize(bucket!.available)} free on this host; the container's /tmp checked once fetched, before the temporary instance starts`,
        ]),
  ];
  return { cluster, plan, lines, bucket };
}

/** The recovered dump for `use`: from the local archive, or fetched from the bucket (--from-offsite). */
function recoverWith<T>(ctx: Context, t: Target, pitr: Awaited<ReturnType<typeof pitrPlan>>, use: (file: string) => Promise<T>): Promise<T> {
  return pitr.bucket ? withBucketRecovery(ctx, t.database, pitr.bucket, use) : withRecoveredDump(ctx, pitr.cluster, { plan: pitr.plan, database: t.database }, use);
}

/** The stock command an operator runs to drop a database pgfleet kept or made. */
function dropHint(ctx: Context, t: Target, db: string): string {
  const sql = `'DROP DATABASE "${db}"'`;
  const user = t.user ? ` -U ${t.user}` : '';
  return t.container ? `${ctx.containers.commandText(['exec', '-it', t.container], t)} psql${user} -d postgres -c ${sql}` : `psql "$DATABASE_URL" -c ${sql} (connected to another database)`;
}
