/**
 * Take one backup of one target. The caller holds the target's lock.
 *
 *   preflight (container running? database reachable? pg_dump not older than the server?)
 *   → open a REPEATABLE READ transaction and export its snapshot
 *   → pg_dump -Fc -Z0 --snapshot inside the container → zstd on the host → sha256 + bytes
 *     → temp file (0600) → fsync → rename        while the same snapshot counts every table's rows
 *   → metadata, written last and atomically
 *
 * Promises: on any failure (pg_dump or its connection killed, container stopped, disk full, bad
 * password, interrupt) no dump and no metadata is left behind, older backups are untouched, and
 * the error names project, environment and the tail of the failing command's stderr.
 */
import { createHash } from 'node:crypto';
import { promises as fs, constants, createWriteStream, close as closeCb, fsync as fsyncCb, fchmod as fchmodCb, open as openCb } from 'node:fs';
import { promisify } from 'node:util';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Target } from './config/load.js';
import type { Context } from './context.js';
import type { TargetShell } from './container.js';
import { CommandError, InterruptedError, PgfleetError } from './errors.js';
import { FILE_MODE, publish, tempPathFor } from './fsutil.js';
import { targetLogger } from './log.js';
import type { BackupMetadata, BackupType } from './metadata.js';
import { majorOf, parseRowCounts, PsqlSession, ROW_COUNTS_SQL } from './pg.js';
import { VERSION } from './schemas.js';
import { redact } from './redact.js';
import type { StoredBackup } from './repository.js';
import type { Spawned } from './runner.js';

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

/** Checks that make a failure say what is wrong before any dump starts. */
export async function preflight(ctx: Context, target: Target, sh: TargetShell): Promise<Preflight> {
  const ref = sh.ref;
  const where = `${target.project}/${target.environment}`;
  if (sh.container) {
    const running = await ctx.containers.isRunning(sh.container, ref);
    if (running === null) throw new PgfleetError(`${where}: container "${sh.container}" does not exist (${ctx.containers.cli} inspect found none)`, 1, ref);
    if (!running) throw new PgfleetError(`${where}: container "${sh.container}" is not running`, 1, ref);
  }
  const v = await sh.run('pg_dump', ['--version'], { what: 'pg_dump --version' });
  const pgDumpVersion = v.stdout.trim().replace(/^pg_dump \(PostgreSQL\)\s*/, '');
  let serverVersion: string;
  try {
    const r = await sh.run('psql', ['-X', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', ...sh.conn(target.database), '-c', 'SHOW server_version'], { what: 'psql' });
    serverVersion = r.stdout.trim();
  } catch (e) {
    if (e instanceof CommandError) {
      const hint = /does not exist/.test(e.stderrTail) && /database/.test(e.stderrTail) ? `database "${target.database}" does not exist` : 'cannot connect to the database';
      throw new PgfleetError(`${where}: ${hint} (${sh.where}, user ${target.user ?? 'default'}): ${e.stderrTail.trim()}`, 1, ref, { cause: e });
    }
    throw e;
  }
  if (majorOf(pgDumpVersion) < majorOf(serverVersion))
    throw new PgfleetError(`${where}: pg_dump ${pgDumpVersion} is older than the server (${serverVersion}); a dump needs pg_dump of the server's major version or newer`, 1, ref);
  return { pgDumpVersion, serverVersion };
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

  const pre = await preflight(ctx, target, sh);
  const id = await ctx.repo.newId(target.project, target.environment, startedAt);
  const final = ctx.repo.dumpPath(target.project, target.environment, id);
  const temp = tempPathFor(final);
  log.info({ id, type: opts.type, database: target.database, where: sh.where }, 'backup started');

  const procs: Spawned[] = [];
  let session: PsqlSession | undefined;
  let fd: number | undefined;
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
    // The snapshot every part of this backup sees: pg_dump imports it, the row counts run in it.
    session = PsqlSession.open(sh, target.database);
    await session.query(`SET lock_timeout = ${Math.max(1, Math.round(lockWaitMs))}`);
    await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const snapshot = (await session.query('SELECT pg_export_snapshot()')).trim();
    if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new PgfleetError(`unexpected snapshot id from the server: ${JSON.stringify(snapshot)}`, 1, ref);

    fd = await promisify(openCb)(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, FILE_MODE);
    await promisify(fchmodCb)(fd, FILE_MODE);

    const dump = sh.spawn('pg_dump', ['-Fc', '-Z0', `--snapshot=${snapshot}`, `--lock-wait-timeout=${Math.round(lockWaitMs)}`, '-w', ...sh.conn(target.database)], { what: 'pg_dump' });
    procs.push(dump);
    const zstd = ctx.runner.spawn(['zstd', `-${level}`, '-T0', '-q', '-c'], { input: dump.stdout, what: 'zstd', target: ref });
    procs.push(zstd);
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
      watch(pipeline(zstd.stdout, hc.t, createWriteStream('', { fd, autoClose: false }))),
      watch(session.query(ROW_COUNTS_SQL).then(parseRowCounts)),
    ]);
    progress.stop();
    if (stopping) throw firstError;
    const tables = (results[3] as PromiseFulfilledResult<Record<string, number>>).value;

    await session.query('COMMIT');
    await session.close();
    await promisify(fsyncCb)(fd);
    const closing = fd;
    fd = undefined;
    await promisify(closeCb)(closing);
    await publish(temp, final);

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
    await fs.rm(temp, { force: true });
    const err = firstError ?? e;
    log.error({ id, err: err instanceof Error ? redact(err.message) : String(err) }, 'backup failed, nothing kept');
    throw decorate(err, target);
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}

/** Name the target in errors that do not already (disk full, a stream error). */
function decorate(e: unknown, target: Target): unknown {
  if (e instanceof PgfleetError) return e;
  const where = `${target.project}/${target.environment}`;
  const code = (e as NodeJS.ErrnoException)?.code;
  const msg = code === 'ENOSPC' ? 'no space left on the backup volume' : e instanceof Error ? e.message : String(e);
  return new PgfleetError(`${where}: backup failed: ${msg}`, 1, { project: target.project, environment: target.environment }, { cause: e });
}
