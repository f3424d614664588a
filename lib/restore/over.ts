/**
 * The safe restore over a live database (ARCHITECTURE.md "A safe restore"). The caller holds the
 * target's lock; nothing here prompts or prints.
 *
 *   check the dump against its metadata, and meanwhile the preflight (lib/restore/preflight.ts:
 *   container, live database, privileges, app containers) → safety backup → stop the running app
 *   containers → restore into a scratch database and check it → in one transaction: give it the
 *   live database's settings and privileges, end the sessions, rename (live → <db>__before_<stamp>,
 *   scratch → live) → check the live copy (verify_on_restore), before any app writes to it → start
 *   the app containers
 *
 * Promises: a failure (or interrupt) before the swap drops the scratch database, starts the app
 * containers it stopped and leaves the live database untouched; a failure after the swap swaps
 * back first. Each rollback step is registered before its risky step and checks state before
 * acting. The replaced database is kept until dropped on purpose.
 */
import { takeBackup } from '../backup/take.js';
import type { Target } from '../config/load.js';
import { EXIT, InterruptedError, PgfleetError, VerificationError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { Steps } from '../core/steps.js';
import { Undo, withLeftovers } from '../core/undo.js';
import { dropDatabase, scratchName, swapDatabases, withMaintenanceSession } from '../postgres/dbadmin.js';
import { parseRowCounts, type PsqlSession, ROW_COUNTS_SQL } from '../postgres/psql.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';
import { compareCounts } from './dump.js';
import { restoreInto } from './into.js';
import { swapBack } from './kept.js';
import { preflight } from './preflight.js';
import { openDump, openWhile } from './stage.js';

export interface RestoreOverOptions {
  /** Take a `safety` backup of the live database first (default true). */
  safetyBackup?: boolean;
  signal?: AbortSignal;
  /** pg_restore jobs (default: up to 4, by CPUs). */
  jobs?: number;
  /** Told each step as it starts. */
  onStep?: (step: string) => void;
}

export interface RestoreOverResult {
  liveDatabase: string;
  /** The replaced database, kept under this name until dropped on purpose. */
  previousDatabase: string;
  safetyBackup?: StoredBackup;
  backupId: string | null;
  tables: number;
  rows: number;
  /** App containers stopped and started again. */
  restartedContainers: string[];
  durationMs: number;
}

export async function restoreOver(ctx: Context, target: Target, backup: StoredBackup | { path: string }, opts: RestoreOverOptions = {}): Promise<RestoreOverResult> {
  // Each step a line on the terminal (✓/✗ and its duration) and a log record, as it is done.
  const steps = new Steps(targetLogger(ctx.logger, target), ctx.term, { prefix: 'restore', onStep: opts.onStep });
  // Connected while the dump is staged, it serves the preflight's questions, the CREATE DATABASE, the
  // swap and the check of the live copy without an `exec` of their own.
  return withMaintenanceSession(ctx.shellFor(target), (admin) => restoreOverWith(ctx, target, backup, opts, admin, steps)).then(
    (r) => (steps.done(), r),
    (e: unknown) => {
      steps.fail();
      throw e;
    },
  );
}

async function restoreOverWith(ctx: Context, target: Target, backup: StoredBackup | { path: string }, opts: RestoreOverOptions, admin: PsqlSession, steps: Steps): Promise<RestoreOverResult> {
  const signal = opts.signal ?? ctx.signal;
  const log = targetLogger(ctx.logger, target);
  const ref = { project: target.project, environment: target.environment };
  const where = `${target.project}/${target.environment}`;
  const live = target.database;
  const t0 = performance.now();
  const step = (name: string) => {
    if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
    steps.step(name);
  };

  // The file against its metadata, before anything else: it is checked as it is staged (which
  // touches nothing but a new directory under /tmp), while the preflight asks what can be known
  // wrong before anything is touched.
  step('check the dump against its metadata');
  const sh = ctx.shellFor(target);
  const now = ctx.clock();
  const asking = preflight(ctx, target, sh, admin, now, signal);
  const [dump, pre] = await openWhile(openDump(ctx, sh, backup, { jobs: opts.jobs, signal }), asking, ref);
  if ('refusal' in pre) throw withLeftovers(new PgfleetError(pre.refusal, EXIT.FAILED, ref), await dump.close(), ref);
  const { props, keepAs, appState } = pre;
  const scratch = scratchName(live, now);

  const undo = new Undo(log);
  try {
    let safety: StoredBackup | undefined;
    if (opts.safetyBackup !== false) {
      step('safety backup of the live database');
      safety = await takeBackup({ ...ctx, term: ctx.term.nested() }, target, { type: 'safety', release: null });
    }

    step('stop app containers');
    const stopped: string[] = [];
    for (const [c, wasRunning] of appState) {
      if (!wasRunning) {
        log.info({ container: c }, 'app container already stopped; left as it is');
        continue;
      }
      undo.push(`start app container ${c}`, async () => {
        if ((await ctx.containers.isRunning(c, ref)) === false) await ctx.containers.start(c, ref);
      });
      await ctx.containers.stop(c, ref);
      stopped.push(c);
    }

    step(`restore into scratch database ${scratch}`);
    undo.push(`drop scratch database ${scratch}`, () => dropDatabase(sh, scratch));
    const restored = await restoreInto(ctx, target, dump, scratch, { shell: sh, owner: props.owner, like: props, jobs: opts.jobs, signal, admin });

    step(`swap: ${live} → ${keepAs}, ${scratch} → ${live}`);
    undo.push(`swap back: ${keepAs} → ${live}`, () => swapBack(sh, live, keepAs, scratch));
    await swapDatabases(sh, live, scratch, keepAs, props, admin); // not under the signal: one short transaction, settings and privileges included

    if (target.backup.verify_on_restore && dump.meta) {
      step('check the live database (verify_on_restore)');
      // A new connection to the database now live, counted afresh.
      await admin.connect(live, signal);
      const problems = compareCounts(dump.meta.tables, parseRowCounts(await admin.query(ROW_COUNTS_SQL, signal)), dump.meta.partial?.data_excluded);
      if (problems.length) throw new VerificationError(`${where}: the live database after the swap differs from backup ${dump.meta.id}: ${problems.slice(0, 5).join('; ')}`, ref);
    }

    // The restored database is live and checked. From here on nothing is rolled back: an app that
    // started may already have written to it, so a container that fails to start is reported.
    undo.clear();
    step('start app containers');
    const notStarted: string[] = [];
    for (const c of stopped) {
      try {
        await ctx.containers.start(c, ref);
      } catch (e) {
        notStarted.push(`${c} (${(e as Error)?.message ?? e})`);
      }
    }
    if (notStarted.length)
      throw new PgfleetError(`${where}: the database is restored (previous copy kept as ${keepAs}), but app containers did not start: ${notStarted.join('; ')}; start them by hand`, EXIT.FAILED, ref);
    const durationMs = Math.round(performance.now() - t0);
    log.info({ backup: dump.meta?.id ?? dump.path, previous_database: keepAs, tables: restored.tables, rows: restored.rows, duration_ms: durationMs }, 'restore complete');
    return { liveDatabase: live, previousDatabase: keepAs, safetyBackup: safety, backupId: dump.meta?.id ?? null, tables: restored.tables, rows: restored.rows, restartedContainers: stopped, durationMs };
  } catch (e) {
    steps.fail();
    log.error({ err: (e as Error)?.message ?? String(e) }, 'restore failed; rolling back');
    const left = await undo.run();
    throw withLeftovers(e, [...left, ...(await dump.close())], ref);
  }
}
