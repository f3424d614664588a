/**
 * What a failed backup says (lib/backup/take.ts, its error path): the run's first failure, in the
 * operator's words, always naming `<project>/<environment>`.
 *
 * Promises: an interrupt wins over what it caused (a child killed by the same Ctrl-C may report
 * first); a lock wait that ran out is said plainly (decided on the failed program and the server's
 * message in its stderr tail, never on an error's message); a full disk says so; anything else
 * keeps its own message (a CommandError: the program, how it ended, its stderr tail).
 */
import type { Target } from '../config/load.js';
import { CommandError, EXIT, InterruptedError, PgfleetError } from '../core/errors.js';

const LOCK_TIMEOUT = /canceling statement due to lock timeout/;
const STATEMENT_TIMEOUT = /canceling statement due to statement timeout/;

export function backupFailure(e: unknown, target: Target, o: { lockWaitMs: number; signal?: AbortSignal }): unknown {
  if (o.signal?.aborted) return new InterruptedError(String(o.signal.reason ?? 'SIGINT'));
  return decorate(lockWaitProblem(e, target, o.lockWaitMs), target);
}

/** A lock wait that ran out (pg_dump's LOCK TABLE, or the row counts' lock_timeout), said plainly. */
function lockWaitProblem(e: unknown, target: Target, lockWaitMs: number): unknown {
  if (!(e instanceof CommandError && (e.program === 'pg_dump' || e.program === 'psql'))) return e;
  const tail = e.stderrTail;
  if (!LOCK_TIMEOUT.test(tail) && !(STATEMENT_TIMEOUT.test(tail) && /LOCK TABLE/.test(tail))) return e;
  const first = tail.trim().split('\n').find((l) => /ERROR/.test(l))?.trim() ?? tail.trim().split('\n')[0];
  return new PgfleetError(
    `${target.project}/${target.environment}: a table lock was not granted within ${humanMs(lockWaitMs)} (--lock-wait-timeout, or backup.lock_wait_timeout): another session holds a conflicting lock; nothing was dumped (${first})`,
    EXIT.FAILED,
    { project: target.project, environment: target.environment },
    { cause: e },
  );
}

function humanMs(ms: number): string {
  for (const [unit, n] of [['h', 3600e3], ['m', 60e3], ['s', 1e3]] as const) if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

/** Name the target in errors that do not already (disk full, a stream error). */
function decorate(e: unknown, target: Target): unknown {
  if (e instanceof PgfleetError) return e;
  const where = `${target.project}/${target.environment}`;
  const code = (e as NodeJS.ErrnoException)?.code;
  const msg = code === 'ENOSPC' ? 'no space left on the backup volume' : e instanceof Error ? e.message : String(e);
  return new PgfleetError(`${where}: backup failed: ${msg}`, EXIT.FAILED, { project: target.project, environment: target.environment }, { cause: e });
}
