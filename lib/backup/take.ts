/**
 * Take one backup of one target. The caller holds the target's lock.
 *
 *   one round trip, at once: pg_dump's process starts (and prints its version) while a psql session
 *     opens a REPEATABLE READ transaction, exports its snapshot and reads the server's version
 *   → preflight's verdicts (container missing or stopped? database missing or unreachable? pg_dump
 *     older than the server?) from that round trip, before any dump starts
 *   → pg_dump -Fc -Z0 with that snapshot inside the container, its stdout piped straight into zstd
 *     on the host → sha256 + bytes of zstd's output
 *     → temp file (0600) → fsync → rename        while the same snapshot counts every table's rows
 *   → metadata, written last and atomically
 *
 * Promises: on any failure (pg_dump or its connection killed, container stopped, disk full, bad
 * password, interrupt) no dump and no metadata is left behind, older backups are untouched, and
 * the error names project, environment and the tail of the failing command's stderr.
 */
import { createHash } from 'node:crypto';
import { promises as fs, constants, createWriteStream, close as closeCb, fsync as fsyncCb, fchmod as fchmodCb, open as openCb, write as writeCb, writev as writevCb } from 'node:fs';
import { promisify } from 'node:util';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Target } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import type { TargetShell } from '../process/container.js';
import { CommandError, EXIT, InterruptedError, PgfleetError } from '../core/errors.js';
import { FILE_MODE, publish, removeStaleTemps, tempPathFor } from '../core/fsutil.js';
import { targetLogger } from '../core/log.js';
import type { BackupMetadata, BackupType } from '../formats/metadata.js';
import { majorOf, parseRowCounts, PsqlSession, ROW_COUNTS_SQL } from '../postgres/psql.js';
import { VERSION } from '../core/package.js';
import { redact } from '../core/redact.js';
import type { StoredBackup } from '../storage/repository.js';
import type { Spawned } from '../process/runner.js';

export interface BackupOptions {
  type: BackupType;
  release?: string | null;
  /** Overrides the target's backup.lock_wait_timeout. */
  lockWaitTimeoutMs?: number;
}

export interface Preflight {
  pgDumpVersion: string;
  serverVersion: string;
}

/** Why a target cannot be reached, when its container is missing or stopped (null: it runs). */
async function containerProblem(ctx: Context, sh: TargetShell): Promise<unknown> {
  if (!sh.container) return null;
  return ctx.containers.requireRunning(sh.container, sh.ref).then(() => null, (e: unknown) => e);
}

/**
 * PostgreSQL's clients report a server's error only as text on stderr, and neither a failed
 * connection nor pg_dump prints its SQLSTATE. So these checks read the typed error's program and
 * its stderr tail (the server's own message, in English unless the server's lc_messages says
 * otherwise: then only the generic message is given), never the error's message.
 */
const MISSING_DATABASE = /FATAL: +database ".*" does not exist/;
const LOCK_TIMEOUT = /canceling statement due to lock timeout/;
const STATEMENT_TIMEOUT = /canceling statement due to statement timeout/;

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

/**
 * pg_dump, started before its snapshot exists, so that its process start (a `docker exec`, the
 * slow part of a small backup) overlaps the snapshot session's: the shell prints pg_dump's version,
 * waits for the snapshot id on stdin, then execs pg_dump with it. The script is a constant; every
 * config value reaches pg_dump as its own argument ("$@"). With stdin closed before a snapshot
 * arrives, it exits without dumping.
 */
const DUMP_SCRIPT = 'pg_dump --version >&2 || exit; IFS= read -r snapshot || exit 3; exec pg_dump "$@" --snapshot="$snapshot"';

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

/**
 * The first round trip of a backup, all at once: pg_dump's process (printing its version) and the
 * psql session that opens the snapshot and reads the server's version. Resolves when both are
 * ready and the versions fit; on any failure the waiting pg_dump is told to exit, and the error is
 * the one preflight() gives: container missing or stopped, database missing or unreachable.
 */
async function openSnapshot(ctx: Context, target: Target, sh: TargetShell, session: PsqlSession, dump: Spawned, lockWaitMs: number) {
  const [version, snap] = await Promise.allSettled([
    firstLine(dump),
    (async () => {
      await session.query(`SET lock_timeout = ${Math.max(1, Math.round(lockWaitMs))}`);
      await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const snapshot = (await session.query('SELECT pg_export_snapshot()')).trim();
      if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new PgfleetError(`unexpected snapshot id from the server: ${JSON.stringify(snapshot)}`, EXIT.FAILED, sh.ref);
      return { snapshot, serverVersion: (await session.query('SHOW server_version')).trim() };
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
    dump.stdin.end();
    await dump.done.catch(() => undefined);
    throw e;
  }
}

/**
 * A write stream over `fd` that never closes it, not even when a failed pipeline destroys it: the
 * fd is closed once, by its opener. (A stream's own close plus ours would close the fd number
 * twice, and the second close could hit whatever reused the number meanwhile, such as a child's
 * pipe, hanging the run.)
 */
function streamTo(fd: number) {
  const noClose = { open: openCb, write: writeCb, writev: writevCb, close: (_fd: number, cb: (e: null) => void) => cb(null) };
  return createWriteStream('', { fd, autoClose: false, fs: noClose as never });
}

function hashCounter() {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  return { t, bytes: () => bytes, digest: () => hash.digest('hex') };
}

function progressReporter(enabled: boolean, bytes: () => number) {
  if (!enabled) return { stop() {} };
  const t0 = performance.now();
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const timer = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    process.stderr.write(`\r  ${mib(bytes())} MiB written, ${mib(bytes() / s)} MiB/s, ${s.toFixed(0)} s   `);
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      process.stderr.write('\r\x1b[K');
    },
  };
}

/** Take the backup. The caller holds the target's lock. Returns the stored backup. */
export async function takeBackup(ctx: Context, target: Target, opts: BackupOptions): Promise<StoredBackup> {
  const log = targetLogger(ctx.logger, target);
  const ref = { project: target.project, environment: target.environment };
  const sh = ctx.shellFor(target);
  const startedAt = ctx.clock();
  const t0 = performance.now();
  const lockWaitMs = opts.lockWaitTimeoutMs ?? target.backup.lock_wait_timeout_ms;
  const level = target.backup.compression_level;

  const procs: Spawned[] = [];
  let session: PsqlSession | undefined;
  let fd: number | undefined;
  let id: string | undefined;
  let temp: string | undefined;
  let firstError: unknown;
  let stopping = false;
  const stopAll = (e: unknown) => {
    if (!stopping) {
      stopping = true;
      firstError = e;
    }
    for (const p of procs) p.kill('SIGKILL');
    session?.kill();
  };
  const onAbort = () => stopAll(new InterruptedError(String(ctx.signal?.reason ?? 'SIGINT')));
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal?.aborted) onAbort();

  try {
    if (stopping) throw firstError; // interrupted before anything started
    // One round trip before the dump: pg_dump's process waits for the snapshot the session exports;
    // pg_dump imports it, the row counts run in it.
    // zstd first: pg_dump's stdout is connected straight to its stdin, so the uncompressed archive
    // never passes through this process (only zstd's output does, to be hashed and written).
    const zstd = ctx.runner.spawn(['zstd', `-${level}`, '-T0', '-q', '-c'], { what: 'zstd', role: 'compress', target: ref });
    procs.push(zstd);
    const dump = sh.spawn('sh', ['-c', DUMP_SCRIPT, 'pgfleet-dump', '-Fc', '-Z0', `--lock-wait-timeout=${Math.round(lockWaitMs)}`, '-w', ...sh.conn(target.database)], {
      what: 'pg_dump',
      program: 'pg_dump',
      role: 'dump',
      interactive: true,
      stdoutTo: zstd,
    });
    procs.push(dump);
    session = PsqlSession.open(sh, target.database);
    const pre = await openSnapshot(ctx, target, sh, session, dump, lockWaitMs);
    id = await ctx.repo.newId(target.project, target.environment, startedAt);
    // Temp files of runs killed outright (SIGKILL, power loss) go now; ours is named after this pid.
    const swept = await removeStaleTemps(ctx.repo.databaseDir(target.project, target.environment));
    if (swept.length) log.warn({ files: swept }, 'removed temporary files left by a killed run');
    const final = ctx.repo.dumpPath(target.project, target.environment, id);
    temp = tempPathFor(final);
    log.info({ id, type: opts.type, database: target.database, where: sh.where }, 'backup started');

    fd = await promisify(openCb)(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, FILE_MODE);
    await promisify(fchmodCb)(fd, FILE_MODE);

    dump.stdin.end(pre.snapshot + '\n');
    const hc = hashCounter();
    const progress = progressReporter(ctx.progress, hc.bytes);

    const watch = <T>(p: Promise<T>) =>
      p.catch((e) => {
        stopAll(e);
        throw e;
      });
    const results = await Promise.allSettled([
      watch(dump.done),
      watch(zstd.done),
      watch(pipeline(zstd.stdout, hc.t, streamTo(fd))),
      watch(session.query(ROW_COUNTS_SQL).then(parseRowCounts)),
    ]);
    progress.stop();
    if (stopping) throw firstError;
    const tables = (results[3] as PromiseFulfilledResult<Record<string, number>>).value;

    await session.query('COMMIT');
    const sessionClosed = session.close(); // its process exit overlaps the fsync
    sessionClosed.catch(() => undefined); // awaited below
    await promisify(fsyncCb)(fd);
    const closing = fd;
    fd = undefined;
    await promisify(closeCb)(closing);
    await sessionClosed;
    await publish(temp, final);
    temp = final; // from here a failure removes the published dump: without metadata it is no backup

    const finishedAt = new Date(startedAt.getTime() + Math.round(performance.now() - t0));
    const meta: BackupMetadata = {
      format_version: 1,
      id,
      project: target.project,
      environment: target.environment,
      database: target.database,
      type: opts.type,
      release: opts.release ?? null,
      created_at: startedAt.toISOString(),
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      duration_ms: Math.round(performance.now() - t0),
      file: id + '.dump.zst',
      size_bytes: hc.bytes(),
      sha256: hc.digest(),
      format: 'custom',
      compression: { algorithm: 'zstd', level },
      encryption: null,
      pg_dump_version: pre.pgDumpVersion,
      server_version: pre.serverVersion,
      source: { container: sh.container ?? null, user: target.user ?? null },
      tables,
      total_rows: Object.values(tables).reduce((a, b) => a + b, 0),
      pgfleet_version: VERSION,
      verification: null,
    };
    try {
      await ctx.repo.saveMetadata(meta);
    } catch (e) {
      await fs.rm(final, { force: true });
      throw e;
    }
    log.info({ id, path: final, size_bytes: meta.size_bytes, duration_ms: meta.duration_ms, tables: Object.keys(tables).length, rows: meta.total_rows }, 'backup complete');
    return { meta, path: final, metaPath: final + '.json' };
  } catch (e) {
    stopAll(e);
    await Promise.allSettled(procs.map((p) => p.done));
    if (fd !== undefined) await promisify(closeCb)(fd).catch(() => undefined);
    if (temp) await fs.rm(temp, { force: true });
    // An interrupt wins over what it caused (a child killed by the same Ctrl-C may report first).
    const err = ctx.signal?.aborted ? new InterruptedError(String(ctx.signal.reason ?? 'SIGINT')) : lockWaitProblem(firstError ?? e, target, lockWaitMs);
    log.error({ id, err: err instanceof Error ? redact(err.message) : String(err) }, 'backup failed, nothing kept');
    throw decorate(err, target);
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
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
