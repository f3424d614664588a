/**
 * A backup's first round trip (lib/backup/take.ts, its first steps): the processes of the dump
 * started at once, and the preflight answered by the same round trip.
 *
 *   startDump:    zstd on the host; pg_dump inside the container, its stdout a kernel pipe into
 *                 zstd's stdin, waiting for a snapshot id on its stdin; the psql session that
 *                 will export that snapshot
 *   openSnapshot: pg_dump prints its version while the session opens a REPEATABLE READ
 *                 transaction, exports its snapshot and reads the server's version; then the
 *                 preflight's verdicts: container missing or stopped? database missing or
 *                 unreachable? pg_dump older than the server?
 *
 * Promises: every config value reaches pg_dump as its own argument (the script is a constant);
 * on any failure of openSnapshot the waiting pg_dump is told to exit without dumping, and the
 * error is the operator's problem in plain words (naming project, environment, where, and the
 * server's message), never a guess from an error's message text.
 */
import type { Target } from '../config/load.js';
import { CommandError, EXIT, PgfleetError } from '../core/errors.js';
import type { TargetShell } from '../process/container.js';
import type { Spawned } from '../process/runner.js';
import { SessionPool, type Session } from '../postgres/pool.js';
import { majorOf, PsqlSession } from '../postgres/psql.js';
import type { Context } from '../runtime/context.js';
import { exclusionArgs, type Exclusions } from './exclusions.js';

export interface Preflight {
  pgDumpVersion: string;
  serverVersion: string;
}

export interface DumpProcesses {
  zstd: Spawned;
  dump: Spawned;
  session: Session;
}

/**
 * pg_dump, started before its snapshot exists, so that its process start (a `docker exec`, the
 * slow part of a small backup) overlaps the snapshot session's: the shell prints pg_dump's version,
 * waits for the snapshot id on stdin, then execs pg_dump with it. Its first argument is the direct
 * path of pg_dump where one is known (SessionPool.clientPath: no pg_wrapper starting Perl twice);
 * when it is empty or nothing executable is there, pg_dump on PATH. The script is a constant; every
 * config value reaches pg_dump as its own argument ("$@"). With stdin closed before a snapshot
 * arrives, it exits without dumping.
 */
const DUMP_SCRIPT = 'p=$1; shift; [ -n "$p" ] && [ -x "$p" ] || p=pg_dump; "$p" --version >&2 || exit; IFS= read -r snapshot || exit 3; exec "$p" "$@" --snapshot="$snapshot"';

/**
 * Start zstd, pg_dump (waiting for its snapshot) and the snapshot session, in that order: zstd
 * first, so pg_dump's stdout is connected straight to its stdin and the uncompressed archive never
 * passes through this process (only zstd's output does). `track` is told each process as it starts
 * (to be killed on a failure), before anything can fail. With `sessions` (a fleet run), the
 * snapshot session is a kept one moved to this database when there is one, and pg_dump is called
 * by its direct path once the server's version is known.
 */
export function startDump(ctx: Context, target: Target, sh: TargetShell, o: { level: number; lockWaitMs: number; exclusions?: Exclusions; sessions?: SessionPool; track: (p: Spawned | Session) => void }): DumpProcesses {
  const ref = { project: target.project, environment: target.environment };
  const zstd = ctx.runner.spawn(['zstd', `-${o.level}`, '-T0', '-q', '-c'], { what: 'zstd', role: 'compress', target: ref });
  o.track(zstd);
  const dump = sh.spawn('sh', ['-c', DUMP_SCRIPT, 'pgfleet-dump', o.sessions?.clientPath(sh, 'pg_dump') ?? '', '-Fc', '-Z0', `--lock-wait-timeout=${Math.round(o.lockWaitMs)}`, '-w', ...(o.exclusions ? exclusionArgs(o.exclusions) : []), ...sh.conn(target.database)], {
    what: 'pg_dump',
    program: 'pg_dump',
    role: 'dump',
    interactive: true,
    stdoutTo: zstd,
  });
  o.track(dump);
  const session = o.sessions ? o.sessions.lease(sh, target.database) : PsqlSession.open(sh, target.database);
  o.track(session);
  return { zstd, dump, session };
}

/**
 * The round trip: resolves when pg_dump has printed its version and the session holds an exported
 * snapshot, with versions that fit. On any failure the waiting pg_dump is told to exit (its stdin
 * closed) and awaited, and the preflight's error is thrown.
 */
export async function openSnapshot(ctx: Context, target: Target, sh: TargetShell, p: DumpProcesses, lockWaitMs: number): Promise<Preflight & { snapshot: string }> {
  const [version, snap] = await Promise.allSettled([
    firstLine(p.dump),
    (async () => {
      // One round trip: the transaction, its exported snapshot and the server's version.
      const out = await p.session.query(`SET lock_timeout = ${Math.max(1, Math.round(lockWaitMs))}; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot(); SHOW server_version`);
      const [snapshot = '', serverVersion = ''] = out.trim().split('\n');
      if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new PgfleetError(`unexpected snapshot id from the server: ${JSON.stringify(snapshot)}`, EXIT.FAILED, sh.ref);
      return { snapshot, serverVersion: serverVersion.trim() };
    })(),
  ]);
  try {
    if (version.status === 'rejected' || snap.status === 'rejected') {
      const problem = await containerProblem(ctx, sh);
      if (problem) throw problem;
      if (version.status === 'rejected') throw version.reason;
      throw connectionProblem(target, sh, (snap as PromiseRejectedResult).reason);
    }
    const v = checkVersions(target, sh, { pgDumpVersion: pgDumpVersionOf(version.value), serverVersion: snap.value.serverVersion });
    return { ...v, snapshot: snap.value.snapshot };
  } catch (e) {
    // No snapshot for it: the waiting pg_dump exits without dumping.
    p.dump.stdin.end();
    await p.dump.done.catch(() => undefined);
    throw e;
  }
}

/**
 * PostgreSQL's clients report a server's error only as text on stderr, and neither a failed
 * connection nor pg_dump prints its SQLSTATE. So these checks read the typed error's program and
 * its stderr tail (the server's own message, in English unless the server's lc_messages says
 * otherwise: then only the generic message is given), never the error's message.
 */
const MISSING_DATABASE = /FATAL: +database ".*" does not exist/;

/** Why a target cannot be reached, when its container is missing or stopped (null: it runs). */
async function containerProblem(ctx: Context, sh: TargetShell): Promise<unknown> {
  if (!sh.container) return null;
  return ctx.containers.requireRunning(sh.container, sh.ref).then(
    () => null,
    (e: unknown) => e,
  );
}

/** A failed connection (the snapshot session's psql) as the operator's problem: a missing database, or no way in. */
function connectionProblem(target: Target, sh: TargetShell, e: unknown): unknown {
  if (!(e instanceof CommandError && e.program === 'psql')) return e;
  const hint = MISSING_DATABASE.test(e.stderrTail) ? `database "${target.database}" does not exist` : 'cannot connect to the database';
  return new PgfleetError(`${target.project}/${target.environment}: ${hint} (${sh.where}, user ${target.user ?? 'default'}): ${e.stderrTail.trim()}`, EXIT.FAILED, sh.ref, { cause: e });
}

function checkVersions(target: Target, sh: TargetShell, v: Preflight): Preflight {
  if (majorOf(v.pgDumpVersion) < majorOf(v.serverVersion))
    throw new PgfleetError(`${target.project}/${target.environment}: pg_dump ${v.pgDumpVersion} is older than the server (${v.serverVersion}); a dump needs pg_dump of the server's major version or newer`, EXIT.FAILED, sh.ref);
  return v;
}

const pgDumpVersionOf = (line: string) => line.trim().replace(/^pg_dump \(PostgreSQL\)\s*/, '');

/** The first line a process writes to stderr (pg_dump's version; its stdout is the dump); rejects with its error if it ends first. */
function firstLine(p: Spawned): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer | string) => {
      text += d.toString();
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      p.stderr.off('data', onData);
      resolve(text.slice(0, nl));
    };
    p.stderr.on('data', onData);
    p.done.then(() => reject(new PgfleetError('pg_dump ended before printing its version')), reject);
  });
}
