/**
 * What a dump is, and whether it is the dump its metadata describes: where it is, its metadata,
 * size, format (zstd or a plain custom-format archive) and the sha256 of its content. Nothing here
 * writes or starts a process; the rest of the restore engine (stage, into, over) builds on it.
 *
 * Promises: a file that does not match its metadata (size, sha256, format, compression) is refused
 * with VerificationError (exit 4) before anything reads it for a restore; a file given by path
 * without metadata is accepted, and said so (CheckedDump.meta null).
 *
 * A dump is a local file, or a copy in the offsite bucket (lib/offsite/fetch.ts RemoteDump: read
 * as a stream, its stored bytes checked and decrypted on the way); readDump() reads either, and
 * what is checked here (sha256, size) is then the decrypted archive's, against its plaintext view.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { EXIT, InterruptedError, PgfleetError, VerificationError, type TargetRef } from '../core/errors.js';
import type { BackupMetadata } from '../formats/metadata.js';
import { isRemoteDump, type HashedRead, type RemoteDump } from '../offsite/fetch.js';
import { metadataBeside, type StoredBackup } from '../storage/repository.js';

export interface CheckedDump {
  /** The file; for a remote dump, where it is (`s3://…/<key>`), for messages only. */
  path: string;
  /** A copy in another store, read as a stream (never a local file): see readDump(). */
  remote?: RemoteDump;
  /** null: a file given by path without metadata; its content cannot be checked against anything. */
  meta: BackupMetadata | null;
  /** zstd-compressed (else a plain pg_dump custom-format archive). */
  compressed: boolean;
  sha256: string;
  size: number;
}

/** What is known of a dump before its content is read: where, its metadata, size and format. */
export type DumpFile = Omit<CheckedDump, 'sha256'>;

/** What a restore reads: a complete backup of the local repository, a file by its path, or a copy in the bucket. */
export type DumpSource = StoredBackup | { path: string } | RemoteDump;

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const PGDMP_MAGIC = Buffer.from('PGDMP');

/**
 * A backup's own metadata is used as given; for a bare path, `<path>.json` is read when present
 * (and must then be complete and match), and a file without one is accepted only because the
 * caller named it explicitly. The size and the format (its first bytes) are checked here.
 */
export async function describeDump(src: DumpSource, o: { target?: TargetRef }): Promise<DumpFile> {
  if (isRemoteDump(src)) {
    // Known from its metadata alone: its bytes are checked as they are read (lib/offsite/fetch.ts, then sealed()).
    return { path: src.path, remote: src, meta: src.meta, compressed: src.meta.compression.algorithm === 'zstd', size: src.meta.size_bytes };
  }
  const file = path.resolve(src.path);
  let meta: BackupMetadata | null = null;
  if ('meta' in src && src.meta) meta = src.meta;
  else {
    const beside = await metadataBeside(file);
    if (beside && !beside.backup) throw new VerificationError(`${file}: ${beside.problem}: the file is truncated or damaged, or its metadata is; refusing to restore it`, o.target);
    meta = beside?.backup?.meta ?? null;
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

/** The dump with its content's sha256, which must be its metadata's; `bytes` read must be its size. */
export function sealed(d: DumpFile, sha256: string, bytes: number, o: { target?: TargetRef }): CheckedDump {
  if (bytes !== d.size) throw new VerificationError(`${d.path}: read ${bytes} bytes of ${d.size}: the file changed while it was read; refusing to restore it`, o.target);
  if (d.meta && sha256 !== d.meta.sha256)
    throw new VerificationError(`${d.path}: sha256 is ${sha256} but its metadata says ${d.meta.sha256}: the file is damaged; refusing to restore it`, o.target);
  return { ...d, sha256 };
}

/** One read of the dump's bytes (the decrypted archive, for a remote one), hashed as they pass. */
export function readDump(d: DumpFile, signal?: AbortSignal, onBytes?: (n: number) => void): HashedRead {
  return d.remote ? d.remote.open(signal) : hashedRead(d.path, signal, onBytes);
}

/**
 * The file as a stream that hashes what passes through it. It ends early on interrupt or a read
 * error (never an 'error' event a pipe would leave unheard); digest() then throws that.
 */
export function hashedRead(file: string, signal?: AbortSignal, onBytes?: (bytesSoFar: number) => void): HashedRead {
  const hash = createHash('sha256');
  let bytes = 0;
  let failure: unknown;
  const rs = createReadStream(file, { highWaterMark: 1 << 20 });
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
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
    digest: async () => {
      if (failure) throw failure;
      return { sha256: hash.digest('hex'), bytes };
    },
    failed: () => failure,
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
export async function checkDumpFile(src: DumpSource, o: { signal?: AbortSignal; target?: TargetRef } = {}): Promise<CheckedDump> {
  return hashWhole(await describeDump(src, o), o);
}

/** The whole file read and hashed, then sealed (see sealed()). */
export async function hashWhole(d: DumpFile, o: { signal?: AbortSignal; target?: TargetRef; onBytes?: (n: number) => void }): Promise<CheckedDump> {
  const r = readDump(d, o.signal, o.onBytes);
  try {
    for await (const _ of r.stream as AsyncIterable<Buffer>);
    const { sha256, bytes } = await r.digest();
    return sealed(d, sha256, bytes, o);
  } finally {
    r.destroy();
  }
}

/**
 * Tables missing, extra, or with other row counts than recorded. Empty: the copy matches.
 * `dataExcluded`: a partial backup's tables dumped without their rows (metadata partial.data_excluded):
 * each must be there, with no rows.
 */
export function compareCounts(expected: Record<string, number>, actual: Record<string, number>, dataExcluded: readonly string[] = []): string[] {
  const problems: string[] = [];
  const empty = new Set(dataExcluded);
  for (const [t, n] of Object.entries(expected)) {
    if (!(t in actual)) problems.push(`table ${t} is missing`);
    else if (actual[t] !== n) problems.push(`table ${t} has ${actual[t]} rows, ${n} recorded`);
  }
  for (const t of empty) {
    if (t in expected) continue; // recorded with rows after all: checked above
    if (!(t in actual)) problems.push(`table ${t} is missing (its data was excluded from the backup, the table was not)`);
    else if (actual[t] !== 0) problems.push(`table ${t} has ${actual[t]} rows, none expected (its data was excluded from the backup)`);
  }
  for (const t of Object.keys(actual)) if (!(t in expected) && !empty.has(t)) problems.push(`table ${t} was not recorded in the backup`);
  return problems;
}
