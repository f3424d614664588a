/**
 * The restore engine, shared by `restore`, `verify-backups` and `rollback`.
 *
 *   checkDumpFile   the dump against its metadata (size, sha256, format) before anything else
 *   openDump        the same check in the one read that stages the dump where pg_restore runs
 *   restoreInto     a NEW database, pg_restore (parallel from a staged copy), every table checked
 *   restoreOver     the safe restore over a live database (ARCHITECTURE.md "A safe restore")
 *   leftoverDatabases  the `<db>__before_<stamp>` databases kept by earlier restores
 *
 * Nothing here prompts or prints: callers (commands) own confirmation and output, and hold the
 * target's lock around restoreOver.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, openSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { ArchiveIndexer } from '../postgres/archive.js';
import type { Target } from '../config/load.js';
import { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import { beforePrefix, createDatabase, dropDatabase, type DbProps } from '../postgres/dbadmin.js';
import { CommandError, EXIT, InterruptedError, PgfleetError, VerificationError, type TargetRef } from '../core/errors.js';
import { targetLogger, type Logger } from '../core/log.js';
import type { BackupMetadata } from '../formats/metadata.js';
import { parseRowCounts, PsqlSession, ROW_COUNTS_SQL } from '../postgres/psql.js';
import { META_EXT, Repository, type StoredBackup } from '../storage/repository.js';
import { Undo, withLeftovers } from '../core/undo.js';

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

/** What is known of a dump before its content is read: where, its metadata, size and format. */
type DumpFile = Omit<CheckedDump, 'sha256'>;

/**
 * A backup's own metadata is used as given; for a bare path, `<path>.json` is read when present
 * (and must then be complete and match), and a file without one is accepted only because the
 * caller named it explicitly. The size and the format (its first bytes) are checked here.
 */
async function describeDump(src: StoredBackup | { path: string }, o: { target?: TargetRef }): Promise<DumpFile> {
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
  const head = Buffer.alloc(8);
  const fh = await fs.open(file, 'r');
  try {
    await fh.read(head, 0, 8, 0);
  } finally {
    await fh.close();
  }
  const compressed = head.subarray(0, 4).equals(ZSTD_MAGIC);
  if (!compressed && !head.subarray(0, 5).equals(PGDMP_MAGIC)) {
    if (meta) throw new VerificationError(`${file}: does not start as a zstd file or a pg_dump archive: the file is damaged; refusing to restore it`, o.target);
    throw new PgfleetError(`${file}: neither a zstd file nor a pg_dump custom-format archive`, EXIT.FAILED, o.target);
  }
  if (meta && compressed !== (meta.compression.algorithm === 'zstd')) throw new VerificationError(`${file}: its compression does not match its metadata (${meta.compression.algorithm})`, o.target);
  return { path: file, meta, compressed, size: st.size };
}

/** The dump with its content's sha256, which must be its metadata's. */
function sealed(d: DumpFile, sha256: string, bytes: number, o: { target?: TargetRef }): CheckedDump {
  if (bytes !== d.size) throw new VerificationError(`${d.path}: read ${bytes} bytes of ${d.size}: the file changed while it was read; refusing to restore it`, o.target);
  if (d.meta && sha256 !== d.meta.sha256)
    throw new VerificationError(`${d.path}: sha256 is ${sha256} but its metadata says ${d.meta.sha256}: the file is damaged; refusing to restore it`, o.target);
  return { ...d, sha256 };
}

/**
 * The file as a stream that hashes what passes through it. It ends early on interrupt or a read
 * error (never an 'error' event a pipe would leave unheard); digest() then throws that.
 */
function hashedRead(file: string, signal?: AbortSignal): { stream: Readable; digest: () => { sha256: string; bytes: number }; destroy: () => void } {
  const hash = createHash('sha256');
  let bytes = 0;
  let failure: unknown;
  const rs = createReadStream(file, { highWaterMark: 1 << 20 });
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const stop = (e: unknown) => {
    failure ??= e;
    rs.destroy();
    if (!tap.writableEnded) tap.end();
  };
  const onAbort = () => stop(new InterruptedError(String(signal?.reason ?? 'SIGINT')));
  rs.on('error', stop);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  else rs.pipe(tap);
  return {
    stream: tap,
    digest: () => {
      if (failure) throw failure;
      return { sha256: hash.digest('hex'), bytes };
    },
    destroy: () => {
      signal?.removeEventListener('abort', onAbort);
      rs.destroy();
      tap.destroy();
    },
  };
}

/**
 * Check a dump before it is used: its size and sha256 against its metadata, and its format. Reads
 * the file once; changes nothing. Throws VerificationError (4) for a file that does not match its
 * metadata.
 */
export async function checkDumpFile(src: StoredBackup | { path: string }, o: { signal?: AbortSignal; target?: TargetRef } = {}): Promise<CheckedDump> {
  return hashWhole(await describeDump(src, o), o);
}

async function hashWhole(d: DumpFile, o: { signal?: AbortSignal; target?: TargetRef }): Promise<CheckedDump> {
  const r = hashedRead(d.path, o.signal);
  try {
    for await (const _ of r.stream as AsyncIterable<Buffer>);
    const { sha256, bytes } = r.digest();
    return sealed(d, sha256, bytes, o);
  } finally {
    r.destroy();
  }
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

/** Where verification restores run: platform.verify.container as its `postgres` superuser, else the target's own. */
export function verificationShell(ctx: Context, target: Target): { sh: TargetShell; foreign: boolean } {
  const vc = ctx.config.platform.verifyContainer;
  if (!vc) return { sh: ctx.shellFor(target), foreign: false };
  return { sh: new TargetShell(ctx.runner, ctx.containers, { ...target, user: 'postgres' }, {}, vc), foreign: true };
}

/** A checked dump, ready for pg_restore. */
export interface OpenedDump extends CheckedDump {
  /** The decompressed archive as a file where pg_restore runs (a parallel restore needs one); null: streamed. */
  staged: StagedArchive | null;
  /** Remove the staged copy. Idempotent; returns what could not be removed. */
  close(): Promise<string[]>;
}

export interface StagedArchive {
  file: string;
  /**
   * The archive's head with its data positions filled in (lib/archive.ts), to write over the file's
   * start; null: none to fill. Still being read when the dump is returned checked: await it only
   * where pg_restore needs it. Never rejects.
   */
  tocPatch: Promise<Buffer | null>;
}

/** Staging runs in a fresh private directory; `exec` keeps the program's exit status (127: not there). */
const STAGE_WITH_ZSTD = 'umask 077 && mkdir -p -- "$1" && exec zstd -d -q --no-sparse -o "$1/archive.dump"';
const STAGE_WITH_DD = 'umask 077 && mkdir -p -- "$1" && exec dd of="$1/archive.dump" bs=1M status=none';
/** The head with the data positions over the staged file's start, then pg_restore with the remaining arguments. */
const PATCH_THEN_RESTORE = 'f=$1; shift; dd of="$f" conv=notrunc bs=1M status=none && exec pg_restore "$@"';

/**
 * Check a dump and make it ready for pg_restore, reading it once. With jobs > 1 the archive is
 * staged, decompressed, as a file where pg_restore runs: the compressed file is hashed as it is
 * sent to the container's own zstd (the official images have one: 8× less through `exec`; without
 * it, the host's zstd decompresses and `dd` writes), while the host reads the archive's block
 * structure for the data positions pg_dump could not write into a pipe (lib/archive.ts). A
 * damaged file (sha256, size, format) is refused and its staged copy removed before anything else
 * happens: staging touches nothing but a new directory under /tmp.
 */
export async function openDump(ctx: Context, sh: TargetShell, src: StoredBackup | { path: string }, o: { jobs?: number; signal?: AbortSignal } = {}): Promise<OpenedDump> {
  const jobs = o.jobs ?? defaultJobs();
  const d = await describeDump(src, { target: sh.ref });
  if (jobs <= 1) return { ...(await hashWhole(d, { signal: o.signal, target: sh.ref })), staged: null, close: async () => [] };
  const log = targetLogger(ctx.logger, sh.target);
  const t0 = performance.now();
  const dir = `${sh.container ? '/tmp' : os.tmpdir()}/pgfleet-restore-${randomBytes(6).toString('hex')}`;
  const file = `${dir}/archive.dump`;
  const cleanup = new Undo(log);
  cleanup.push(`remove staged dump ${dir}`, async () => void (await sh.run('rm', ['-rf', '--', dir], { what: 'rm (staged dump)' })));
  // The positions are read alongside and needed only when pg_restore starts: the dump is returned
  // as soon as it is staged and checked, and closing it stops a reading still under way.
  const reading = new AbortController();
  const stopReading = () => reading.abort(o.signal?.reason ?? 'closed');
  o.signal?.addEventListener('abort', stopReading, { once: true });
  const tocPatch = archiveIndex(ctx, sh, d, reading.signal, log).then((patch) => {
    log.debug({ ms: Math.round(performance.now() - t0), data_positions: patch ? 'filled in' : 'as written' }, 'reading the archive done');
    return patch;
  });
  const close = async () => {
    stopReading();
    await tocPatch;
    o.signal?.removeEventListener('abort', stopReading);
    return cleanup.run('cleaning up');
  };
  try {
    const staged = await stage(ctx, sh, d, dir, o.signal, log).catch(async (e) => {
      // A damaged file usually stops the decompression before it is all read: say what is wrong with it.
      if (d.meta && !(e instanceof InterruptedError)) await hashWhole(d, { signal: o.signal, target: sh.ref });
      throw e;
    });
    const checked = sealed(d, staged.sha256, staged.bytes, { target: sh.ref });
    log.info({ ms: Math.round(performance.now() - t0) }, 'dump checked and staged');
    return { ...checked, staged: { file, tocPatch }, close };
  } catch (e) {
    throw withLeftovers(e, await close(), sh.ref);
  }
}

/** The decompressed archive into `dir`/archive.dump where pg_restore runs; the compressed file's sha256 on the way. */
async function stage(ctx: Context, sh: TargetShell, d: DumpFile, dir: string, signal: AbortSignal | undefined, log: Logger): Promise<{ sha256: string; bytes: number }> {
  if (d.compressed && sh.container) {
    const r = hashedRead(d.path, signal);
    try {
      await sh.run('sh', ['-c', STAGE_WITH_ZSTD, 'pgfleet-stage', dir], { input: r.stream, signal, what: 'zstd -d (in the container)' });
      return r.digest();
    } catch (e) {
      if (!(e instanceof CommandError && (e.code === 126 || e.code === 127))) throw e;
      log.debug('no zstd in the container: decompressing on the host');
    } finally {
      r.destroy();
    }
  }
  const r = hashedRead(d.path, signal);
  try {
    const dz = decompressed(ctx, sh, d, signal, r.stream);
    await both(sh.run('sh', ['-c', STAGE_WITH_DD, 'pgfleet-stage', dir], { input: dz.stream, signal, what: 'dd (staging the dump)' }), dz.done);
    return r.digest();
  } finally {
    r.destroy();
  }
}

/**
 * The archive's head with its data positions filled in, read from a second, host-side pass over
 * the decompressed archive. Never fails the restore: without it, pg_restore reads the archive as
 * pg_dump wrote it. The archive passes through one reused buffer (a plain archive is read from its
 * file; a compressed one from a private FIFO the host's zstd writes into, read as a socket with a
 * fixed read buffer), so the ~GB going through leaves no garbage behind and memory stays flat.
 */
async function archiveIndex(ctx: Context, sh: TargetShell, d: DumpFile, signal: AbortSignal | undefined, log: Logger): Promise<Buffer | null> {
  const ix = new ArchiveIndexer();
  const buf = Buffer.allocUnsafe(1 << 20);
  let dir: string | null = null;
  try {
    if (d.compressed) {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgfleet-index-'));
      const fifo = path.join(dir, 'archive');
      await ctx.runner.run(['mkfifo', '-m', '600', '--', fifo], { what: 'mkfifo', target: sh.ref, signal });
      // Read-write first: on Linux that never waits for a reader; the read side then opens at once.
      const w = await fs.open(fifo, fs.constants.O_RDWR);
      // (`onread` is a documented constructor option that this @types/node does not list yet.)
      const onread: net.OnReadOpts = { buffer: buf, callback: (n, b) => (ix.write(Buffer.from(b.buffer, b.byteOffset, n)), true) };
      let reader: net.Socket | undefined;
      try {
        reader = new net.Socket({ fd: openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK), readable: true, writable: false, onread } as net.SocketConstructorOpts);
        const r = reader;
        const ended = new Promise<void>((resolve, reject) => r.once('close', () => resolve()).once('error', reject));
        // --no-check: the file's sha256 is checked on the staging side, and a wrong position could not pass unnoticed.
        const z = ctx.runner.spawn(['zstd', '-dc', '-q', '--no-check', '--', d.path], { stdoutTo: w.fd, signal, what: 'zstd -d (reading the archive)', target: sh.ref });
        await w.close(); // zstd holds its own copy: the FIFO ends when zstd does
        const [read, done] = await Promise.allSettled([ended, z.done]);
        if (done.status === 'rejected') throw done.reason;
        if (read.status === 'rejected') throw read.reason;
      } finally {
        reader?.destroy();
        await w.close().catch(() => undefined);
      }
    } else {
      const fh = await fs.open(d.path, 'r');
      try {
        for (let n; (n = (await fh.read(buf, 0, buf.length, null)).bytesRead) && !signal?.aborted; ) ix.write(buf.subarray(0, n));
      } finally {
        await fh.close();
      }
    }
    if (signal?.aborted) return null;
    const index = ix.end();
    if (!index) log.debug({ problem: ix.problem }, 'archive structure not recognised: pg_restore will read it as written');
    return ix.tocPatch(index);
  } catch (e) {
    log.debug({ err: (e as Error)?.message ?? String(e) }, 'archive not indexed: pg_restore will read it as written');
    return null;
  } finally {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }
}

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
    try {
      await createDatabase(sh, database, { owner: opts.owner ?? target.user, like: opts.like, signal, session: opts.admin });
    } catch (e) {
      if (!(e instanceof CommandError && /already exists/.test(e.message))) throw e;
      keep(); // not ours to drop
      throw new PgfleetError(`${where}: database "${database}" already exists (${sh.where}); choose a new name`, EXIT.FAILED, sh.ref);
    }
    log.debug({ database, ms: ms() }, 'database created');
    // The session that counts the rows connects while pg_restore runs, so the count starts the moment it ends.
    counter = PsqlSession.open(sh, database, signal);
    const args = ['--exit-on-error', '-w', ...(opts.noOwner ? ['--no-owner', '--no-privileges'] : []), ...sh.conn(database)];
    const staged = source.staged;
    const tocPatch = await staged?.tocPatch;
    if (staged) log.debug({ ms: ms(), data_positions: tocPatch ? 'filled in' : 'as written' }, 'pg_restore starts from the staged copy');
    if (staged && tocPatch) await sh.run('sh', ['-c', PATCH_THEN_RESTORE, 'pgfleet-restore', staged.file, '-j', String(jobs), ...args, staged.file], { input: tocPatch, signal, what: 'pg_restore' });
    else if (staged) await sh.run('pg_restore', ['-j', String(jobs), ...args, staged.file], { signal, what: 'pg_restore' });
    else {
      const d = decompressed(ctx, sh, source, signal);
      await both(sh.run('pg_restore', args, { input: d.stream, signal, what: 'pg_restore' }), d.done);
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
    counter?.kill();
    const left = [...(await source.close()), ...(await undo.run())];
    throw withLeftovers(e, left, sh.ref);
  }
}

/** The archive, decompressed on the host, as a stream: read from its file, or from `input` (the file's bytes, e.g. as they are hashed). */
function decompressed(ctx: Context, sh: TargetShell, src: DumpFile, signal?: AbortSignal, input?: Readable): { stream: Readable; done: Promise<unknown> } {
  if (!src.compressed) return { stream: input ?? createReadStream(src.path), done: Promise.resolve() };
  const z = ctx.runner.spawn(['zstd', '-dc', '-q', ...(input ? [] : [src.path])], { input, signal, what: 'zstd -d', target: sh.ref });
  return { stream: z.stdout, done: z.done };
}

/** Wait for a stream's consumer and producer; the consumer's error says more than the producer's EPIPE. */
async function both(consumer: Promise<unknown>, producer: Promise<unknown>): Promise<void> {
  const [c, p] = await Promise.allSettled([consumer, producer]);
  if (c.status === 'rejected') throw c.reason;
  if (p.status === 'rejected') throw p.reason;
}

/**
 * Open the dump while other preflight work runs. If either fails, what was opened is closed; a
 * damaged dump is the error reported first, then the other work's.
 */
export async function openWhile<T>(opening: Promise<OpenedDump>, other: Promise<T>, ref: TargetRef): Promise<[OpenedDump, T]> {
  const [d, x] = await Promise.allSettled([opening, other]);
  if (d.status === 'fulfilled' && x.status === 'fulfilled') return [d.value, x.value];
  const left = d.status === 'fulfilled' ? await d.value.close() : [];
  const e = d.status === 'rejected' && (d.reason instanceof VerificationError || x.status === 'fulfilled') ? d.reason : (x as PromiseRejectedResult).reason;
  throw withLeftovers(e, left, ref);
}

export { restoreOver, leftoverDatabases, type RestoreOverOptions, type RestoreOverResult } from './over.js';
export { beforePrefix };
