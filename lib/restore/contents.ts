/**
 * What a backup holds, for `show` and before a table restore: its metadata and its archive's
 * table of contents put side by side. A pure function: no I/O.
 */
import type { ArchiveToc } from '../postgres/archive.js';
import type { BackupMetadata } from '../formats/metadata.js';
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
  /** Tables and data left out at backup time (none: a full backup). */
  exclusions: { tables: string[]; table_data: string[] };
  schemas: {
    name: string;
    /** Each table: its recorded rows (null: not recorded, e.g. a partitioned parent, whose rows are its partitions') and whether its data is in the dump. */
    tables: { name: string; rows: number | null; data: boolean }[];
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
  const of = (ns: string) => schemas.get(ns) ?? (schemas.set(ns, { name: ns, tables: [], objects: {} }), schemas.get(ns)!);
  for (const e of toc.entries) {
    const kind = (e.desc ?? '?').toLowerCase();
    if (['encoding', 'stdstrings', 'searchpath', 'database', 'table data', 'sequence set', 'comment', 'acl', 'blobs'].includes(kind)) continue;
    if (e.namespace === null) {
      global[kind] = (global[kind] ?? 0) + 1;
      continue;
    }
    const s = of(e.namespace);
    if (kind === 'table') s.tables.push({ name: qualified(e), rows: meta.tables[qualified(e)] ?? null, data: withData.has(e.dumpId) });
    else s.objects[kind] = (s.objects[kind] ?? 0) + 1;
  }
  const excl = (meta as { exclusions?: { tables?: string[]; table_data?: string[] } }).exclusions;
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
    exclusions: { tables: excl?.tables ?? [], table_data: excl?.table_data ?? [] },
    schemas: [...schemas.values()].sort((a, b) => a.name.localeCompare(b.name)),
    global,
  };
}
