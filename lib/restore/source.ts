/**
 * Which dump a restore reads: a backup by id, the newest complete one (--latest), or a file by
 * its path; and a one-line description of it for plans. Reads the repository only.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import { humanSize } from '../core/text.js';
import { BACKUP_ID } from '../formats/metadata.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';

/** The backup (by id or --latest) or the file (by path) to restore. */
export async function resolveSource(ctx: Context, t: Target, o: { source?: string; latest?: boolean }): Promise<StoredBackup | { path: string }> {
  const where = `${t.project}/${t.environment}`;
  if (!!o.source === !!o.latest) throw new UsageError('name exactly one dump to restore: a backup id, a path, or --latest');
  if (o.latest) {
    const [b] = await ctx.repo.list(t.project, t.environment);
    if (!b) throw new PgfleetError(`${where}: no complete backup to restore`, EXIT.FAILED, t);
    return b;
  }
  const s = o.source!;
  if (BACKUP_ID.test(s)) {
    const b = await ctx.repo.find(t.project, t.environment, s);
    if (!b) throw new UsageError(`${where}: no complete backup ${s} (see pgfleet list ${t.project} ${t.environment}); a dump without complete metadata can only be restored by its path`);
    return b;
  }
  const file = path.resolve(s);
  if (!(await fs.stat(file).catch(() => null))?.isFile()) throw new UsageError(`${s}: neither a backup id of ${where} nor an existing file`);
  return { path: file };
}

export function describeSource(src: StoredBackup | { path: string }): string {
  if ('meta' in src) return `backup ${src.meta.id} (${src.meta.type}, ${src.meta.created_at}, ${humanSize(src.meta.size_bytes)}, ${src.meta.total_rows} rows in ${Object.keys(src.meta.tables).length} tables)`;
  return `file ${src.path}`;
}
