/**
 * Restoring a partial backup (metadata `partial`: database.backup.exclude_tables /
 * exclude_table_data at backup time). A whole-database restore of one would bring the database
 * back without the excluded tables or with them empty: refused (exit 2) unless the operator says
 * --allow-partial. A table restore of a table whose data was excluded would restore an empty
 * table: refused; a table restore of the other tables is a table restore like any other.
 */
import { UsageError, type TargetRef } from '../core/errors.js';
import { describePartial, partialOf, type BackupMetadata, type PartialInfo } from '../formats/metadata.js';
import { isRemoteDump } from '../offsite/fetch.js';
import { metadataBeside } from '../storage/repository.js';
import type { DumpSource } from './dump.js';

/** A source's metadata, when it has any (a bare path: `<path>.json` beside it; unreadable: none here, the restore's own check refuses it). */
async function metaOf(src: DumpSource): Promise<BackupMetadata | null> {
  if (isRemoteDump(src)) return src.meta;
  if ('meta' in src && src.meta) return src.meta;
  return (await metadataBeside(src.path).catch(() => null))?.backup?.meta ?? null;
}

/**
 * The source's exclusions when it is partial and allowed; null when it is a full backup. Throws a
 * UsageError naming the exclusions and --allow-partial when it is partial and not allowed.
 */
export async function partialGate(src: DumpSource, o: { allowPartial?: boolean; target: TargetRef; what: string }): Promise<PartialInfo | null> {
  const meta = await metaOf(src);
  const p = meta && partialOf(meta);
  if (!p) return null;
  if (!o.allowPartial)
    throw new UsageError(
      `${o.target.project}/${o.target.environment}: backup ${meta!.id} is partial (${describePartial(p)}): ${o.what} would bring the database back without those tables or with them empty; pass --allow-partial to do it anyway`,
    );
  return p;
}

/** A table restore's refusal: tables (as the dump's TOC names them) whose data the backup left out. */
export function refuseExcludedData(meta: BackupMetadata | null, tables: readonly string[], target: TargetRef): void {
  const p = meta && partialOf(meta);
  const empty = p ? tables.filter((t) => p.data_excluded.includes(t)) : [];
  if (empty.length)
    throw new UsageError(
      `${target.project}/${target.environment}: backup ${meta!.id} holds no rows of ${empty.join(', ')}: its data was excluded at backup time (exclude_table_data ${p!.exclude_table_data.join(', ')}); restore the other tables, or their data from another backup`,
    );
}
