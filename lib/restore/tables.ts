/**
 * A table restore (ARCHITECTURE.md "Table restore and partial backups"): the named tables with
 * what belongs to them (lib/restore/select.ts), restored BESIDE the live data into a new schema of
 * the live database, or into a new database (`into`). The caller holds the target's lock; nothing
 * here prompts or prints.
 *
 *   the plan from the dump's TOC → check the dump against its metadata, in the same read staging
 *   a thin archive: its head and only the chosen entries' data blocks (lib/restore/positions.ts
 *   ThinArchive; the whole file is still read and its sha256 checked), and meanwhile: the live
 *   database exists, the new schema's name is free → restore the chosen entries (pg_restore -L)
 *   into a scratch database (or the new database) → there, move the tables into the new schema
 *   (ALTER TABLE … SET SCHEMA carries their indexes, constraints, owned sequences, triggers,
 *   policies, comments and grants; every reference inside the database is by OID, so nothing is
 *   rewritten as text) → beside: create the schema in the live database, copy the moved schema
 *   into it (pg_dump -n | pg_restore -L, its CREATE SCHEMA left out) → count the rows against
 *   those recorded at backup time → drop the scratch database
 *
 * Beside, the rows are loaded once: the scratch database gets the tables without their rows (their
 * TABLE DATA entries left out), and the live database's new schema gets them straight from the
 * thin archive, between the copy's pre-data and the rest (sequence positions, indexes,
 * constraints, triggers, policies), as pg_restore orders a restore. For that the thin archive's
 * head aims those entries' COPY statements at the new schema (a TOC field pg_restore runs as
 * written, its form fixed by pg_dump: `COPY <schema>.<table> (<columns>) FROM stdin;`); a COPY
 * of another form (e.g. --load-via-partition-root) sends every row through the scratch copy.
 *
 * Why a scratch database: pg_restore cannot rename a schema, and rewriting schema-qualified SQL
 * as text is fragile (names inside function bodies, defaults, policies and strings).

 * Promises: nothing live is changed but the new schema (beside) or the new database (into); on
 * any failure or interrupt the schema or database this call created is dropped, the scratch
 * database too, and the staged dump removed. An existing schema or database is never used.
 */
import path from 'node:path';
import type { Target } from '../config/load.js';
import { EXIT, InterruptedError, PgfleetError, UsageError, VerificationError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { Steps } from '../core/steps.js';
import { Undo, withLeftovers } from '../core/undo.js';
import { createDatabase, dbProps, DUPLICATE_DATABASE, dropDatabase, scratchName, withMaintenanceSession } from '../postgres/dbadmin.js';
import { ident, literal, PsqlSession } from '../postgres/psql.js';
import type { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';
import { describeDump, type DumpFile } from './dump.js';
import { PATCH_THEN_RESTORE } from './into.js';
import { planTables, quoteIdent, restoreList, type TablePlan, type TableRequest } from './select.js';
import { NotThinnable } from './positions.js';
import { defaultJobs, openDump, openWhile, type OpenedDump } from './stage.js';
import { readToc } from './toc.js';

export interface TableRestoreOptions extends TableRequest {
  /** The new schema the tables go into (beside: required; into: optional, else they keep their schemas). */
  as?: string;
  /** A new database instead of the live one. */
  into?: string;
  jobs?: number;
  signal?: AbortSignal;
  onStep?: (step: string) => void;
}

export interface RestoredTable {
  /** Its name in the dump (quote_ident form, as in the metadata). */
  from: string;
  /** Its name now. */
  to: string;
  rows: number;
  /** Rows recorded at backup time; null: not recorded (a partitioned parent, a dump without metadata). */
  recorded: number | null;
}

export interface TableRestoreResult {
  database: string;
  schema: string | null;
  tables: RestoredTable[];
  plan: TablePlan;
  backupId: string | null;
  durationMs: number;
}

/** The dump's plan for a request, from its TOC (the file's checksum is not read here). */
export async function tablePlan(ctx: Context, d: DumpFile, req: TableRequest, signal?: AbortSignal): Promise<TablePlan> {
  return planTables((await readToc(ctx, d, { signal })).entries, req);
}

export async function restoreTables(ctx: Context, target: Target, src: StoredBackup | { path: string }, o: TableRestoreOptions): Promise<TableRestoreResult> {
  const signal = o.signal ?? ctx.signal;
  const log = targetLogger(ctx.logger, target);
  const ref = { project: target.project, environment: target.environment };
  const where = `${target.project}/${target.environment}`;
  const live = target.database;
  const sh = ctx.shellFor(target);
  const t0 = performance.now();
  // Each step a line on the terminal (✓/✗ and its duration) and a log record, as it is done.
  const steps = new Steps(log, ctx.term, { prefix: 'table restore', onStep: o.onStep });
  const step = (name: string) => {
    if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'SIGINT'));
    steps.step(name);
  };
  if (!o.into && !o.as) throw new UsageError('a table restore beside the live data needs the new schema name (--as)');

  step('plan from the dump\'s table of contents');
  const d = await describeDump(src, { target: ref });
  const plan = await tablePlan(ctx, d, o, signal);
  if (o.as) {
    const seen = new Map<string, string>();
    for (const t of plan.tables) {
      const other = seen.get(t.tag ?? '');
      if (other !== undefined) throw new UsageError(`--as ${o.as}: two tables named ${JSON.stringify(t.tag)} (in schemas ${JSON.stringify(other)} and ${JSON.stringify(t.namespace)}) cannot go into one schema; restore them one at a time`);
      seen.set(t.tag ?? '', t.namespace ?? '');
    }
  }

  const done = <T>(r: T) => (steps.done(), r);
  const failed = (e: unknown): never => {
    steps.fail();
    throw e;
  };
  return withMaintenanceSession(sh, async (admin) => {
    step('check the dump against its metadata');
    const asking = (async () => {
      if (target.container) await ctx.containers.requireRunning(target.container, ref);
      const props = await dbProps(sh, live, { signal, session: admin });
      if (!props) return { refusal: `${where}: database "${live}" does not exist (${sh.where})` };
      if (o.as && !o.into && (await schemaExists(sh, live, o.as, signal))) return { refusal: `${where}: schema ${ident(o.as)} already exists in ${live}; choose a new name with --as` };
      return { props };
    })();
    // Staged thin: the archive's head and the chosen entries' data blocks only (the whole file is
    // still read and checked); an archive whose structure is not recognised is staged whole.
    const jobs = Math.max(2, o.jobs ?? defaultJobs());
    // Beside, the chosen tables' rows load once, straight into the new schema of the live database
    // (their COPY retargeted in the thin archive's head); only their empty shells go through the scratch copy.
    const direct = !o.into && o.as ? retargeted(plan, o.as) : null;
    const opening = openDump(ctx, sh, src, { jobs, signal, only: new Set(plan.all.map((e) => e.dumpId)), retarget: direct?.retarget }).catch((e) => {
      if (!(e instanceof NotThinnable)) throw e;
      log.debug({ problem: e.message }, 'the archive cannot be staged thin: staging it whole');
      return openDump(ctx, sh, src, { jobs, signal });
    });
    const [dump, pre] = await openWhile(opening, asking, ref);
    if ('refusal' in pre) throw withLeftovers(new PgfleetError(pre.refusal!, EXIT.FAILED, ref), await dump.close(), ref);

    const undo = new Undo(log);
    const db = o.into ?? scratchName(live, ctx.clock());
    try {
      step(o.into ? `restore ${plan.tables.length} tables into a new database ${o.into}` : `restore ${plan.tables.length} tables into scratch database ${db}`);
      const keep = undo.push(`drop database ${db}`, () => dropDatabase(sh, db));
      const made = await createDatabase(sh, db, { owner: target.user, like: pre.props, signal, session: admin });
      if (!made.created) {
        keep();
        if (made.sqlstate === DUPLICATE_DATABASE) throw new PgfleetError(`${where}: database "${db}" already exists (${sh.where}); choose a new name`, EXIT.FAILED, ref);
        throw new PgfleetError(`${where}: could not create database "${db}" (${sh.where}): ${made.message} (SQLSTATE ${made.sqlstate})`, EXIT.FAILED, ref);
      }
      // Thin archive staged whole (NotThinnable): no retargeted head, the rows go the long way.
      const load = direct && dump.staged?.retargeted ? direct : null;
      if (!o.into) log.debug({ rows: load ? 'straight into the new schema' : 'through the scratch database' }, 'how the rows are loaded');
      await restoreListed(sh, dump, db, load ? plan.all.filter((e) => !load.retarget.has(e.dumpId)) : plan.all, o.jobs, signal);

      if (o.as) {
        step(`move the tables into schema ${o.as}`);
        await psqlIn(sh, db, [`CREATE SCHEMA ${ident(o.as)};`, ...plan.tables.map((t) => `ALTER TABLE ${ident(t.namespace ?? '')}.${ident(t.tag ?? '')} SET SCHEMA ${ident(o.as!)};`)].join('\n'), signal);
      }
      if (!o.into) {
        step(`copy schema ${o.as} into ${live}`);
        await psqlIn(sh, live, `CREATE SCHEMA ${ident(o.as!)};`, signal); // refused if it exists by now: then it is not ours
        undo.push(`drop schema ${o.as} of ${live}`, () => psqlIn(sh, live, `DROP SCHEMA IF EXISTS ${ident(o.as!)} CASCADE;`).then(() => undefined));
        await copySchema(sh, dump, db, live, o.as!, o.jobs, signal, load ? () => restoreListed(sh, dump, live, load.data, o.jobs, signal) : undefined);
      }

      step('count the rows against those recorded');
      const tables = await countRows(sh, o.into ?? live, plan, o.as ?? null, dump, signal);
      const wrong = tables.filter((t) => t.recorded !== null && t.recorded !== t.rows);
      if (wrong.length) throw new VerificationError(`${where}: the restored tables differ from backup ${dump.meta?.id}: ${wrong.map((t) => `${t.to} has ${t.rows} rows, ${t.recorded} recorded`).join('; ')}`, ref);
      if (!dump.meta) log.warn({ file: dump.path }, 'no metadata: the restored tables cannot be checked against recorded row counts');

      if (o.into) keep();
      else {
        undo.clear();
        await dropDatabase(sh, db, admin).catch((e) => log.warn({ err: (e as Error)?.message, database: db }, 'the scratch database could not be dropped'));
      }
      const left = await dump.close();
      if (left.length) log.warn({ left }, 'the staged copy of the dump could not be removed');
      const durationMs = Math.round(performance.now() - t0);
      log.info({ backup: dump.meta?.id ?? dump.path, database: o.into ?? live, schema: o.as ?? null, tables: tables.length, duration_ms: durationMs }, 'table restore complete');
      return { database: o.into ?? live, schema: o.as ?? null, tables, plan, backupId: dump.meta?.id ?? null, durationMs };
    } catch (e) {
      log.error({ err: (e as Error)?.message ?? String(e) }, 'table restore failed; rolling back');
      const left = await undo.run();
      throw withLeftovers(e, [...left, ...(await dump.close())], ref);
    }
  }).then(done, failed);
}

async function schemaExists(sh: TargetShell, database: string, schema: string, signal?: AbortSignal): Promise<boolean> {
  return (await psqlIn(sh, database, `SELECT count(*) FROM pg_namespace WHERE nspname = ${literal(schema)};`, signal)).trim() !== '0';
}

/** One SQL text in `database`, in one transaction. */
async function psqlIn(sh: TargetShell, database: string, sql: string, signal?: AbortSignal): Promise<string> {
  const r = await sh.run('psql', ['-X', '-q', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', '-1', ...sh.conn(database), '-f', '-'], { input: sql, signal, what: 'psql', role: 'admin' });
  return r.stdout;
}

/** Write `text` to `file` where pg_restore runs (0600). */
async function writeThere(sh: TargetShell, file: string, text: string, signal?: AbortSignal): Promise<void> {
  await sh.run('sh', ['-c', 'umask 077 && cat > "$1"', 'pgfleet-list', file], { input: text, signal, what: 'write the restore list', program: 'sh', role: 'setup' });
}

/** pg_restore of the listed entries of the staged archive into `database`, its data positions filled in first. */
async function restoreListed(sh: TargetShell, dump: OpenedDump, database: string, entries: TablePlan['entries'], jobs: number | undefined, signal?: AbortSignal): Promise<void> {
  const staged = dump.staged!;
  const list = path.posix.join(path.posix.dirname(staged.file), 'tables.list');
  await writeThere(sh, list, restoreList(entries), signal);
  const args = ['-j', String(jobs ?? defaultJobs()), '--exit-on-error', '-w', '-L', list, ...sh.conn(database)];
  const patch = await staged.tocPatch;
  if (patch) await sh.run('sh', ['-c', PATCH_THEN_RESTORE, 'pgfleet-restore', staged.file, ...args, staged.file], { input: patch, signal, what: 'pg_restore', program: 'pg_restore', role: 'restore' });
  else await sh.run('pg_restore', [...args, staged.file], { signal, what: 'pg_restore', role: 'restore' });
}

/**
 * The chosen tables' TABLE DATA entries, each with its COPY statement aimed at schema `as`: the
 * statement pg_dump wrote (`COPY <schema>.<table> (<columns>) FROM stdin;`) with its schema
 * replaced. Null when one is not written as expected (e.g. a dump made with
 * --load-via-partition-root): then every row goes through the scratch copy.
 */
export function retargeted(plan: TablePlan, as: string): { data: TablePlan['all']; retarget: Map<number, { namespace: string; copyStmt: string }> } | null {
  const tables = new Set(plan.tables.map((t) => `${t.namespace}\0${t.tag}`));
  const data = plan.all.filter((e) => e.desc === 'TABLE DATA' && tables.has(`${e.namespace}\0${e.tag}`));
  const retarget = new Map<number, { namespace: string; copyStmt: string }>();
  const forms = (s: string) => [...new Set([quoteIdent(s), ident(s)])];
  for (const e of data) {
    const c = e.copyStmt ?? '';
    const head = forms(e.namespace ?? '').flatMap((n) => forms(e.tag ?? '').map((t) => ({ n, t }))).find(({ n, t }) => c.startsWith(`COPY ${n}.${t} (`) || c.startsWith(`COPY ${n}.${t} FROM stdin;`));
    if (!head || !c.endsWith(' FROM stdin;\n')) return null;
    retarget.set(e.dumpId, { namespace: as, copyStmt: `COPY ${ident(as)}.${head.t}${c.slice(`COPY ${head.n}.${head.t}`.length)}` });
  }
  return { data, retarget };
}

/**
 * Schema `schema` of `from` into the same-named schema of `to`, which the caller created: pg_dump
 * of that schema only, then pg_restore of all of it but its CREATE SCHEMA. With `loadData`, the
 * tables' rows come from it instead: run between the pre-data (tables, types, sequences) and the
 * rest (sequence positions, then indexes, constraints, triggers, policies), as pg_restore orders them.
 */
async function copySchema(sh: TargetShell, dump: OpenedDump, from: string, to: string, schema: string, jobs: number | undefined, signal?: AbortSignal, loadData?: () => Promise<void>): Promise<void> {
  const dir = path.posix.dirname(dump.staged!.file);
  const moved = `${dir}/moved.dump`;
  await sh.run('pg_dump', ['-Fc', '-Z', '0', '-w', '-n', schema, '-f', moved, ...sh.conn(from)], { signal, what: 'pg_dump (the restored tables)', role: 'dump' });
  const listed = (await sh.run('pg_restore', ['-l', moved], { signal, what: 'pg_restore -l', role: 'restore' })).stdout;
  // Lines are `id; tableoid oid DESC namespace tag owner`; the schema's own entry has namespace "-".
  const list = listed.split('\n').filter((l) => l.trim() && !l.startsWith(';') && !/^\d+; \d+ \d+ SCHEMA - /.test(l) && !(loadData && /^\d+; \d+ \d+ TABLE DATA /.test(l)));
  await writeThere(sh, `${dir}/moved.list`, list.join('\n') + '\n', signal);
  const restore = (sections: string[]) =>
    sh.run('pg_restore', ['-j', String(jobs ?? defaultJobs()), '--exit-on-error', '-w', ...sections.map((x) => `--section=${x}`), '-L', `${dir}/moved.list`, ...sh.conn(to), moved], { signal, what: 'pg_restore (into the new schema)', role: 'restore' });
  if (!loadData) return void (await restore([]));
  await restore(['pre-data']);
  await loadData();
  await restore(['data', 'post-data']);
}

/** Each restored table's rows, and those its metadata recorded (by its name in the dump). */
async function countRows(sh: TargetShell, database: string, plan: TablePlan, schema: string | null, dump: OpenedDump, signal?: AbortSignal): Promise<RestoredTable[]> {
  const parts = plan.tables.map((t) => {
    const now = `${ident(schema ?? t.namespace ?? '')}.${ident(t.tag ?? '')}`;
    return `SELECT quote_ident(${literal(t.namespace ?? '')}) || '.' || quote_ident(${literal(t.tag ?? '')}) AS f, quote_ident(${literal(schema ?? t.namespace ?? '')}) || '.' || quote_ident(${literal(t.tag ?? '')}) AS t,
      (SELECT count(*) FROM ONLY ${now}) AS n, (SELECT relkind FROM pg_class WHERE oid = ${literal(now)}::regclass) AS k`;
  });
  const s = PsqlSession.open(sh, database, signal);
  try {
    const out = await s.query(`SELECT json_agg(json_build_array(f, t, n, k)) FROM (${parts.join(' UNION ALL ')}) x`, signal);
    const rows = JSON.parse(out.trim().split('\n').pop() ?? '[]') as [string, string, number, string][];
    return rows.map(([from, to, n, kind]) => ({ from, to, rows: Number(n), recorded: kind === 'r' && dump.meta ? (dump.meta.tables[from] ?? null) : null }));
  } finally {
    await s.close().catch(() => s.kill());
  }
}
