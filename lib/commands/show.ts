/**
 * `pgfleet show <project> <env> <id> [--json]`: what a backup holds, before a table restore.
 *
 *   the backup by id → its archive's table of contents (read from the dump's first bytes; the
 *   checksum is not read: `verify-backups --checksums` does that) → metadata and TOC side by side
 *   → --json: one BackupContents object · else a summary and a table per schema
 *
 * Changes nothing.
 */
import { findTarget } from '../config/load.js';
import { UsageError } from '../core/errors.js';
import { humanSize, renderTable } from '../core/text.js';
import { describePartial } from '../formats/metadata.js';
import type { Context } from '../runtime/context.js';
import { backupContents, type BackupContents } from '../restore/contents.js';
import { describeDump } from '../restore/dump.js';
import { readToc } from '../restore/toc.js';

const counts = (o: Record<string, number>) => Object.entries(o).map(([k, n]) => `${n} ${k}`).join(', ') || 'none';

export async function runShow(ctx: Context, o: { project: string; environment: string; id: string; json?: boolean }): Promise<BackupContents> {
  const t = findTarget(ctx.config, o.project, o.environment);
  const ref = { project: t.project, environment: t.environment };
  const b = await ctx.repo.find(t.project, t.environment, o.id);
  if (!b) throw new UsageError(`${t.project}/${t.environment}: no complete backup ${o.id} (see pgfleet list ${t.project} ${t.environment})`);
  const c = backupContents(b.meta, await readToc(ctx, await describeDump(b, { target: ref }), { signal: ctx.signal, target: ref }));
  if (o.json) {
    ctx.out(JSON.stringify(c, null, 2));
    return c;
  }
  const v = c.verification;
  ctx.out(`backup ${c.id} of ${c.project}/${c.environment} (database ${c.database})`);
  ctx.out(`  type          ${c.type}${c.release ? ` (release ${c.release})` : ''}, created ${c.created_at}`);
  ctx.out(`  format        pg_dump ${c.format} (archive ${c.archive_version}), ${c.compression.algorithm}${c.compression.level ? ` level ${c.compression.level}` : ''}, ${c.encryption ? 'encrypted' : 'not encrypted'}, ${humanSize(c.size_bytes)}`);
  ctx.out(`  versions      pg_dump ${c.pg_dump_version}, server ${c.server_version}`);
  ctx.out(`  sha256        ${c.sha256}`);
  ctx.out(`  verification  ${v ? `${v.status} at ${v.verified_at} (${v.tables} tables, ${v.rows} rows)${v.error ? `: ${v.error}` : ''}` : 'never verified'}`);
  ctx.out(`  exclusions    ${c.exclusions ? `PARTIAL: ${describePartial(c.exclusions)}` : 'none (a full backup)'}`);
  ctx.out(`  other         ${counts(c.global)}`);
  for (const s of c.schemas) {
    ctx.out('');
    ctx.out(`schema ${s.name}: ${s.tables.length} tables; ${counts(s.objects)}`);
    if (s.tables.length) for (const l of renderTable(['table', 'rows at backup'], s.tables.map((x) => [x.name, x.data ? (x.rows === null ? '(partitioned: see its partitions)' : String(x.rows)) : x.data_excluded ? 'data excluded (exclude_table_data)' : x.rows === null ? 'no data in the dump' : String(x.rows)]), { indent: '  ' })) ctx.out(l);
  }
  return c;
}
