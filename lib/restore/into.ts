/**
 * Restoring an opened dump (lib/restore/stage.ts) into a NEW database, and where verification
 * restores run. Used by `restore --into`, `verify-backups` and the safe restore over a live
 * database (lib/restore/over.ts), which restores into a scratch database first.
 *
 * Promises: an existing database is never restored into, nor dropped (the server's SQLSTATE for
 * the CREATE DATABASE says so, never its message); every table and row count of the copy is
 * checked against the dump's metadata; on any failure or interrupt the database this call created
 * is dropped, and the opened dump is closed whatever happens. Nothing else is touched.
 */
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError, VerificationError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { Undo, withLeftovers } from '../core/undo.js';
import { createDatabase, dropDatabase, DUPLICATE_DATABASE, type DbProps } from '../postgres/dbadmin.js';
import { parseRowCounts, PsqlSession, ROW_COUNTS_SQL } from '../postgres/psql.js';
import { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import { compareCounts } from './dump.js';
import { both, decompressed, defaultJobs, type OpenedDump } from './stage.js';

export interface RestoreIntoOptions {
  /** How to reach the server (default: the target's container). */
  shell?: TargetShell;
  /** Owner of the new database (default: target.user). */
  owner?: string;
  /** Take encoding and locale from these properties (default: the server's). */
  like?: DbProps | null;
  /** pg_restore jobs; the dump must have been opened (openDump) with the same number. */
  jobs?: number;
  /** Leave ownership and privileges out (a verification server without the tenant's roles). */
  noOwner?: boolean;
  /** A session on the maintenance database opened ahead (withMaintenanceSession), for the CREATE DATABASE; the caller ends it. */
  admin?: PsqlSession;
  signal?: AbortSignal;
}

export interface RestoreIntoResult {
  database: string;
  container: string | null;
  counts: Record<string, number>;
  tables: number;
  rows: number;
  durationMs: number;
}

/** The head with the data positions over the staged file's start, then pg_restore with the remaining arguments. */
export const PATCH_THEN_RESTORE = 'f=$1; shift; dd of="$f" conv=notrunc bs=1M status=none && exec pg_restore "$@"';

/** Where verification restores run: platform.verify.container as its `postgres` superuser, else the target's own. */
export function verificationShell(ctx: Context, target: Target): { sh: TargetShell; foreign: boolean } {
  const vc = ctx.config.platform.verifyContainer;
  if (!vc) return { sh: ctx.shellFor(target), foreign: false };
  return { sh: new TargetShell(ctx.runner, ctx.containers, { ...target, user: 'postgres' }, {}, vc), foreign: true };
}

/**
 * Restore an opened dump into a NEW database `database` (refused when it exists) and check every
 * table and row count against the metadata. Any non-zero pg_restore exit is a failure. The dump is
 * closed (its staged copy removed) whatever happens. On any failure or interrupt, the database
 * this call created is dropped; nothing else is touched.
 */
export async function restoreInto(ctx: Context, target: Target, source: OpenedDump, database: string, opts: RestoreIntoOptions = {}): Promise<RestoreIntoResult> {
  const sh = opts.shell ?? ctx.shellFor(target);
  const signal = opts.signal ?? ctx.signal;
  const log = targetLogger(ctx.logger, target);
  const where = `${target.project}/${target.environment}`;
  const jobs = opts.jobs ?? defaultJobs();
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const undo = new Undo(log);
  let counter: PsqlSession | undefined;
  try {
    const keep = undo.push(`drop database ${database}`, () => dropDatabase(sh, database));
    const made = await createDatabase(sh, database, { owner: opts.owner ?? target.user, like: opts.like, signal, session: opts.admin });
    if (!made.created) {
      keep(); // refused by the server: nothing was created, and a database of that name is not ours to drop
      if (made.sqlstate === DUPLICATE_DATABASE) throw new PgfleetError(`${where}: database "${database}" already exists (${sh.where}); choose a new name`, EXIT.FAILED, sh.ref);
      throw new PgfleetError(`${where}: could not create database "${database}" (${sh.where}): ${made.message} (SQLSTATE ${made.sqlstate})`, EXIT.FAILED, sh.ref);
    }
    log.debug({ database, ms: ms() }, 'database created');
    // The session that counts the rows connects while pg_restore runs, so the count starts the moment it ends.
    counter = PsqlSession.open(sh, database, signal);
    const args = ['--exit-on-error', '-w', ...(opts.noOwner ? ['--no-owner', '--no-privileges'] : []), ...sh.conn(database)];
    const staged = source.staged;
    const tocPatch = await staged?.tocPatch;
    if (staged) log.debug({ ms: ms(), data_positions: tocPatch ? 'filled in' : 'as written' }, 'pg_restore starts from the staged copy');
    // pg_restore says nothing of its progress: the bar is its time against the backup's last verification restore.
    const bar = ctx.term.timer(`pg_restore into ${database}`, { expectedMs: source.meta?.verification?.status === 'passed' ? source.meta.verification.duration_ms : null, basis: "this backup's last verification", missing: 'this backup was never verified' });
    try {
      if (staged && tocPatch) await sh.run('sh', ['-c', PATCH_THEN_RESTORE, 'pgfleet-restore', staged.file, '-j', String(jobs), ...args, staged.file], { input: tocPatch, signal, what: 'pg_restore', program: 'pg_restore', role: 'restore' });
      else if (staged) await sh.run('pg_restore', ['-j', String(jobs), ...args, staged.file], { signal, what: 'pg_restore', role: 'restore' });
      else {
        const d = decompressed(ctx, sh, source, signal);
        await both(sh.run('pg_restore', args, { input: d.stream, signal, what: 'pg_restore', role: 'restore' }), d.done);
      }
    } finally {
      bar.stop();
    }
    log.debug({ database, ms: ms() }, 'pg_restore done');
    const [counted, closed] = await Promise.allSettled([counter.query(ROW_COUNTS_SQL, signal).then(parseRowCounts), source.close()]);
    if (counted.status === 'rejected') throw counted.reason;
    if (closed.status === 'fulfilled' && closed.value.length) log.warn({ left: closed.value }, 'the staged copy of the dump could not be removed');
    const counts = counted.value;
    log.debug({ database, ms: ms() }, 'rows counted');
    void counter.close().catch(() => undefined); // told to quit; its exit is not waited for
    counter = undefined;
    if (source.meta) {
      const problems = compareCounts(source.meta.tables, counts, source.meta.partial?.data_excluded);
      if (problems.length)
        throw new VerificationError(
          `${where}: the restored copy of ${source.meta.id} differs from its metadata: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`,
          sh.ref,
        );
    } else log.warn({ file: source.path }, 'no metadata: the restored copy cannot be checked against recorded row counts');
    const rows = Object.values(counts).reduce((a, b) => a + b, 0);
    log.info({ database, where: sh.where, tables: Object.keys(counts).length, rows, duration_ms: ms() }, 'restored and checked');
    keep();
    return { database, container: sh.container ?? null, counts, tables: Object.keys(counts).length, rows, durationMs: ms() };
  } catch (e) {
    counter?.kill();
    const left = [...(await source.close()), ...(await undo.run())];
    throw withLeftovers(e, left, sh.ref);
  }
}
