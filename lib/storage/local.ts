/**
 * The local filesystem store: every key is a file under one root directory (backup_root), its
 * '/'-separated segments the directories. Keeps every promise of lib/storage/store.ts:
 *
 * - save(): a temp file beside the final name (`.tmp-<name>.<pid>.<random>`, lib/core/fsutil.ts),
 *   0600 whatever the umask, in directories created 0700; written, fsynced, closed, renamed over
 *   the final name, and the directory fsynced. A failed or aborted save removes its temp and
 *   rejects; a SIGKILL or power loss leaves only the temp, which abandoned() finds.
 * - list(), keys(), abandoned(): a walk of the directories under the prefix. Names starting with
 *   '.' are never objects (temps, the target lock `.lock` and its helpers). A prefix whose
 *   directory is a file (which this store never makes: a key is never a file and a directory at
 *   once) is an error (ENOTDIR), not an empty answer.
 * - read(), stat(), list() use synchronous calls on purpose: for thousands of small files (the
 *   metadata of 10,000 backups) they are several times faster than as many promises, and each
 *   call is short. load() streams in 1 MiB chunks.
 */
import { close as closeCb, closeSync, fstatSync, constants, createReadStream, createWriteStream, fchmod as fchmodCb, fstat as fstatCb, fsync as fsyncCb, open as openCb, openSync, promises as fs, readdirSync, readSync, statSync, write as writeCb, writev as writevCb, type Dirent } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { InternalError } from '../core/errors.js';
import { ensureDir, FILE_MODE, fsyncDir, parseTempName, pidAlive, tempPathFor, TEMP_PREFIX } from '../core/fsutil.js';
import { checkKey, checkPrefix, NotFoundError, type Abandoned, type ObjectInfo, type SaveOptions, type SaveResult, type Store } from './store.js';

const open = promisify(openCb);
const fchmod = promisify(fchmodCb);
const fsync = promisify(fsyncCb);
const fstat = promisify(fstatCb);
const close = promisify(closeCb);

/**
 * A write stream over `fd` that never closes it, not even when a failed pipeline destroys it: the
 * fd is closed once, by its opener. (A stream's own close plus ours would close the fd number
 * twice, and the second close could hit whatever reused the number meanwhile, such as a child's
 * pipe, hanging the run.)
 */
function streamTo(fd: number) {
  const noClose = { open: openCb, write: writeCb, writev: writevCb, close: (_fd: number, cb: (e: null) => void) => cb(null) };
  return createWriteStream('', { fd, autoClose: false, highWaterMark: 1 << 20, fs: noClose as never });
}

/** read()'s scratch space: a synchronous read never shares it. */
const SCRATCH = Buffer.allocUnsafe(1 << 16);

const missing = (e: unknown) => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes((e as NodeJS.ErrnoException)?.code ?? '');

export class LocalStore implements Store {
  readonly location: string;

  constructor(root: string) {
    this.location = path.resolve(root);
  }

  pathOf(key: string): string {
    checkKey(key);
    return path.sep === '/' ? (this.location.endsWith('/') ? this.location : this.location + '/') + key : path.join(this.location, ...key.split('/'));
  }

  async save(key: string, data: Readable | Buffer | string, o: SaveOptions = {}): Promise<SaveResult> {
    // A stream's error before the write starts (while the temp is being created) is kept, not left unheard.
    const stream = data instanceof Readable ? data : null;
    let early: { error: unknown } | undefined;
    const onEarly = (error: unknown) => (early ??= { error });
    stream?.on('error', onEarly);
    let fd: number | undefined;
    let temp: string | undefined;
    try {
      const final = this.pathOf(key);
      o.signal?.throwIfAborted();
      await ensureDir(path.dirname(final));
      temp = tempPathFor(final);
      fd = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, FILE_MODE);
      await fchmod(fd, FILE_MODE);
      if (early) throw early.error;
      await pipeline(stream ?? Readable.from([Buffer.from(data as Buffer | string)]), streamTo(fd), { signal: o.signal });
      await fsync(fd);
      const { size } = await fstat(fd);
      const closing = fd;
      fd = undefined;
      await close(closing);
      o.signal?.throwIfAborted();
      await fs.rename(temp, final);
      temp = undefined;
      await fsyncDir(path.dirname(final));
      return { key, size };
    } catch (e) {
      if (stream && !stream.destroyed) stream.destroy();
      if (fd !== undefined) await close(fd).catch(() => undefined);
      if (temp) await fs.rm(temp, { force: true }).catch(() => undefined);
      throw e;
    } finally {
      stream?.off('error', onEarly);
    }
  }

  /** The key's file opened for reading; NotFoundError when there is none. */
  private open(key: string): number {
    try {
      return openSync(this.pathOf(key), 'r');
    } catch (e) {
      if (missing(e)) throw new NotFoundError(key, this.location);
      throw e;
    }
  }

  async load(key: string, o: { signal?: AbortSignal } = {}): Promise<Readable> {
    const fd = this.open(key);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new NotFoundError(key, this.location);
    }
    return createReadStream('', { fd, highWaterMark: 1 << 20, signal: o.signal });
  }

  async read(key: string): Promise<Buffer> {
    const fd = this.open(key);
    try {
      // Into one scratch buffer, to the end: no fstat, no growing buffer for a small object.
      const parts: Buffer[] = [];
      for (let n; (n = readSync(fd, SCRATCH, 0, SCRATCH.length, null)) > 0; ) parts.push(Buffer.from(SCRATCH.subarray(0, n)));
      return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    } catch (e) {
      if (missing(e)) throw new NotFoundError(key, this.location);
      throw e;
    } finally {
      closeSync(fd);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const st = statSync(this.pathOf(key), { throwIfNoEntry: false });
    return st?.isFile() ? { key, size: st.size, mtime: st.mtime } : null;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    this.walk(prefix, (dir, keyDir, e) => {
      if (e.name.startsWith('.')) return;
      const st = statSync(path.join(dir, e.name), { throwIfNoEntry: false });
      if (st?.isFile()) out.push({ key: keyDir + e.name, size: st.size, mtime: st.mtime });
    });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    this.walk(prefix, (dir, keyDir, e) => {
      if (!e.name.startsWith('.') && (e.isFile() || (e.isSymbolicLink() && statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isFile()))) out.push(keyDir + e.name);
    });
    return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  async abandoned(prefix: string, before: Date): Promise<Abandoned[]> {
    const out: Abandoned[] = [];
    this.walk(prefix, (dir, keyDir, e) => {
      const t = parseTempName(e.name);
      if (!t || !(keyDir + t.final).startsWith(prefix)) return;
      const handle = path.join(dir, e.name);
      const st = statSync(handle, { throwIfNoEntry: false });
      if (!st?.isFile()) return;
      const gone = t.pid !== null && !pidAlive(t.pid);
      if (gone || st.mtime < before) out.push({ key: keyDir + t.final, handle, startedAt: st.mtime });
    }, true);
    return out.sort((a, b) => (a.handle < b.handle ? -1 : 1));
  }

  async removeAbandoned(a: Abandoned): Promise<void> {
    const rel = path.relative(this.location, a.handle);
    if (rel.startsWith('..') || path.isAbsolute(rel) || !path.basename(a.handle).startsWith(TEMP_PREFIX))
      throw new InternalError(`storage: ${a.handle} is not a temp file of ${this.location}`);
    await fs.rm(a.handle, { force: true });
  }

  /**
   * Visit the directory entries whose key starts with `prefix`: every entry of the directories
   * below the prefix, and in the prefix's own directory those starting with its last part (or,
   * with `temps`, its temp files, whose names start with TEMP_PREFIX instead). Throws ENOTDIR when
   * the prefix's directory is a file.
   */
  private walk(prefix: string, visit: (dir: string, keyDir: string, e: Dirent) => void, temps = false): void {
    checkPrefix(prefix);
    const i = prefix.lastIndexOf('/');
    const keyDir = prefix.slice(0, i + 1);
    const rest = prefix.slice(i + 1);
    const go = (dir: string, kd: string, first: boolean) => {
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (e) {
        // Nothing under a prefix whose directory does not exist. A file where the prefix's
        // directory should be is a tree this store did not write: an error, never "nothing"
        // (retention must not run as if a target had no deployment manifests).
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (!first && missing(e))) return;
        throw e;
      }
      for (const e of entries) {
        if (e.isDirectory()) {
          if (!e.name.startsWith('.') && (!first || e.name.startsWith(rest))) go(path.join(dir, e.name), `${kd}${e.name}/`, false);
        } else if (!first || e.name.startsWith(rest) || (temps && e.name.startsWith(TEMP_PREFIX))) visit(dir, kd, e);
      }
    };
    go(keyDir ? path.join(this.location, ...keyDir.slice(0, -1).split('/')) : this.location, keyDir, true);
  }
}
