/**
 * The backup repository: where dumps and their metadata live, one small interface with strong
 * promises (local filesystem today; object storage would implement the same).
 *
 *   <root>/<project>/<environment>/database/db_<YYYYMMDD>_<HHMMSS>Z.dump.zst        the dump
 *   <root>/<project>/<environment>/database/db_<YYYYMMDD>_<HHMMSS>Z.dump.zst.json   its metadata
 *   <root>/<project>/<environment>/deployments/<release>.json                       manifests
 *
 * - A backup is complete only when its metadata exists, is valid, and its dump has the recorded
 *   size. Anything else is not listed, not restored, not counted by retention.
 * - save/update are atomic; remove deletes the metadata first, so a half-removed backup is never
 *   taken for a whole one.
 */
import { promises as fs, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { InternalError } from '../core/errors.js';
import { ensureDir, writeFileAtomic, TEMP_PREFIX } from '../core/fsutil.js';
import { newestFirst, type BackupMetadata } from '../formats/metadata.js';
import { schemaProblems } from '../core/schema-files.js';

export const DUMP_EXT = '.dump.zst';
export const META_EXT = '.json';

export interface StoredBackup {
  meta: BackupMetadata;
  /** Absolute path of the dump. */
  path: string;
  metaPath: string;
}

/** db_YYYYMMDD_HHMMSSZ for a time, in UTC. */
export function backupStem(at: Date): string {
  const iso = at.toISOString(); // 2025-01-06T02:00:00.000Z
  return `db_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

export class Repository {
  constructor(readonly root: string) {}

  targetDir(project: string, environment: string): string {
    return path.join(this.root, project, environment);
  }
  databaseDir(project: string, environment: string): string {
    return path.join(this.targetDir(project, environment), 'database');
  }
  deploymentsDir(project: string, environment: string): string {
    return path.join(this.targetDir(project, environment), 'deployments');
  }

  /**
   * A fresh backup id for `at`: the UTC second, with _2, _3… when that second is taken. Call with
   * the target's lock held, so no other run picks the same name.
   */
  async newId(project: string, environment: string, at: Date): Promise<string> {
    const dir = this.databaseDir(project, environment);
    await ensureDir(dir);
    const names = new Set(await fs.readdir(dir));
    const stem = backupStem(at);
    for (let n = 1; ; n++) {
      const id = n === 1 ? stem : `${stem}_${n}`;
      if (!names.has(id + DUMP_EXT) && !names.has(id + DUMP_EXT + META_EXT)) return id;
    }
  }

  dumpPath(project: string, environment: string, id: string): string {
    return path.join(this.databaseDir(project, environment), id + DUMP_EXT);
  }

  /** Write (or replace) a backup's metadata atomically. */
  async saveMetadata(meta: BackupMetadata): Promise<string> {
    const problems = schemaProblems('backup-metadata', meta);
    if (problems.length) throw new InternalError(`metadata does not match its schema: ${problems.join('; ')}`);
    const file = this.dumpPath(meta.project, meta.environment, meta.id) + META_EXT;
    await writeFileAtomic(file, JSON.stringify(meta, null, 2) + '\n');
    return file;
  }

  /**
   * Read and check one backup's metadata. Returns null (with the reason) when it is not a
   * complete backup: unreadable, invalid, or its dump missing or of another size.
   */
  async load(metaPath: string): Promise<{ backup: StoredBackup | null; problem?: string }> {
    return this.loadSync(metaPath);
  }

  /**
   * load(), synchronously: for thousands of small files, plain reads are several times faster than
   * as many promises (list over 10,000 backups answers well under a second).
   */
  private loadSync(metaPath: string): { backup: StoredBackup | null; problem?: string } {
    let meta: BackupMetadata;
    try {
      meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    } catch (e) {
      return { backup: null, problem: `unreadable metadata: ${(e as Error).message}` };
    }
    const problems = schemaProblems('backup-metadata', meta);
    if (problems.length) return { backup: null, problem: `invalid metadata: ${problems.slice(0, 3).join('; ')}` };
    const dump = path.join(path.dirname(metaPath), meta.file);
    if (dump + META_EXT !== metaPath) return { backup: null, problem: `metadata names another file (${meta.file})` };
    const st = statSync(dump, { throwIfNoEntry: false });
    if (!st) return { backup: null, problem: 'dump file missing' };
    if (st.size !== meta.size_bytes) return { backup: null, problem: `dump is ${st.size} bytes, metadata says ${meta.size_bytes}` };
    return { backup: { meta, path: dump, metaPath } };
  }

  /** Complete backups of one target, newest first. */
  async list(project: string, environment: string): Promise<StoredBackup[]> {
    const dir = this.databaseDir(project, environment);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const metas = names.filter((n) => n.endsWith(DUMP_EXT + META_EXT) && !n.startsWith(TEMP_PREFIX));
    const out = metas.flatMap((n) => this.loadSync(path.join(dir, n)).backup ?? []);
    return out.sort((a, b) => newestFirst(a.meta, b.meta));
  }

  /** Find a backup of a target by id. */
  async find(project: string, environment: string, id: string): Promise<StoredBackup | undefined> {
    const metaPath = this.dumpPath(project, environment, id) + META_EXT;
    const { backup } = await this.load(metaPath);
    return backup ?? undefined;
  }

  /** Remove a backup: metadata first (it stops being a backup), then the dump. Idempotent. */
  async remove(b: StoredBackup): Promise<void> {
    await fs.rm(b.metaPath, { force: true });
    await fs.rm(b.path, { force: true });
  }
}
