/**
 * A cluster's point-in-time recovery files in the Store (the repository's store: the local one at
 * backup_root, or a bucket), under `_clusters/<container>/` (the layout is lib/formats/pitr.ts's):
 * WAL in `wal/`, base backups in `base/`. Every object is saved atomically (Store.save); a WAL
 * file or a base backup counts only once its record or metadata, written last, exists and passes
 * its schema. Records that do not are returned as problems, never skipped silently.
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

  saveWal(name: string, data: Readable, o?: SaveOptions): Promise<SaveResult> {
    return this.store.save(this.walKey(name), data, o);
  }
  async saveWalRecord(r: WalRecord): Promise<void> {
    await this.store.save(this.walRecordKey(r.name), JSON.stringify(r, null, 2) + '\n');
  }
  saveBase(id: string, data: Readable, o?: SaveOptions): Promise<SaveResult> {
    return this.store.save(this.baseKey(id), data, o);
  }
  async saveBaseMeta(m: BaseBackupMetadata): Promise<void> {
    await this.store.save(this.baseMetaKey(m.id), JSON.stringify(m, null, 2) + '\n');
  }

  /** Every WAL record, by name. */
  walRecords(): Promise<Listed<WalRecord>> {
    return this.readAll(this.walPrefix, 'wal-record', (r: WalRecord, key) => (this.walRecordKey(r.name) === key ? null : `names ${r.name}, not its own file`));
  }

  /** Every base backup whose metadata is valid and whose tar has the recorded size, oldest first. */
  async baseBackups(): Promise<Listed<BaseBackupMetadata>> {
    const metas = await this.readAll(this.basePrefix, 'base-backup-metadata', (m: BaseBackupMetadata, key) => (this.baseMetaKey(m.id) === key ? null : `names ${m.id}, not its own file`));
    const items: BaseBackupMetadata[] = [];
    for (const m of metas.items) {
      const st = await this.store.stat(this.baseKey(m.id));
      if (!st) metas.problems.push(`${this.baseKey(m.id)}: missing (its metadata exists)`);
      else if (st.size !== m.size_bytes) metas.problems.push(`${this.baseKey(m.id)}: ${st.size} bytes, metadata says ${m.size_bytes}`);
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
