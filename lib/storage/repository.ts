/**
 * The backup repository: dumps, their metadata and deployment manifests (lib/storage/manifests.ts),
 * kept in a Store (lib/storage/store.ts) under these keys, which on the local store are the paths
 * under backup_root:
 *
 *   <project>/<environment>/database/db_<YYYYMMDD>_<HHMMSS>Z.dump.zst        the dump
 *   <project>/<environment>/database/db_<YYYYMMDD>_<HHMMSS>Z.dump.zst.json   its metadata
 *   <project>/<environment>/deployments/<release>.json                       manifests
 *
 * An offsite copy encrypted with age is `<id>.dump.zst.age` with its `<id>.dump.zst.age.json`
 * (lib/offsite/upload.ts); list(), inspect() and find() take either, so `new Repository(s3Store)`
 * reads a bucket with this code.
 *
 * - A backup is complete only when its metadata exists, is valid, names its own dump, and that dump
 *   has the recorded size. Anything else is not restored, not counted by retention, and never
 *   silent: survey() returns it as damaged with its problem (a metadata file that is unreadable,
 *   invalid or names another file; a dump missing or of another size; a failed checksum pass
 *   recorded in the metadata (verify-backups --checksums); a dump with no metadata
 *   last written more than a day ago, which no running backup leaves), so list, status,
 *   verify-backups, prune and the metrics report it.
 * - Dumps and metadata are saved atomically (the store's save); the metadata is written last by
 *   the caller (takeBackup), so a dump without it is never a backup. remove() deletes the metadata
 *   first, so a half-removed backup is never taken for a whole one.
 * - Paths (StoredBackup.path, dumpPath, the *Dir helpers) are the local store's files: restore
 *   reads a dump by path, the CLI prints paths, the target lock lives in lockDir.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InternalError } from '../core/errors.js';
import { newestFirst, type BackupMetadata } from '../formats/metadata.js';
import { schemaProblems } from '../core/schema-files.js';
import { LocalStore } from './local.js';
import { isKey, joinKey, NotFoundError, type Abandoned, type SaveOptions, type SaveResult, type Store } from './store.js';

export const DUMP_EXT = '.dump.zst';
export const META_EXT = '.json';
/** The suffix of a dump encrypted with age (offsite copies only). */
export const AGE_EXT = '.age';

/** Whether a key is a backup's metadata (a plain or an age-encrypted dump's). */
export function isMetaKey(key: string): boolean {
  return key.endsWith(DUMP_EXT + META_EXT) || key.endsWith(DUMP_EXT + AGE_EXT + META_EXT);
}

export interface StoredBackup {
  meta: BackupMetadata;
  /** The dump's file (the local store), or where it is (`<location>/<key>`). */
  path: string;
  metaPath: string;
  key: string;
  metaKey: string;
}

/**
 * A backup that is not complete but was meant to be one (see the header): its metadata when it
 * could be read and is valid (the dump is then missing or of another size), its keys, and why.
 */
export interface DamagedBackup {
  id: string;
  meta: BackupMetadata | null;
  /** The dump's key (it may be missing) and the metadata's (it may be missing: a dump without metadata). */
  key: string;
  metaKey: string;
  path: string;
  problem: string;
  /** See Inspection.recheck. */
  recheck?: StoredBackup;
}

/** A target's backups as survey() finds them: complete ones newest first, damaged ones by id (newest first). */
export interface Survey {
  complete: StoredBackup[];
  damaged: DamagedBackup[];
}

/** How long a dump without metadata may stay before it is damage: a backup writes its metadata seconds after its dump. */
export const ORPHAN_DUMP_AGE_MS = 86_400_000;

/** One backup's metadata, checked: the backup when it is complete, else null and why not. */
export interface Inspection {
  backup: StoredBackup | null;
  problem?: string;
  /** Set when the metadata read and passed its schema but the dump does not match it. */
  meta?: BackupMetadata;
  /** Set when the only problem is a failed checksum pass (meta.checksum): the backup as it stands, to hash again. */
  recheck?: StoredBackup;
}

/** db_YYYYMMDD_HHMMSSZ for a time, in UTC. */
export function backupStem(at: Date): string {
  const iso = at.toISOString(); // 2025-01-06T02:00:00.000Z
  return `db_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/** Metadata reads in flight at once (a remote store; the local store answers each at once). */
const READ_CONCURRENCY = 16;

export class Repository {
  readonly store: Store;

  /** Over a store, or (a path) over the local store rooted there. */
  constructor(store: Store | string) {
    this.store = typeof store === 'string' ? new LocalStore(store) : store;
  }

  /** The backup root: the local store's directory (a remote store's URL). */
  get root(): string {
    return this.store.location;
  }

  targetKey(project: string, environment: string): string {
    return joinKey(project, environment);
  }
  databasePrefix(project: string, environment: string): string {
    return `${joinKey(project, environment, 'database')}/`;
  }
  deploymentsPrefix(project: string, environment: string): string {
    return `${joinKey(project, environment, 'deployments')}/`;
  }
  dumpKey(project: string, environment: string, id: string): string {
    return joinKey(project, environment, 'database', id + DUMP_EXT);
  }

  /** A key's file on the local store (else `<location>/<key>`, for messages). */
  pathOf(key: string): string {
    return this.store.pathOf ? this.store.pathOf(key) : `${this.store.location}/${key}`;
  }
  /** The key of a file under the local store's root, or null when it is not one. */
  keyOf(file: string): string | null {
    if (!this.store.pathOf) return null;
    const rel = path.relative(this.store.location, path.resolve(file));
    const key = rel.split(path.sep).join('/');
    return isKey(key) && this.store.pathOf(key) === path.resolve(file) ? key : null;
  }
  targetDir(project: string, environment: string): string {
    return this.pathOf(this.targetKey(project, environment));
  }
  databaseDir(project: string, environment: string): string {
    return this.pathOf(joinKey(project, environment, 'database'));
  }
  deploymentsDir(project: string, environment: string): string {
    return this.pathOf(joinKey(project, environment, 'deployments'));
  }
  dumpPath(project: string, environment: string, id: string): string {
    return this.pathOf(this.dumpKey(project, environment, id));
  }
  /** Where the target's lock file lives (lib/storage/lock.ts): a local directory, always. */
  lockDir(project: string, environment: string): string {
    if (!this.store.pathOf) throw new InternalError(`the target lock needs a local directory; ${this.store.location} is not one`);
    return this.targetDir(project, environment);
  }

  /**
   * A fresh backup id for `at`: the UTC second, with _2, _3… when that second is taken (by a dump
   * or by metadata alone). Call with the target's lock held, so no other run picks the same name.
   */
  async newId(project: string, environment: string, at: Date): Promise<string> {
    const prefix = this.databasePrefix(project, environment);
    const keys = this.store.keys ? await this.store.keys(prefix) : (await this.store.list(prefix)).map((o) => o.key);
    const names = new Set(keys.map((k) => k.slice(prefix.length)));
    const stem = backupStem(at);
    for (let n = 1; ; n++) {
      const id = n === 1 ? stem : `${stem}_${n}`;
      const taken = [DUMP_EXT, DUMP_EXT + META_EXT, DUMP_EXT + AGE_EXT, DUMP_EXT + AGE_EXT + META_EXT].some((ext) => names.has(id + ext));
      if (!taken) return id;
    }
  }

  /** Save a dump atomically (store.save): it is no backup until saveMetadata() names it. */
  saveDump(project: string, environment: string, id: string, data: Readable | Buffer, o?: SaveOptions): Promise<SaveResult> {
    return this.store.save(this.dumpKey(project, environment, id), data, o);
  }

  /** The keys of backup `id` (its dump and its metadata), for remove(): a failed backup's, whatever it saved. */
  keysOf(project: string, environment: string, id: string): { key: string; metaKey: string } {
    const key = this.dumpKey(project, environment, id);
    return { key, metaKey: key + META_EXT };
  }

  /** Write (or replace) a backup's metadata atomically, as `<its file's key>.json`. Returns its path. Refuses metadata that fails its schema (a bug). */
  async saveMetadata(meta: BackupMetadata): Promise<string> {
    const problems = schemaProblems('backup-metadata', meta);
    if (problems.length) throw new InternalError(`metadata does not match its schema: ${problems.join('; ')}`);
    const key = joinKey(meta.project, meta.environment, 'database', meta.file) + META_EXT;
    await this.store.save(key, JSON.stringify(meta, null, 2) + '\n');
    return this.pathOf(key);
  }

  /** The stored backup `meta` describes (its keys and paths), as saveMetadata() just wrote it. */
  stored(meta: BackupMetadata): StoredBackup {
    const key = joinKey(meta.project, meta.environment, 'database', meta.file);
    const metaKey = key + META_EXT;
    return { meta, path: this.pathOf(key), metaPath: this.pathOf(metaKey), key, metaKey };
  }

  /** Read and check the metadata under `metaKey` (see Inspection). `dumpSize`: the dump's size if known (list()), else it is stat-ed. */
  async check(metaKey: string, dumpSize?: number | null): Promise<Inspection> {
    let meta: BackupMetadata;
    try {
      meta = JSON.parse((await this.store.read(metaKey)).toString('utf8'));
    } catch (e) {
      return { backup: null, problem: e instanceof NotFoundError ? 'no metadata' : `unreadable metadata: ${(e as Error).message}` };
    }
    const problems = schemaProblems('backup-metadata', meta);
    if (problems.length) return { backup: null, problem: `invalid metadata: ${problems.slice(0, 3).join('; ')}` };
    const key = metaKey.slice(0, metaKey.lastIndexOf('/') + 1) + meta.file;
    if (key + META_EXT !== metaKey) return { backup: null, problem: `metadata names another file (${meta.file})` };
    const size = dumpSize !== undefined ? dumpSize : ((await this.store.stat(key))?.size ?? null);
    if (size === null) return { backup: null, problem: 'dump file missing', meta };
    if (size !== meta.size_bytes) return { backup: null, problem: `dump is ${size} bytes, metadata says ${meta.size_bytes}`, meta };
    const backup = { meta, path: this.pathOf(key), metaPath: this.pathOf(metaKey), key, metaKey };
    if (meta.checksum?.status === 'failed') return { backup: null, problem: `checksum failed (${meta.checksum.checked_at}): ${meta.checksum.error ?? 'sha256 mismatch'}`, meta, recheck: backup };
    return { backup };
  }

  /** One backup of a target by id, checked (see Inspection): the plain dump's metadata, else the age-encrypted one's. */
  async inspect(project: string, environment: string, id: string): Promise<Inspection> {
    const key = this.dumpKey(project, environment, id);
    const plain = await this.check(key + META_EXT);
    if (plain.problem !== 'no metadata') return plain;
    const age = await this.check(key + AGE_EXT + META_EXT);
    return age.problem === 'no metadata' ? plain : age;
  }

  /** check() of the metadata file at `metaPath` under the local store's root (else: not a backup of this repository). */
  async load(metaPath: string): Promise<Inspection> {
    const key = this.keyOf(metaPath);
    if (!key || !isMetaKey(key)) return { backup: null, problem: `not a backup's metadata in ${this.root} (${metaPath})` };
    return this.check(key);
  }

  /** Complete backups of one target, newest first (survey()'s complete ones). */
  async list(project: string, environment: string): Promise<StoredBackup[]> {
    return (await this.survey(project, environment)).complete;
  }

  /**
   * Every backup of one target, complete or damaged (see the header): one listing, then each
   * metadata read and checked. With the store's keys() (local), only the dumps are stat-ed, as the
   * metadata names them, and a dump without metadata once for its age. `now`: the clock for that
   * age (default the real time). Read-only.
   */
  async survey(project: string, environment: string, now: Date = new Date()): Promise<Survey> {
    const prefix = this.databasePrefix(project, environment);
    const direct = (k: string) => !k.includes('/', prefix.length);
    let keys: string[];
    let sizes: Map<string, number> | undefined;
    if (this.store.keys) keys = (await this.store.keys(prefix)).filter(direct);
    else {
      const objects = (await this.store.list(prefix)).filter((o) => direct(o.key));
      sizes = new Map(objects.map((o) => [o.key, o.size]));
      keys = objects.map((o) => o.key);
    }
    const metas = keys.filter(isMetaKey);
    const complete: StoredBackup[] = [];
    const damaged: DamagedBackup[] = [];
    const idOf = (k: string) => path.posix.basename(k).replace(/\.dump\.zst(\.age)?(\.json)?$/, '');
    for (let i = 0; i < metas.length; i += READ_CONCURRENCY) {
      const chunk = metas.slice(i, i + READ_CONCURRENCY);
      const batch = chunk.map((k) => this.check(k, sizes ? (sizes.get(k.slice(0, -META_EXT.length)) ?? null) : undefined));
      (await Promise.all(batch)).forEach((r, j) => {
        if (r.backup) return void complete.push(r.backup);
        const metaKey = chunk[j];
        const key = metaKey.slice(0, -META_EXT.length);
        damaged.push({ id: r.meta?.id ?? idOf(metaKey), meta: r.meta ?? null, key, metaKey, path: this.pathOf(key), problem: r.problem ?? 'not a complete backup', ...(r.recheck ? { recheck: r.recheck } : {}) });
      });
    }
    // A dump whose metadata was never written: a running backup's for seconds, a lost one's after that.
    const named = new Set(metas.map((k) => k.slice(0, -META_EXT.length)));
    const cutoff = now.getTime() - ORPHAN_DUMP_AGE_MS;
    for (const key of keys.filter((k) => (k.endsWith(DUMP_EXT) || k.endsWith(DUMP_EXT + AGE_EXT)) && !named.has(k))) {
      const st = await this.store.stat(key);
      if (!st || st.mtime.getTime() > cutoff) continue;
      damaged.push({ id: idOf(key), meta: null, key, metaKey: key + META_EXT, path: this.pathOf(key), problem: `dump without metadata (last written ${st.mtime.toISOString()})` });
    }
    damaged.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    return { complete: complete.sort((a, b) => newestFirst(a.meta, b.meta)), damaged };
  }

  /** Find a complete backup of a target by id. */
  async find(project: string, environment: string, id: string): Promise<StoredBackup | undefined> {
    return (await this.inspect(project, environment, id)).backup ?? undefined;
  }

  /** Remove a backup: metadata first (it stops being a backup), then the dump. Idempotent. */
  async remove(b: Pick<StoredBackup, 'key' | 'metaKey'>): Promise<void> {
    await this.store.remove(b.metaKey);
    await this.store.remove(b.key);
  }

  /** What interrupted saves left under the target (store.abandoned: before `before`, or their writer gone). */
  abandoned(project: string, environment: string, before: Date): Promise<Abandoned[]> {
    return this.store.abandoned(`${this.targetKey(project, environment)}/`, before);
  }
  removeAbandoned(a: Abandoned): Promise<void> {
    return this.store.removeAbandoned(a);
  }
}

/**
 * The metadata beside a dump given by its path (`<file>.json`, as pgfleet writes it), checked as
 * list() checks it: null when there is none (a bare dump); else the backup, or null and why it is
 * not a complete one (unreadable, invalid, naming another file, a dump of another size). A hidden
 * file (`.name`, such as a temp file) is never a backup: it is answered as one that is not complete.
 */
export async function metadataBeside(file: string): Promise<Inspection | null> {
  const abs = path.resolve(file);
  const repo = new Repository(new LocalStore(path.dirname(abs)));
  const key = path.basename(abs) + META_EXT;
  if (!isKey(key)) return { backup: null, problem: 'a hidden file is never a backup' };
  if (!(await repo.store.stat(key))) return null;
  return repo.check(key);
}
