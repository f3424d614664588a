/**
 * WAL intake: the files the cluster's archive_command landed in its landing directory
 * (database.pitr.archive_dir) are taken into the cluster's archive (lib/pitr/archive.ts):
 *
 *   for each archived file, in name order (`.part` temps and other names are never touched):
 *     hash it → already taken in? same sha256: a harmless repeat, removed; other bytes: an error,
 *     the file left where it is → zstd (on the host) → save <name>.zst (atomic) → save its
 *     record, last → only then remove it from the landing directory
 *   then: a segment missing between the first and the last of a timeline is an error naming it
 *
 * Promises: a landing file is removed only once its compressed copy and its record are durable
 * in the store; a crash at any point leaves it to be taken in again (idempotent). Nothing is
 * skipped silently: a conflicting duplicate stops the intake (WalConflictError) and a gap fails
 * it (WalGapError) after everything that could be taken in is in. Run under the cluster's lock.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Clock } from '../core/clock.js';
import { EXIT, InternalError, PgfleetError } from '../core/errors.js';
import { hashingTap } from '../core/hashing.js';
import { fsyncDir } from '../core/fsutil.js';
import { walKind, type WalRecord } from '../formats/pitr.js';
import type { Runner } from '../process/runner.js';
import type { ClusterArchive } from './archive.js';
import { findGaps, timelineOf } from './segments.js';

export const WAL_ZSTD_LEVEL = 3;

export class WalConflictError extends PgfleetError {
  constructor(container: string, name: string, had: string, got: string) {
    super(`${container}: WAL ${name} is already in the archive with sha256 ${had}, and the landing directory holds one with sha256 ${got}: two different files of one name (two clusters archiving into one directory, or a restored cluster writing on the old timeline); left in place, nothing overwritten`, EXIT.FAILED);
  }
}

export class WalGapError extends PgfleetError {
  constructor(
    container: string,
    readonly missing: string[],
  ) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? ` and ${missing.length - 5} more` : '');
    super(`${container}: the WAL archive has a gap: ${shown} missing (recovery cannot pass it; take a new base backup)`, EXIT.FAILED);
  }
}

export interface IntakeResult {
  /** Names taken in by this run. */
  taken: string[];
  /** Landing files that were already taken in with the same bytes, removed. */
  repeats: string[];
  /** The newest segment in the archive after the intake, and when it was archived. */
  newest?: { name: string; archivedAt: string };
}

export interface IntakeDeps {
  runner: Runner;
  clock: Clock;
  signal?: AbortSignal;
}

async function sha256Of(file: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** The archived files waiting in the landing directory, by name; a missing directory is an error. */
export async function landed(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    throw new PgfleetError(`the WAL landing directory ${dir} cannot be read (${(e as NodeJS.ErrnoException).code}); create it and mount it into the cluster's container (pitr check prints the line)`, EXIT.FAILED);
  }
  return names.filter((n) => walKind(n) !== null).sort();
}

/** Take every landed file in; see the header for the promises. */
export async function takeInWal(d: IntakeDeps, archive: ClusterArchive, landingDir: string): Promise<IntakeResult> {
  const { items, problems } = await archive.walRecords();
  if (problems.length) throw new PgfleetError(`${archive.container}: damaged WAL records in ${archive.store.location}: ${problems.join('; ')}`, EXIT.FAILED);
  const records = new Map(items.map((r) => [r.name, r]));
  const result: IntakeResult = { taken: [], repeats: [] };
  for (const name of await landed(landingDir)) {
    d.signal?.throwIfAborted();
    const file = path.join(landingDir, name);
    const st = await fs.stat(file).catch(() => null);
    if (!st?.isFile()) continue; // taken by a concurrent intake, or not a file
    const raw = await sha256Of(file, d.signal);
    const had = records.get(name);
    if (had && had.sha256 !== raw.sha256) throw new WalConflictError(archive.container, name, had.sha256, raw.sha256);
    if (!had) records.set(name, await takeOne(d, archive, file, name, raw, st.mtime));
    await fs.rm(file, { force: true });
    (had ? result.repeats : result.taken).push(name);
  }
  if (result.taken.length || result.repeats.length) await fsyncDir(landingDir);
  const segments = [...records.values()].filter((r) => r.kind === 'segment');
  const newest = segments.sort((a, b) => (a.name < b.name ? -1 : 1)).at(-1);
  if (newest) result.newest = { name: newest.name, archivedAt: newest.archived_at };
  if (segments.length) {
    const missing = findGaps(segments.map((r) => r.name), segments[0].size_bytes);
    if (missing.length) throw new WalGapError(archive.container, missing);
  }
  return result;
}

/** Compress and save one file, then its record; returns the record. */
async function takeOne(d: IntakeDeps, archive: ClusterArchive, file: string, name: string, raw: { sha256: string; size: number }, mtime: Date): Promise<WalRecord> {
  const zstd = d.runner.spawn(['zstd', '-q', '-c', `-${WAL_ZSTD_LEVEL}`, '--', file], { what: `zstd (WAL ${name})`, program: 'zstd', role: 'compress', signal: d.signal });
  const tap = hashingTap(zstd.done);
  const piping = pipeline(zstd.stdout, tap.stream);
  piping.catch(() => undefined);
  const saved = await archive.saveWal(name, tap.stream, { signal: d.signal });
  await Promise.all([piping, zstd.done]);
  if (saved.size !== tap.bytes()) throw new InternalError(`the store saved ${saved.size} bytes of the ${tap.bytes()} streamed`);
  const kind = walKind(name)!;
  const record: WalRecord = {
    format_version: 1,
    name,
    kind,
    timeline: timelineOf(name),
    size_bytes: raw.size,
    sha256: raw.sha256,
    stored: { file: `${name}.zst`, size_bytes: saved.size, sha256: tap.digest(), compression: 'zstd' },
    archived_at: mtime.toISOString(),
    taken_at: d.clock().toISOString(),
  };
  await archive.saveWalRecord(record);
  return record;
}
