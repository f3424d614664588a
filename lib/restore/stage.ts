/**
 * Opening a dump for pg_restore: the check against its metadata (lib/restore/dump.ts) in the same
 * one read that stages the decompressed archive where pg_restore runs, with the data-positions
 * pass (lib/restore/positions.ts) alongside; and the host-side decompression a streamed restore
 * or a container without zstd uses.
 *
 * Promises: a damaged dump is refused and its staged copy removed before anything else happens;
 * staging touches nothing but a new private directory under /tmp where pg_restore runs; an opened
 * dump's close() removes it, idempotently. A copy in the bucket (DumpFile.remote) is streamed the
 * same way, its stored bytes and its decrypted archive checked on the way; it is never staged on
 * the host (a target reached by DATABASE_URL streams it into pg_restore instead, read twice: once
 * to check it, once to restore it, checked again), so no plaintext lands in a file here.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished, PassThrough, type Readable } from 'node:stream';
import { CommandError, InterruptedError, VerificationError, type TargetRef } from '../core/errors.js';
import { targetLogger, type Logger } from '../core/log.js';
import { Undo, withLeftovers } from '../core/undo.js';
import type { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import { AgeError } from '../process/age.js';
import { describeDump, hashWhole, readDump, sealed, type CheckedDump, type DumpFile, type DumpSource } from './dump.js';
import type { EntryChange } from '../postgres/archive.js';
import { archiveIndex, ThinArchive } from './positions.js';

export interface OpenOptions {
  jobs?: number;
  signal?: AbortSignal;
  /**
   * Stage a thin archive: the head and only these entries' data blocks (dump ids; a table restore),
   * decompressed on the host as they stream past (lib/restore/positions.ts ThinArchive). The whole
   * file is still read and its sha256 checked. Fails with NotThinnable when the archive's structure
   * is not recognised.
   */
  only?: ReadonlySet<number>;
  /** With `only`: entries whose namespace, COPY statement or definition the thin archive's head changes (they restore into another schema). */
  retarget?: Map<number, EntryChange>;
}

/** A checked dump, ready for pg_restore. */
export interface OpenedDump extends CheckedDump {
  /** The decompressed archive as a file where pg_restore runs (a parallel restore needs one); null: streamed. */
  staged: StagedArchive | null;
  /** Remove the staged copy. Idempotent; returns what could not be removed. */
  close(): Promise<string[]>;
  /**
   * The staged copy was removed where it was staged, by the caller's own last command there (a
   * table restore's one script): close() then only stops the reading, with no call of its own.
   */
  removedThere(): void;
}

export interface StagedArchive {
  file: string;
  /**
   * The archive's head with its data positions filled in (lib/restore/positions.ts), to write over
   * the file's start; null: none to fill. Still being read when the dump is returned checked: await
   * it only where pg_restore needs it. Never rejects.
   */
  tocPatch: Promise<Buffer | null>;
  /** A thin archive whose head carries the caller's `retarget` (OpenOptions). */
  retargeted?: boolean;
}

/** pg_restore jobs when the caller names none: up to 4, by CPUs. */
export function defaultJobs(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

/** Staging runs in a fresh private directory; `exec` keeps the program's exit status (127: not there). */
const STAGE_WITH_ZSTD = 'umask 077 && mkdir -p -- "$1" && exec zstd -d -q --no-sparse -o "$1/archive.dump"';
const STAGE_WITH_DD = 'umask 077 && mkdir -p -- "$1" && exec dd of="$1/archive.dump" bs=1M status=none';

/**
 * Check a dump and make it ready for pg_restore, reading it once. With jobs > 1 the archive is
 * staged, decompressed, as a file where pg_restore runs: the compressed file is hashed as it is
 * sent to the container's own zstd (the official images have one: 8× less through `exec`; without
 * it, the host's zstd decompresses and `dd` writes), while the host reads the archive's block
 * structure for the data positions pg_dump could not write into a pipe. A damaged file (sha256,
 * size, format) is refused and its staged copy removed before anything else happens.
 */
export async function openDump(ctx: Context, sh: TargetShell, src: DumpSource, o: OpenOptions = {}): Promise<OpenedDump> {
  const d = await describeDump(src, { target: sh.ref });
  // On a terminal, a bar: the file's bytes read (hashed, staged), of its known size.
  const bar = ctx.progress && !d.remote ? ctx.term.progress(`read ${path.basename(d.path)}`, { total: d.size }) : null;
  const onBytes = bar ? (n: number) => bar.set(n) : undefined;
  try {
    return await openDescribed(ctx, sh, d, o, onBytes);
  } finally {
    bar?.stop();
  }
}

async function openDescribed(ctx: Context, sh: TargetShell, d: DumpFile, o: OpenOptions, onBytes?: (n: number) => void): Promise<OpenedDump> {
  const jobs = d.remote && !sh.container ? 1 : (o.jobs ?? defaultJobs());
  if (jobs <= 1) return { ...(await hashWhole(d, { signal: o.signal, target: sh.ref, onBytes })), staged: null, close: async () => [], removedThere: () => undefined };
  const log = targetLogger(ctx.logger, sh.target);
  const t0 = performance.now();
  const dir = `${sh.container ? '/tmp' : os.tmpdir()}/pgfleet-restore-${randomBytes(6).toString('hex')}`;
  const file = `${dir}/archive.dump`;
  const cleanup = new Undo(log);
  let removed = false;
  cleanup.push(`remove staged dump ${dir}`, async () => void (removed || (await sh.run('rm', ['-rf', '--', dir], { what: 'rm (staged dump)', role: 'cleanup' }))));
  // The positions are read alongside and needed only when pg_restore starts: the dump is returned
  // as soon as it is staged and checked, and closing it stops a reading still under way.
  const reading = new AbortController();
  const stopReading = () => reading.abort(o.signal?.reason ?? 'closed');
  o.signal?.addEventListener('abort', stopReading, { once: true });
  // A remote copy is read once: the positions pass reads a branch of the same stream (a file is read again).
  // A thin archive (`only`) brings its own positions: no second pass.
  const thin = o.only ? new ThinArchive(o.only, o.retarget) : undefined;
  const feed = d.remote && !thin ? new PassThrough({ highWaterMark: 1 << 20 }) : undefined;
  const tocPatch = (thin ? thin.patch : archiveIndex(ctx, sh, d, reading.signal, log, feed)).then((patch) => {
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
    const staged = await stage(ctx, sh, d, dir, o.signal, log, feed, onBytes, thin).catch(async (e) => {
      // A damaged file usually stops the decompression before it is all read: say what is wrong with it
      // (a remote read has said it already, when its bytes were the reason).
      if (d.meta && !(e instanceof InterruptedError) && !(e instanceof VerificationError) && !(e instanceof AgeError)) await hashWhole(d, { signal: o.signal, target: sh.ref });
      throw e;
    });
    const checked = sealed(d, staged.sha256, staged.bytes, { target: sh.ref });
    log.info({ ms: Math.round(performance.now() - t0), ...(thin && { thin: true, dropped_bytes: thin.dropped }) }, 'dump checked and staged');
    return { ...checked, staged: { file, tocPatch, retargeted: !!(thin && o.retarget?.size) }, close, removedThere: () => void (removed = true) };
  } catch (e) {
    throw withLeftovers(e, await close(), sh.ref);
  }
}

/** The decompressed archive into `dir`/archive.dump where pg_restore runs; the compressed file's sha256 on the way. */
async function stage(ctx: Context, sh: TargetShell, d: DumpFile, dir: string, signal: AbortSignal | undefined, log: Logger, feed?: PassThrough, onBytes?: (n: number) => void, thin?: ThinArchive): Promise<{ sha256: string; bytes: number }> {
  if (d.compressed && sh.container && !thin) {
    const r = readDump(d, signal, onBytes);
    feed && r.stream.pipe(feed);
    try {
      await sh.run('sh', ['-c', STAGE_WITH_ZSTD, 'pgfleet-stage', dir], { input: r.stream, signal, what: 'zstd -d (in the container)', program: 'zstd', role: 'stage' }).catch(readersFault(r));
      return await r.digest();
    } catch (e) {
      if (!(e instanceof CommandError && (e.code === 126 || e.code === 127))) throw e;
      log.debug('no zstd in the container: decompressing on the host');
      feed?.destroy(); // fed a first read already: the positions pass gives up (null)
    } finally {
      r.destroy();
    }
  }
  const r = readDump(d, signal, onBytes);
  try {
    const dz = decompressed(ctx, sh, d, signal, r.stream);
    // Thin: the host walks the archive as it streams and passes on only the head and the chosen blocks.
    // dd's input is ended whatever happens to the thin stream (a failed one ends it early: the
    // failure is reported, the cut file removed); a stopped dd stops the thin stream and zstd.
    const thinned = thin && new Promise<void>((resolve, reject) => finished(dz.stream.pipe(thin), (e) => (e ? reject(e) : resolve())));
    const fed = thin && thin.pipe(new PassThrough({ highWaterMark: 1 << 20 }));
    if (thin) {
      dz.stream.once('error', (e) => thin.destroy(e));
      thin.once('error', () => fed!.end());
      thin.once('close', () => dz.stream.destroy()); // ended already, or stopped: zstd stops too
    }
    const staging = sh.run('sh', ['-c', STAGE_WITH_DD, 'pgfleet-stage', dir], { input: fed ?? dz.stream, signal, what: 'dd (staging the dump)', program: 'dd', role: 'stage' }).finally(() => thin?.destroy());
    await both(thinned ? both(staging, thinned) : staging, dz.done).catch(readersFault(r));
    return await r.digest();
  } finally {
    r.destroy();
  }
}

/** A consumer's failure, unless the read that fed it failed first (a damaged remote copy ends its stream early: that is the reason). */
function readersFault(r: { failed(): unknown }) {
  return (e: unknown): never => {
    const f = r.failed();
    throw f && !(f instanceof InterruptedError && !(e instanceof InterruptedError)) ? f : e;
  };
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

/**
 * The archive, decompressed on the host, as a stream: read from its file, or from `input` (the
 * file's bytes, e.g. as they are hashed). A remote dump without `input` is read afresh and
 * checked again: `done` rejects when its bytes are not those of its metadata.
 */
export function decompressed(ctx: Context, sh: TargetShell, src: DumpFile, signal?: AbortSignal, input?: Readable): { stream: Readable; done: Promise<unknown> } {
  if (src.remote && !input) {
    const r = readDump(src, signal);
    const checked = r.digest().then(({ sha256, bytes }) => sealed(src, sha256, bytes, { target: sh.ref }));
    if (!src.compressed) return { stream: r.stream, done: checked };
    const z = ctx.runner.spawn(['zstd', '-dc', '-q'], { input: r.stream, signal, what: 'zstd -d', role: 'decompress', target: sh.ref });
    return { stream: z.stdout, done: both(checked, z.done.catch(readersFault(r))) };
  }
  if (!src.compressed) return { stream: input ?? createReadStream(src.path), done: Promise.resolve() };
  const z = ctx.runner.spawn(['zstd', '-dc', '-q', ...(input ? [] : [src.path])], { input, signal, what: 'zstd -d', role: 'decompress', target: sh.ref });
  return { stream: z.stdout, done: z.done };
}

/** Wait for a stream's consumer and producer; the consumer's error says more than the producer's EPIPE. */
export async function both(consumer: Promise<unknown>, producer: Promise<unknown>): Promise<void> {
  const [c, p] = await Promise.allSettled([consumer, producer]);
  if (c.status === 'rejected') throw c.reason;
  if (p.status === 'rejected') throw p.reason;
}
