/**
 * The backup repository: dumps, their metadata and deployment manifests (lib/storage/manifests.ts),
 * kept in a Store (lib/storage/store.ts) under these keys, which on the local store are the paths
 * under backup_root:
 *
 *   <project>/<environment>/database/db_<YYYYMMDD>_<HHMMSS>Z.dump.zst        the dump
 *   <project>/<environment>/database/db_<YYYYMMDD>_<HHMMSS>Z.dump.zst.json   its metadata
 *   <project>/<environment>/deployments/<release>.json                       manifests
 *
 * - A backup is complete only when its metadata exists, is valid, names its own dump, and that dump
 *   has the recorded size. Anything else is not listed, not restored, not counted by retention.
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

export interface StoredBackup {
  meta: BackupMetadata;
  /** The dump's file (the local store), or where it is (`<location>/<key>`). */
  path: string;
  metaPath: string;
  key: string;
  metaKey: string;
}

/** One backup's metadata, checked: the backup when it is complete, else null and why not. */
export interface Inspection {
  backup: StoredBackup | null;
  problem?: string;
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
      if (!names.has(id + DUMP_EXT) && !names.has(id + DUMP_EXT + META_EXT)) return id;
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

  /** Write (or replace) a backup's metadata atomically. Returns its path. Refuses metadata that fails its schema (a bug). */
  async saveMetadata(meta: BackupMetadata): Promise<string> {
    const problems = schemaProblems('backup-metadata', meta);
    if (problems.length) throw new InternalError(`metadata does not match its schema: ${problems.join('; ')}`);
    const key = this.dumpKey(meta.project, meta.environment, meta.id) + META_EXT;
    await this.store.save(key, JSON.stringify(meta, null, 2) + '\n');
    return this.pathOf(key);
  }

  /** The stored backup `meta` describes (its keys and paths), as saveMetadata() just wrote it. */
  stored(meta: BackupMetadata): StoredBackup {
    const { key, metaKey } = this.keysOf(meta.project, meta.environment, meta.id);
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
    if (size === null) return { backup: null, problem: 'dump file missing' };
    if (size !== meta.size_bytes) return { backup: null, problem: `dump is ${size} bytes, metadata says ${meta.size_bytes}` };
    return { backup: { meta, path: this.pathOf(key), metaPath: this.pathOf(metaKey), key, metaKey } };
  }

  /** One backup of a target by id, checked (see Inspection). */
  inspect(project: string, environment: string, id: string): Promise<Inspection> {
    return this.check(this.dumpKey(project, environment, id) + META_EXT);
  }

  /** check() of the metadata file at `metaPath` under the local store's root (else: not a backup of this repository). */
  async load(metaPath: string): Promise<Inspection> {
    const key = this.keyOf(metaPath);
    if (!key || !key.endsWith(DUMP_EXT + META_EXT)) return { backup: null, problem: `not a backup's metadata in ${this.root} (${metaPath})` };
    return this.check(key);
  }

  /**
   * Complete backups of one target, newest first: one listing, then each metadata read and
   * checked. With the store's keys() (local), only the dumps are stat-ed, as the metadata names them.
   */
  async list(project: string, environment: string): Promise<StoredBackup[]> {
    const prefix = this.databasePrefix(project, environment);
    const direct = (k: string) => !k.includes('/', prefix.length);
    let metas: string[];
    let sizes: Map<string, number> | undefined;
    if (this.store.keys) metas = (await this.store.keys(prefix)).filter((k) => direct(k) && k.endsWith(DUMP_EXT + META_EXT));
    else {
      const objects = (await this.store.list(prefix)).filter((o) => direct(o.key));
      sizes = new Map(objects.map((o) => [o.key, o.size]));
      metas = objects.filter((o) => o.key.endsWith(DUMP_EXT + META_EXT)).map((o) => o.key);
    }
    const out: StoredBackup[] = [];
    for (let i = 0; i < metas.length; i += READ_CONCURRENCY) {
      const batch = metas.slice(i, i + READ_CONCURRENCY).map((k) => this.check(k, sizes ? (sizes.get(k.slice(0, -META_EXT.length)) ?? null) : undefined));
      for (const r of await Promise.all(batch)) if (r.backup) out.push(r.backup);
    }
    return out.sort((a, b) => newestFirst(a.meta, b.meta));
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
