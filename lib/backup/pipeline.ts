/**
 * The dump's one pass (lib/backup/take.ts, its streaming step):
 *
 *   pg_dump (inside the container) ─kernel pipe→ zstd (on the host) → stdout → sha256 + byte count
 *     → the repository's store: save(stream) (local: temp file 0600, fsync, rename, directory fsync)
 *   while the snapshot's session counts every table's rows, then commits (a partial backup: first
 *   resolves its exclusions there, as pg_dump does, and counts only the tables dumped with rows).
 *
 * Promises: one read of zstd's output, in the chunks it comes in, hashed as it passes (no copy, no
 * second pass). The stream ends only when pg_dump and zstd have exited 0, the row counts are in and
 * the snapshot's transaction committed (the gate): a dump whose pg_dump died, whose zstd was
 * killed, or whose counts failed is never saved, even though zstd's output ended cleanly. Any failure, the save's own (disk full) included,
 * stops the whole run at once (DumpRun); the save then rejects and leaves nothing under the key.
 * With `tee` (the offsite upload, lib/offsite/upload.ts), the same chunks go to it too, after the
 * tap: it is ended only once the gate passed (so what it is given is the whole dump or ends in an
 * error), destroyed with the run's error when the dump fails, and its own failure never touches
 * the dump: a closed or failed tee is simply left behind (its backpressure slows the dump while
 * it takes data; its S3 client's bounded timeouts bound that).
 */
import { pipeline, Transform, type Writable } from 'node:stream';
import { InternalError } from '../core/errors.js';
import { hashingTap } from '../core/hashing.js';
import type { Progress } from '../core/terminal.js';
import type { PartialInfo } from '../formats/metadata.js';
import { parseRowCounts, ROW_COUNTS_SQL, rowCountsSql } from '../postgres/psql.js';
import type { Repository } from '../storage/repository.js';
import { exclusionsSql, parseExclusions, type Exclusions } from './exclusions.js';
import type { DumpRun } from './run.js';
import type { DumpProcesses } from './snapshot.js';

export interface Streamed {
  size: number;
  sha256: string;
  /** Rows per table, counted in the dump's snapshot. */
  tables: Record<string, number>;
  /** A partial backup's exclusions and what they matched in the snapshot; null: a full backup. */
  partial: PartialInfo | null;
}


/**
 * Send the snapshot to the waiting pg_dump and stream the dump into the repository as backup `id`.
 * Resolves once the dump is saved, the snapshot's transaction committed and its session closed
 * (the close overlaps the save's fsync); rejects with the run's error (the first failure)
 * otherwise. A rejection after the save (the session's close failing) leaves the saved dump for
 * the caller to remove.
 */
export async function streamDump(repo: Repository, run: DumpRun, p: DumpProcesses, o: { project: string; environment: string; id: string; snapshot: string; bar?: Progress | null; exclusions?: Exclusions; tee?: Writable | null }): Promise<Streamed> {
  const ex = o.exclusions && o.exclusions.excludeTables.length + o.exclusions.excludeTableData.length ? o.exclusions : null;
  // A partial backup's exclusions resolved first, in the snapshot, so its excluded tables are never counted.
  const partial = ex ? run.watch(p.session.query(exclusionsSql(ex)).then((out) => parseExclusions(out, ex))) : Promise.resolve(null);
  const counts = run.watch(partial.then((x) => p.session.query(x ? rowCountsSql([...x.tables_excluded, ...x.data_excluded]) : ROW_COUNTS_SQL)).then(parseRowCounts));
  // The snapshot's transaction stays open until pg_dump is done with it (it imports the snapshot
  // after its own start), then commits; the session's close overlaps the save's fsync.
  const produced = Promise.all([run.watch(p.dump.done), run.watch(p.zstd.done), counts]);
  const gate = produced.then(async ([, , tables]) => {
    await run.watch(p.session.query('COMMIT'));
    return tables;
  });
  gate.catch(() => undefined); // the run has its error; the stream ends with it
  const closed = gate.then(() => run.watch(p.session.close()));
  closed.catch(() => undefined); // awaited below, or the run already failed
  const tap = hashingTap(gate);
  // Errors of zstd's stdout or of the tap (the save destroys it with its own, e.g. ENOSPC) stop the run at once.
  const tee = o.tee ? teeTo(o.tee) : null;
  if (tee) pipeline(p.zstd.stdout, tap.stream, tee, (e) => e && run.stop(e));
  else pipeline(p.zstd.stdout, tap.stream, (e) => e && run.stop(e));

  const saving = run.watch(repo.saveDump(o.project, o.environment, o.id, tee ?? tap.stream, { signal: run.signal }));
  p.dump.stdin.end(o.snapshot + '\n');
  const progress = progressReporter(o.bar ?? null, tap.bytes);
  const [saved, tables] = await Promise.all([saving, gate]).finally(() => progress.stop());
  await closed;
  run.throwIfStopped();
  if (saved.size !== tap.bytes()) throw new InternalError(`the store saved ${saved.size} bytes of the ${tap.bytes()} streamed`);
  return { size: saved.size, sha256: tap.digest(), tables, partial: await partial };
}

/** The terminal's bar (lib/core/terminal.ts), fed the bytes written five times a second; removed at the end. */
function progressReporter(bar: Progress | null, bytes: () => number) {
  if (!bar) return { stop() {} };
  const timer = setInterval(() => bar.set(bytes()), 200);
  return {
    stop() {
      clearInterval(timer);
      bar.stop();
    },
  };
}

/**
 * A pass-through that also writes every chunk to `dest`, waiting on its backpressure, until `dest`
 * closes or fails: from then on it is left alone and the chunks only pass. Ended, it ends `dest`;
 * destroyed before that (the dump failed), it destroys `dest` with the error.
 */
export function teeTo(dest: Writable): Transform {
  let gone = dest.destroyed || dest.writableEnded;
  let waiting: (() => void) | null = null;
  const release = () => {
    const w = waiting;
    waiting = null;
    w?.();
  };
  const leave = () => {
    gone = true;
    release();
  };
  dest.once('close', leave);
  dest.on('error', leave);
  dest.on('drain', release);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (gone || dest.write(chunk)) return cb(null, chunk);
      waiting = () => cb(null, chunk);
    },
    flush(cb) {
      if (!gone) {
        gone = true;
        dest.end();
      }
      cb();
    },
    destroy(err, cb) {
      if (!gone) {
        gone = true;
        dest.destroy(err ?? new Error('the dump ended early'));
      }
      cb(err);
    },
  });
}
