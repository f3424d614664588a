/**
 * A cluster's point-in-time recovery files in the Store (the repository's store: the local one at
 * backup_root, or a bucket), under `_clusters/<container>/` (the layout is lib/formats/pitr.ts's):
 * WAL in `wal/`, base backups in `base/`. Every object is saved atomically (Store.save); a WAL
 * file or a base backup counts only once its record or metadata, written last, exists and passes
 * its schema. Records that do not are returned as problems, never skipped silently. Over the
 * offsite bucket (lib/pitr/offsite.ts) the same class reads the copies: a record or metadata names
 * its object (`.age` after the local name when encrypted), and is that key + `.json`.
 */
import type { Readable } from 'node:stream';
import { schemaProblems } from '../core/schema-files.js';
import { BaseBackupMetadata, WalRecord } from '../formats/pitr.js';
import { backupStem } from '../storage/repository.js';
import { joinKey, type SaveOptions, type SaveResult, type Store } from '../storage/store.js';

export const CLUSTERS = '_clusters';
const JSON_EXT = '.json';

export interface Listed<T> {
  items: T[];
  /** Records or metadata that cannot be read or fail their schema, with why. */
  problems: string[];
}

export class ClusterArchive {
  constructor(
    readonly store: Store,
    readonly container: string,
  ) {}

  get prefix(): string {
    return joinKey(CLUSTERS, this.container);
  }
  get walPrefix(): string {
    return `${this.prefix}/wal/`;
  }
  get basePrefix(): string {
    return `${this.prefix}/base/`;
  }
  walKey(name: string): string {
    return joinKey(this.prefix, 'wal', `${name}.zst`);
  }
  walRecordKey(name: string): string {
    return this.walKey(name) + JSON_EXT;
  }
  baseKey(id: string): string {
    return joinKey(this.prefix, 'base', `${id}.tar.zst`);
  }
  baseMetaKey(id: string): string {
    return this.baseKey(id) + JSON_EXT;
  }
  /**
   * The object a record or metadata names (its `stored.file` / `file`): the local keys above, or
   * in the bucket `….age` when the copy is encrypted. Its record or metadata is this key + `.json`.
   */
  walStoredKey(r: Pick<WalRecord, 'stored'>): string {
    return joinKey(this.prefix, 'wal', r.stored.file);
  }
  baseStoredKey(m: Pick<BaseBackupMetadata, 'file'>): string {
    return joinKey(this.prefix, 'base', m.file);
  }

  saveWal(name: string, data: Readable, o?: SaveOptions): Promise<SaveResult> {
    return this.store.save(this.walKey(name), data, o);
  }
  async saveWalRecord(r: WalRecord): Promise<void> {
    await this.store.save(this.walStoredKey(r) + JSON_EXT, JSON.stringify(r, null, 2) + '\n');
  }
  saveBase(id: string, data: Readable, o?: SaveOptions): Promise<SaveResult> {
    return this.store.save(this.baseKey(id), data, o);
  }
  async saveBaseMeta(m: BaseBackupMetadata): Promise<void> {
    await this.store.save(this.baseStoredKey(m) + JSON_EXT, JSON.stringify(m, null, 2) + '\n');
  }

  /** Every WAL record, by name. */
  walRecords(): Promise<Listed<WalRecord>> {
    return this.readAll(this.walPrefix, 'wal-record', (r: WalRecord, key) => (this.walStoredKey(r) + JSON_EXT === key && [`${r.name}.zst`, `${r.name}.zst.age`].includes(r.stored.file) ? null : `names ${r.name}, not its own file`));
  }

  /** Every base backup whose metadata is valid and whose tar has the recorded size, oldest first. */
  async baseBackups(): Promise<Listed<BaseBackupMetadata>> {
    const metas = await this.readAll(this.basePrefix, 'base-backup-metadata', (m: BaseBackupMetadata, key) => (this.baseStoredKey(m) + JSON_EXT === key && m.file.startsWith(`${m.id}.`) ? null : `names ${m.id}, not its own file`));
    const items: BaseBackupMetadata[] = [];
    for (const m of metas.items) {
      const st = await this.store.stat(this.baseStoredKey(m));
      if (!st) metas.problems.push(`${this.baseStoredKey(m)}: missing (its metadata exists)`);
      else if (st.size !== m.size_bytes) metas.problems.push(`${this.baseStoredKey(m)}: ${st.size} bytes, metadata says ${m.size_bytes}`);
      else items.push(m);
    }
    return { items, problems: metas.problems };
  }

  /** A fresh base backup id for `at` (`base_<UTC second>`, _2… when taken). Call under the cluster lock. */
  async newBaseId(at: Date): Promise<string> {
    const keys = new Set((await this.store.list(this.basePrefix)).map((o) => o.key));
    const stem = 'base' + backupStem(at).slice(2);
    for (let n = 1; ; n++) {
      const id = n === 1 ? stem : `${stem}_${n}`;
      if (!keys.has(this.baseKey(id)) && !keys.has(this.baseMetaKey(id))) return id;
    }
  }

  private async readAll<T>(prefix: string, schema: string, own: (t: T, key: string) => string | null): Promise<Listed<T>> {
    const keys = this.store.keys ? await this.store.keys(prefix) : (await this.store.list(prefix)).map((o) => o.key);
    const items: T[] = [];
    const problems: string[] = [];
    for (const key of keys.filter((k) => k.endsWith(JSON_EXT))) {
      let data: unknown;
      try {
        data = JSON.parse((await this.store.read(key)).toString('utf8'));
      } catch (e) {
        problems.push(`${key}: unreadable (${(e as Error).message})`);
        continue;
      }
      const bad = schemaProblems(schema, data);
      const why = bad.length ? bad.join('; ') : own(data as T, key);
      if (why) problems.push(`${key}: ${why}`);
      else items.push(data as T);
    }
    return { items, problems };
  }
}
