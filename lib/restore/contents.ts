/**
 * What a backup holds, for `show` and before a table restore: its metadata and its archive's
 * table of contents put side by side. A pure function: no I/O.
 */
import type { ArchiveToc } from '../postgres/archive.js';
import { partialOf, type BackupMetadata, type PartialInfo } from '../formats/metadata.js';
import { qualified } from './select.js';

export interface BackupContents {
  id: string;
  project: string;
  environment: string;
  database: string;
  type: string;
  release: string | null;
  created_at: string;
  format: string;
  archive_version: string;
  compression: BackupMetadata['compression'];
  encryption: BackupMetadata['encryption'];
  size_bytes: number;
  sha256: string;
  pg_dump_version: string;
  server_version: string;
  verification: BackupMetadata['verification'];
  /** Tables and data left out at backup time (metadata `partial`: the patterns and what they matched); null: a full backup. */
  exclusions: PartialInfo | null;
  schemas: {
    name: string;
    /** Each table: its recorded rows (null: not recorded, e.g. a partitioned parent, whose rows are its partitions') and whether its data is in the dump; data_excluded: left out by exclude_table_data. */
    tables: { name: string; rows: number | null; data: boolean; data_excluded?: true }[];
    /** Other objects by kind (view, sequence, function, index, …). */
    objects: Record<string, number>;
  }[];
  /** Objects outside any schema, by kind (schema, extension, large objects, …). */
  global: Record<string, number>;
}

export function backupContents(meta: BackupMetadata, toc: ArchiveToc): BackupContents {
  const withData = new Set(toc.entries.filter((e) => e.desc === 'TABLE DATA').flatMap((e) => e.deps));
  const schemas = new Map<string, BackupContents['schemas'][number]>();
  const global: Record<string, number> = {};
  const partial = partialOf(meta);
  const dataExcluded = new Set(partial?.data_excluded ?? []);
  const of = (ns: string) => schemas.get(ns) ?? (schemas.set(ns, { name: ns, tables: [], objects: {} }), schemas.get(ns)!);
  for (const e of toc.entries) {
    const kind = (e.desc ?? '?').toLowerCase();
    if (['encoding', 'stdstrings', 'searchpath', 'database', 'table data', 'sequence set', 'comment', 'acl', 'blobs'].includes(kind)) continue;
    if (e.namespace === null) {
      global[kind] = (global[kind] ?? 0) + 1;
      continue;
    }
    const s = of(e.namespace);
    if (kind === 'table') s.tables.push({ name: qualified(e), rows: meta.tables[qualified(e)] ?? null, data: withData.has(e.dumpId), ...(dataExcluded.has(qualified(e)) ? { data_excluded: true as const } : {}) });
    else s.objects[kind] = (s.objects[kind] ?? 0) + 1;
  }
  return {
    id: meta.id,
    project: meta.project,
    environment: meta.environment,
    database: meta.database,
    type: meta.type,
    release: meta.release,
    created_at: meta.created_at,
    format: meta.format,
    archive_version: toc.version,
    compression: meta.compression,
    encryption: meta.encryption,
    size_bytes: meta.size_bytes,
    sha256: meta.sha256,
    pg_dump_version: meta.pg_dump_version,
    server_version: meta.server_version,
    verification: meta.verification,
    exclusions: partial,
    schemas: [...schemas.values()].sort((a, b) => a.name.localeCompare(b.name)),
    global,
  };
}
