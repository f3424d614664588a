/**
 * The restore engine, shared by `restore`, `verify-backups` and `rollback`.
 *
 *   checkDumpFile   the dump against its metadata (size, sha256, format) before anything else
 *   restoreInto     a NEW database, pg_restore (parallel from a staged copy), every table checked
 *   restoreOver     the safe restore over a live database (ARCHITECTURE.md "A safe restore")
 *   leftoverDatabases  the `<db>__before_<stamp>` databases kept by earlier restores
 *
 * Nothing here prompts or prints: callers (commands) own confirmation and output, and hold the
 * target's lock around restoreOver.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Target } from './config/load.js';
import { TargetShell } from './container.js';
import type { Context } from './context.js';
import { beforePrefix, createDatabase, dropDatabase, existing, type DbProps } from './dbadmin.js';
import { CommandError, EXIT, InterruptedError, PgfleetError, VerificationError, type TargetRef } from './errors.js';
import { targetLogger, type Logger } from './log.js';
import type { BackupMetadata } from './metadata.js';
import { rowCounts } from './pg.js';
import { META_EXT, Repository, type StoredBackup } from './repository.js';
import { Undo, withLeftovers } from './undo.js';

export interface CheckedDump {
  path: string;
  /** null: a file given by path without metadata; its content cannot be checked against anything. */
  meta: BackupMetadata | null;
  /** zstd-compressed (else a plain pg_dump custom-format archive). */
  compressed: boolean;
  sha256: string;
  size: number;
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const PGDMP_MAGIC = Buffer.from('PGDMP');

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
}

/**
 * Check a dump before it is used: its size and sha256 against its metadata, and its format. A
 * backup's own metadata is used as given; for a bare path, `<path>.json` is read when present
 * (and must then be complete and match), and a file without one is accepted only because the
 * caller named it explicitly. Reads the file once; changes nothing. Throws VerificationError (4)
 * for a file that does not match its metadata.
 */
export async function checkDumpFile(src: StoredBackup | { path: string }, o: { signal?: AbortSignal; target?: TargetRef } = {}): Promise<CheckedDump> {
  const file = path.resolve(src.path);
  let meta: BackupMetadata | null = null;
  if ('meta' in src && src.meta) meta = src.meta;
  else if (await fs.stat(file + META_EXT).catch(() => null)) {
    const { backup, problem } = await new Repository(path.dirname(file)).load(file + META_EXT);
    if (!backup) throw new VerificationError(`${file}: ${problem}: the file is truncated or damaged, or its metadata is; refusing to restore it`, o.target);
    meta = backup.meta;
  }
  const st = await fs.stat(file).catch(() => null);
  if (!st?.isFile()) throw new PgfleetError(`${file}: no such file`, EXIT.FAILED, o.target);
  if (meta && st.size !== meta.size_bytes)
    throw new VerificationError(`${file} is ${st.size} bytes but its metadata says ${meta.size_bytes}: the file is truncated or damaged; refusing to restore it`, o.target);
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    throwIfAborted(o.signal);
    if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8)]);
    hash.update(chunk);
  }
  const sha256 = hash.digest('hex');
  if (meta && sha256 !== meta.sha256)
    throw new VerificationError(`${file}: sha256 is ${sha256} but its metadata says ${meta.sha256}: the file is damaged; refusing to restore it`, o.target);
  const compressed = head.subarray(0, 4).equals(ZSTD_MAGIC);
  if (!compressed && !head.subarray(0, 5).equals(PGDMP_MAGIC)) throw new PgfleetError(`${file}: neither a zstd file nor a pg_dump custom-format archive`, EXIT.FAILED, o.target);
  if (meta && compressed !== (meta.compression.algorithm === 'zstd')) throw new VerificationError(`${file}: its compression does not match its metadata (${meta.compression.algorithm})`, o.target);
  return { path: file, meta, compressed, sha256, size: st.size };
}

/** Tables missing, extra, or with other row counts than recorded. Empty: the copy matches. */
export function compareCounts(expected: Record<string, number>, actual: Record<string, number>): string[] {
  const problems: string[] = [];
  for (const [t, n] of Object.entries(expected)) {
    if (!(t in actual)) problems.push(`table ${t} is missing`);
    else if (actual[t] !== n) problems.push(`table ${t} has ${actual[t]} rows, ${n} recorded`);
  }
  for (const t of Object.keys(actual)) if (!(t in expected)) problems.push(`table ${t} was not recorded in the backup`);
  return problems;
}

export function defaultJobs(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

/** The container (or DATABASE_URL) answers. */
async function ensureReachable(ctx: Context, sh: TargetShell): Promise<void> {
  if (sh.container) await ctx.containers.requireRunning(sh.container, sh.ref);
}

/** Where verification restores run: platform.verify.container as its `postgres` superuser, else the target's own. */
export function verificationShell(ctx: Context, target: Target): { sh: TargetShell; foreign: boolean } {
  const vc = ctx.config.platform.verifyContainer;
  if (!vc) return { sh: ctx.shellFor(target), foreign: false };
  return { sh: new TargetShell(ctx.runner, ctx.containers, { ...target, user: 'postgres' }, {}, vc), foreign: true };
}

export interface RestoreIntoOptions {
  /** How to reach the server (default: the target's container). */
  shell?: TargetShell;
  /** Owner of the new database (default: target.user). */
  owner?: string;
  /** Take encoding and locale from these properties (default: the server's). */
  like?: DbProps | null;
  /** pg_restore jobs; 1 streams the dump into pg_restore without a staged copy. */
  jobs?: number;
  /** Leave ownership and privileges out (a verification server without the tenant's roles). */
  noOwner?: boolean;
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

/**
 * Restore a checked dump into a NEW database `database` (refused when it exists) and check every
 * table and row count against the metadata. Any non-zero pg_restore exit is a failure. On any
 * failure or interrupt, the database this call created and the staged copy are removed; nothing
 * else is touched.
 */
export async function restoreInto(ctx: Context, target: Target, source: CheckedDump, database: string, opts: RestoreIntoOptions = {}): Promise<RestoreIntoResult> {
  const sh = opts.shell ?? ctx.shellFor(target);
  const signal = opts.signal ?? ctx.signal;
  const log = targetLogger(ctx.logger, target);
  const where = `${target.project}/${target.environment}`;
  const jobs = opts.jobs ?? defaultJobs();
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const [reach, taken] = await Promise.allSettled([ensureReachable(ctx, sh), existing(sh, [database])]);
  if (reach.status === 'rejected') throw reach.reason;
  if (taken.status === 'rejected') throw taken.reason;
  if (taken.value.length) throw new PgfleetError(`${where}: database "${database}" already exists (${sh.where}); choose a new name`, EXIT.FAILED, sh.ref);
  const undo = new Undo(log);
  const cleanup = new Undo(log);
  try {
    const keep = undo.push(`drop database ${database}`, () => dropDatabase(sh, database));
    // The empty database and the staged archive (parallel restore needs a seekable file), at once.
    const [created, staged] = await Promise.allSettled([
      createDatabase(sh, database, { owner: opts.owner ?? target.user, like: opts.like, signal }),
      jobs > 1 ? stageArchive(ctx, sh, source, signal, cleanup, log) : Promise.resolve(null),
    ]);
    if (created.status === 'rejected') {
      // A database of that name appeared meanwhile: not ours to drop.
      if (/already exists/.test((created.reason as Error)?.message ?? '')) keep();
      throw created.reason;
    }
    if (staged.status === 'rejected') throw staged.reason;
    log.debug({ database, ms: ms() }, 'database created, archive staged');
    const args = ['--exit-on-error', '-w', ...(opts.noOwner ? ['--no-owner', '--no-privileges'] : []), ...sh.conn(database)];
    if (staged.value) await sh.run('pg_restore', ['-j', String(jobs), ...args, staged.value], { signal, what: 'pg_restore' });
    else {
      const d = decompressed(ctx, sh, source, signal);
      await both(sh.run('pg_restore', args, { input: d.stream, signal, what: 'pg_restore' }), d.done);
    }
    log.debug({ database, ms: ms() }, 'pg_restore done');
    const [counted] = await Promise.allSettled([rowCounts(sh, database, signal), cleanup.run('cleaning up')]);
    if (counted.status === 'rejected') throw counted.reason;
    const counts = counted.value;
    log.debug({ database, ms: ms() }, 'rows counted');
    if (source.meta) {
      const problems = compareCounts(source.meta.tables, counts);
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
    const left = [...(await cleanup.run('cleaning up')), ...(await undo.run())];
    throw withLeftovers(e, left, sh.ref);
  }
}

/** The archive, decompressed on the host, as a stream. */
function decompressed(ctx: Context, sh: TargetShell, src: CheckedDump, signal?: AbortSignal): { stream: Readable; done: Promise<unknown> } {
  if (!src.compressed) return { stream: createReadStream(src.path), done: Promise.resolve() };
  const z = ctx.runner.spawn(['zstd', '-dc', '-q', src.path], { signal, what: 'zstd -d', target: sh.ref });
  return { stream: z.stdout, done: z.done };
}

/** Wait for a stream's consumer and producer; the consumer's error says more than the producer's EPIPE. */
async function both(consumer: Promise<unknown>, producer: Promise<unknown>): Promise<void> {
  const [c, p] = await Promise.allSettled([consumer, producer]);
  if (c.status === 'rejected') throw c.reason;
  if (p.status === 'rejected') throw p.reason;
}

/**
 * Stage the decompressed archive as a file where pg_restore runs, in a fresh 0700 directory under
 * /tmp (its removal registered first). The compressed file is sent and decompressed by the
 * container's own zstd when it has one (the official images do: 8× less through `exec`);
 * otherwise the host's zstd decompresses and `dd` writes. Argument arrays only, no shell.
 */
async function stageArchive(ctx: Context, sh: TargetShell, src: CheckedDump, signal: AbortSignal | undefined, cleanup: Undo, log: Logger): Promise<string> {
  const t0 = performance.now();
  const dir = `${sh.container ? '/tmp' : os.tmpdir()}/pgfleet-restore-${randomBytes(6).toString('hex')}`;
  const file = `${dir}/archive.dump`;
  cleanup.push(`remove staged dump ${dir}`, async () => void (await sh.run('rm', ['-rf', '--', dir], { what: 'rm (staged dump)' })));
  await sh.run('mkdir', ['-m', '700', '--', dir], { signal, what: 'mkdir (staged dump)' });
  if (src.compressed && sh.container) {
    try {
      await sh.run('zstd', ['-d', '-q', '-o', file], { input: createReadStream(src.path), signal, what: 'zstd -d (in the container)' });
      log.debug({ ms: Math.round(performance.now() - t0), how: 'zstd in the container' }, 'archive staged');
      return file;
    } catch (e) {
      if (!(e instanceof CommandError && (e.code === 126 || e.code === 127))) throw e;
      log.debug('no zstd in the container: decompressing on the host');
    }
  }
  const d = decompressed(ctx, sh, src, signal);
  await both(sh.run('dd', [`of=${file}`, 'bs=1M', 'status=none'], { input: d.stream, signal, what: 'dd (staging the dump)' }), d.done);
  log.debug({ ms: Math.round(performance.now() - t0), how: 'zstd on the host, dd' }, 'archive staged');
  return file;
}

/** The original error, naming what its rollback could not undo. */

export { restoreOver, leftoverDatabases, type RestoreOverOptions, type RestoreOverResult } from './restore-over.js';
export { beforePrefix };
