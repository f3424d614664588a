/**
 * `pgfleet restore <project> <env> (<id> | <path> | --latest) --table <schema.table> [--table …]
 *  [--schema <name>] [--as <schema>] [--into <db>] [--yes] [--dry-run] [--jobs N]`
 *
 *   which dump → the plan from its table of contents (printed: every object it would restore and
 *   every one it leaves out, and why; --dry-run also checks the file and stops here) → consent →
 *   under the target's lock, the table restore of lib/restore/tables.ts → the SQL to compare the
 *   restored tables with the live ones, and how to drop them
 *
 * By default the tables go BESIDE the live data, into a new schema of the live database (`--as`,
 * default restored_<stamp>); nothing live is touched. `--into` restores them into a new database.
 */
import { findTarget, type Target } from '../config/load.js';
import { isPgIdent, PG_IDENT } from '../config/names.js';
import { UsageError } from '../core/errors.js';
import { compactStamp, MAX_IDENT_BYTES } from '../postgres/dbadmin.js';
import { ident } from '../postgres/psql.js';
import { confirmOrExit, type ConfirmOptions } from '../runtime/confirm.js';
import type { Context } from '../runtime/context.js';
import { withLock } from '../storage/lock.js';
import { checkDumpFile, describeDump } from '../restore/dump.js';
import { describeEntry, parseQualified, qualified, type TablePlan } from '../restore/select.js';
import { refuseExcludedData } from '../restore/partial.js';
import { describeSource, resolveSource } from '../restore/source.js';
import { restoreTables, tablePlan, type TableRestoreResult } from '../restore/tables.js';

export interface RestoreTablesOptions {
  project: string;
  environment: string;
  source?: string;
  latest?: boolean;
  tables: string[];
  schemas: string[];
  as?: string;
  into?: string;
  yes?: boolean;
  dryRun?: boolean;
  jobs?: number;
  confirm?: Pick<ConfirmOptions, 'tty' | 'ask'>;
}

export interface RestoreTablesResult {
  dryRun: boolean;
  plan: TablePlan;
  restored?: TableRestoreResult;
}

/** The --as schema: one name, read as PostgreSQL reads it; restored_<stamp> when not given (beside only). */
function schemaName(ctx: Context, o: RestoreTablesOptions): string | undefined {
  if (o.as === undefined) return o.into ? undefined : `restored_${compactStamp(ctx.clock()).toLowerCase()}`;
  const q = parseQualified(o.as);
  if (q.schema !== null) throw new UsageError(`--as ${o.as}: one schema name, not a qualified name`);
  if (Buffer.byteLength(q.name) > MAX_IDENT_BYTES) throw new UsageError(`--as ${o.as}: longer than ${MAX_IDENT_BYTES} bytes`);
  if (q.name.startsWith('pg_')) throw new UsageError(`--as ${o.as}: names starting with pg_ are reserved for the system`);
  return q.name;
}

export async function runRestoreTables(ctx: Context, o: RestoreTablesOptions): Promise<RestoreTablesResult> {
  const t = findTarget(ctx.config, o.project, o.environment);
  const ref = { project: t.project, environment: t.environment };
  if (o.into !== undefined && !isPgIdent(o.into)) throw new UsageError(`--into ${JSON.stringify(o.into)}: not a valid database name (allowed: ${PG_IDENT.source})`);
  if (o.into === t.database) throw new UsageError(`--into ${o.into} is the live database; without --into the tables go beside its data, into a new schema`);
  const as = schemaName(ctx, o);
  const src = await resolveSource(ctx, t, o);
  const dump = await describeDump(src, { target: ref });
  const plan = await tablePlan(ctx, dump, o, ctx.signal);
  // A table whose data a partial backup left out would come back empty: refused (lib/restore/partial.ts).
  refuseExcludedData(dump.meta, plan.tables.map(qualified), ref);

  ctx.out(`table restore plan for ${t.project}/${t.environment}:`);
  ctx.out(`  from      ${describeSource(src)}`);
  ctx.out(o.into ? `  into      a new database ${o.into}${as ? `, tables moved into schema ${as}` : ', tables in their own schemas'}; the live database is not touched` : `  into      a new schema ${as} of the live database ${t.database}; nothing live is touched`);
  ctx.out(`  tables    ${plan.tables.map((e) => describeEntry(e).replace(/^table /, '')).join(', ')}`);
  ctx.out(`  objects   ${plan.entries.length}:`);
  for (const e of plan.entries) ctx.out(`    ${describeEntry(e)}`);
  if (o.into) ctx.out(`  and what the new database needs for them: ${plan.context.length} schemas, types, functions and the like`);
  for (const l of plan.leftOut) ctx.out(`  left out ${describeEntry(l.entry)}: ${l.reason}`);
  if (o.dryRun) {
    const c = await checkDumpFile(src, { signal: ctx.signal, target: ref });
    ctx.out(c.meta ? `  the dump matches its metadata (sha256 ${c.sha256.slice(0, 16)}…)` : `  WARNING: ${c.path} has no metadata; its content cannot be checked`);
  }
  const question = o.into ? `Restore ${plan.tables.length} tables into a new database ${o.into}?` : `Restore ${plan.tables.length} tables into a new schema ${as} of ${t.database}?`;
  if (!(await confirmOrExit(ctx, question, { yes: o.yes, dryRun: o.dryRun, ...o.confirm }))) {
    ctx.out('dry run: nothing changed');
    return { dryRun: true, plan };
  }

  const r = await withLock(ctx.repo.lockDir(t.project, t.environment), t, 'restore', () =>
    restoreTables(ctx, t, src, { tables: o.tables, schemas: o.schemas, as, into: o.into, jobs: o.jobs, plan, signal: ctx.signal }),
  );
  const rows = r.tables.reduce((a, x) => a + x.rows, 0);
  const checked = r.tables.filter((x) => x.recorded !== null).length;
  ctx.out(`restored ${r.tables.length} tables (${rows} rows) into ${r.schema ? `schema ${r.schema} of ` : ''}${r.database}${checked ? `; row counts match the backup for ${checked} of them` : ''} (${(r.durationMs / 1000).toFixed(1)} s)`);
  for (const x of r.tables) ctx.out(`  ${x.to}  ${x.rows} rows${x.recorded === null ? '' : ' (as recorded)'}`);
  hints(ctx, t, r);
  return { dryRun: false, plan, restored: r };
}

/** How to compare the restored tables with the live ones, and how to drop them. */
function hints(ctx: Context, t: Target, r: TableRestoreResult): void {
  const psql = t.container ? `${ctx.containers.commandText(['exec', '-it', t.container], t)} psql${t.user ? ` -U ${t.user}` : ''} -d ${r.database}` : `psql "$DATABASE_URL"`;
  if (r.schema && r.database === t.database) {
    const [first] = r.tables;
    ctx.out(`compare with the live tables (${psql}):`);
    for (const x of r.tables) ctx.out(`  SELECT (SELECT count(*) FROM ONLY ${x.from}) AS live, (SELECT count(*) FROM ONLY ${x.to}) AS restored;`);
    if (first) {
      ctx.out(`  -- rows at backup time that are no longer live (copy them back with INSERT INTO ${first.from} … when sure):`);
      ctx.out(`  SELECT * FROM ${first.to} EXCEPT SELECT * FROM ${first.from} LIMIT 20;`);
    }
    ctx.out(`drop the restored tables when done: DROP SCHEMA ${ident(r.schema)} CASCADE;`);
  } else ctx.out(`drop the database when done: DROP DATABASE ${ident(r.database)}; (connected to another database)`);
}
