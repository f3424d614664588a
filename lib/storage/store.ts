/**
 * The storage interface, in the restic mould: every byte pgfleet keeps (dumps, their metadata,
 * deployment manifests; later WAL and base backups) is saved and read through a Store, under a
 * key. Two implementations: the local filesystem under backup_root (lib/storage/local.ts) and
 * S3-compatible object storage (lib/storage/s3.ts); `readOnly()` (lib/storage/dryrun.ts) wraps
 * either for dry runs. One conformance suite (test/storage/conformance.ts) runs against each.
 *
 * Keys are relative, '/'-separated paths of plain segments (no '', no leading '/', no segment
 * starting with '.': those names are the stores' own, such as the local store's `.tmp-…` files and
 * the target lock `.lock`), mirroring the local layout: `<project>/<environment>/database/<id>.dump.zst`.
 *
 * Promises every Store keeps:
 * - save() is atomic: a reader sees no object, or the old one, or the whole new one; never a
 *   part. An object appears only after all its bytes are durable (local: temp name, fsync,
 *   rename, fsync of the directory; S3: the upload completes). A failed or aborted save (the
 *   source stream errors, the signal aborts, the disk fills) leaves no object under the key and
 *   rejects; what it may leave is only what abandoned() finds.
 * - remove() is idempotent: removing a missing key succeeds.
 * - list(prefix) returns every complete object under the prefix (never a temp or an unfinished
 *   upload), sorted by key.
 * - load() and read() of a missing key throw NotFoundError; stat() returns null.
 * - A crash (SIGKILL, power loss) mid-save leaves at most an abandoned temp or upload, found by
 *   abandoned() and never listed.
 */
import type { Readable } from 'node:stream';
import { PgfleetError, EXIT, InternalError } from '../core/errors.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Last modified. */
  mtime: Date;
}

/** What an interrupted save left behind (a temp file, an unfinished multipart upload). */
export interface Abandoned {
  /** The key it was being saved under (as well as the store can tell). */
  key: string;
  /** The store's own handle (local: the temp file's path; S3: the upload id). For messages and removeAbandoned(). */
  handle: string;
  /** When it was started, or, for a local temp file, last written (a save in progress keeps it fresh). */
  startedAt: Date;
}

export interface SaveOptions {
  signal?: AbortSignal;
}

export interface SaveResult {
  key: string;
  size: number;
}

export interface Store {
  /** Where this store keeps things, for messages (a directory, an s3:// URL). Never a secret. */
  readonly location: string;
  /** Save a whole object atomically from bytes or a stream (read to its end). */
  save(key: string, data: Readable | Buffer | string, o?: SaveOptions): Promise<SaveResult>;
  /** The object's bytes as a stream. Throws NotFoundError. */
  load(key: string, o?: { signal?: AbortSignal }): Promise<Readable>;
  /** A small object whole (metadata, manifests). Throws NotFoundError. */
  read(key: string): Promise<Buffer>;
  stat(key: string): Promise<ObjectInfo | null>;
  /** Complete objects whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /**
   * Optional: list()'s keys alone, where that is cheaper (local: no stat per file, which for the
   * metadata of 10,000 backups is a third of the time). Same promises as list().
   */
  keys?(prefix: string): Promise<string[]>;
  /** Idempotent. */
  remove(key: string): Promise<void>;
  /**
   * What interrupted saves under `prefix` left: those started before `before`, and those whose
   * writer the store knows is gone whatever their age (local: the writer's pid, in the temp name,
   * is no longer a process on this host). `new Date(0)` asks for the latter only. A save in
   * progress in a live process is found only once it is older than `before`. Never a complete object.
   */
  abandoned(prefix: string, before: Date): Promise<Abandoned[]>;
  /** Remove one abandoned temp or upload. Idempotent. */
  removeAbandoned(a: Abandoned): Promise<void>;
  /**
   * Optional, for stores on the local filesystem: the file that holds (or would hold) `key`, for
   * local consumers (restore reads a dump by path, the CLI prints paths, the target lock lives beside).
   */
  pathOf?(key: string): string;
}

export class NotFoundError extends PgfleetError {
  constructor(
    readonly key: string,
    location: string,
  ) {
    super(`${location}: no object ${key}`, EXIT.FAILED);
  }
}

const KEY = /^[^./\0][^/\0]*(?:\/[^./\0][^/\0]*)*$/;

/** Whether `key` is a relative path of plain segments (see the header). */
export function isKey(key: string): boolean {
  return KEY.test(key);
}

/** Throws on a key that is not a relative path of plain segments (a bug in the caller). */
export function checkKey(key: string): string {
  if (!isKey(key)) throw new InternalError(`storage: not a valid key: ${JSON.stringify(key)}`);
  return key;
}

/** Throws on a list/abandoned prefix that no key could start with: '' (everything), 'a/b/', 'a/b/db_2025'. */
export function checkPrefix(prefix: string): string {
  const i = prefix.lastIndexOf('/');
  const last = prefix.slice(i + 1);
  if ((i >= 0 && !isKey(prefix.slice(0, i))) || last.startsWith('.') || /\0/.test(last)) throw new InternalError(`storage: not a valid prefix: ${JSON.stringify(prefix)}`);
  return prefix;
}

export function joinKey(...parts: string[]): string {
  return checkKey(parts.join('/'));
}
