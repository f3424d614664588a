/**
 * A table restore (ARCHITECTURE.md "Table restore and partial backups"): the named tables with
 * what belongs to them (lib/restore/select.ts), restored BESIDE the live data into a new schema of
 * the live database, or into a new database (`into`). The caller holds the target's lock; nothing
 * here prompts or prints.
 *
 *   the plan from the dump's TOC → check the dump against its metadata, in the same read staging
 *   a thin archive: its head and only the chosen entries' data blocks (lib/restore/positions.ts
 *   ThinArchive; the whole file is still read and its sha256 checked), and meanwhile: the live
 *   database exists, the new schema's name is free → create the scratch database (or the new
 *   database) and, beside, the new schema in the live database → where pg_restore runs, in one
 *   script (TABLE_RESTORE_SH): restore the chosen entries (pg_restore -L) into the scratch (or
 *   new) database, move the tables into the new schema there (ALTER TABLE … SET SCHEMA carries
 *   their indexes, constraints, owned sequences, triggers, policies, comments and grants; every
 *   reference inside the database is by OID, so nothing is rewritten as text), beside: copy the
 *   moved schema into the live one (pg_dump -n | pg_restore -L, its CREATE SCHEMA left out),
 *   remove the staged archive → count the rows against those recorded at backup time → drop the
 *   scratch database
 *
 * Straight, without a scratch database, where every chosen entry is of a form pg_dump writes with
 * the table's name at a fixed head and nothing else of its schema (renamed(): a table with its
 * rows, keys, indexes, comments and grants, e.g. pgbench's): the thin archive's head aims those
 * entries at the new schema and one pg_restore -L restores them into it.
 *
 * Every SQL step goes through one psql session on the live database, connected while the dump is
 * staged (for --into it moves to the new database to count); the container's work is one `exec`
 * of that script. A table restore thus makes three container calls: the session, the staging, the
 * script (test/integration/table-restore.test.ts counts them).
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
 * as text is fragile (names inside function bodies, defaults, policies and strings); the straight
 * way rewrites only a statement's fixed head, and only where nothing else in it names the schema.

 * Promises: nothing live is changed but the new schema (beside) or the new database (into); on
 * any failure or interrupt the schema or database this call created is dropped, the scratch
 * database too, and the staged dump removed. An existing schema or database is never used.
 */
import path from 'node:path';
import type { Target } from '../config/load.js';
import { CommandError, EXIT, InterruptedError, PgfleetError, UsageError, VerificationError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { Steps } from '../core/steps.js';
import { Undo, withLeftovers } from '../core/undo.js';
import { createDatabase, dbProps, DUPLICATE_DATABASE, dropDatabase, scratchName, type DbProps } from '../postgres/dbadmin.js';
import type { EntryChange } from '../postgres/archive.js';
import { ident, literal, PsqlSession } from '../postgres/psql.js';
import type { TargetShell } from '../process/container.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';
import { describeDump, type DumpFile } from './dump.js';
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
  /** The plan the caller made from this dump's TOC (tablePlan), so that it is not read twice. */
  plan?: TablePlan;
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
  const plan = o.plan ?? (await tablePlan(ctx, d, o, signal));
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
  // One psql session on the live database, connected while the dump is staged, does every SQL step
  // here: the checks, CREATE DATABASE and CREATE SCHEMA, the row counts, the scratch database's DROP.
  const session = PsqlSession.open(sh, live);
  /** The session, while it is not connected to `db` (--into's count moves it there). */
  let sessionIn = live;
  const onLive = (sql: string) => session.query(sql).catch(() => psqlIn(sh, live, sql)); // the session gone: a psql of its own
  return (async () => {
    step('check the dump against its metadata');
    const asking = preflight(ctx, sh, session, live, !o.into ? o.as : undefined, where, signal);
    // Staged thin: the archive's head and the chosen entries' data blocks only (the whole file is
    // still read and checked); an archive whose structure is not recognised is staged whole.
    const jobs = Math.max(2, o.jobs ?? defaultJobs());
    // Beside, the chosen tables' rows load once, straight into the new schema of the live database
    // (their COPY retargeted in the thin archive's head); only their empty shells go through the scratch copy.
    const direct = !o.into && o.as ? retargeted(plan, o.as) : null;
    // Where the thin archive's head can aim every chosen entry at the new schema, they restore
    // straight into it: no scratch database at all (renamed: only statement forms known to be safe).
    const straight = direct && renamed(plan, o.as!, direct.retarget);
    const opening = openDump(ctx, sh, src, { jobs, signal, only: new Set(plan.all.map((e) => e.dumpId)), retarget: straight ?? direct?.retarget }).catch((e) => {
      if (!(e instanceof NotThinnable)) throw e;
      log.debug({ problem: e.message }, 'the archive cannot be staged thin: staging it whole');
      return openDump(ctx, sh, src, { jobs, signal });
    });
    const [dump, pre] = await openWhile(opening, asking, ref);
    if ('refusal' in pre) throw withLeftovers(new PgfleetError(pre.refusal!, EXIT.FAILED, ref), await dump.close(), ref);

    const undo = new Undo(log);
    // Thin archive staged whole (NotThinnable): no retargeted head, the rows go the long way.
    const alone = straight && dump.staged?.retargeted ? straight : null;
    const load = direct && dump.staged?.retargeted ? direct : null;
    if (!o.into) log.debug({ way: alone ? 'straight into the new schema, no scratch database' : load ? 'the rows straight into the new schema, the rest through the scratch database' : 'through the scratch database' }, 'how the tables are restored');
    /** The database created for this restore (--into's, or the scratch copy); null: none, straight into the live one. */
    const db = o.into ?? (alone ? null : scratchName(live, ctx.clock()));
    try {
      step(o.into ? `restore ${plan.tables.length} tables into a new database ${o.into}` : db ? `restore ${plan.tables.length} tables into scratch database ${db}` : `restore ${plan.tables.length} tables into schema ${o.as} of ${live}`);
      const keep = db ? undo.push(`drop database ${db}`, () => dropDatabase(sh, db, sessionIn === db ? undefined : session)) : () => undefined;
      const made = db ? await createDatabase(sh, db, { owner: target.user, like: pre.props, signal, session }) : null;
      if (made && !made.created) {
        keep();
        if (made.sqlstate === DUPLICATE_DATABASE) throw new PgfleetError(`${where}: database "${db}" already exists (${sh.where}); choose a new name`, EXIT.FAILED, ref);
        throw new PgfleetError(`${where}: could not create database "${db}" (${sh.where}): ${made.message} (SQLSTATE ${made.sqlstate})`, EXIT.FAILED, ref);
      }
      if (!o.into) {
        await session.query(`CREATE SCHEMA ${ident(o.as!)}`, signal); // refused if it exists by now: then it is not ours
        undo.push(`drop schema ${o.as} of ${live}`, () => onLive(`DROP SCHEMA IF EXISTS ${ident(o.as!)} CASCADE`).then(() => undefined));
      }
      const jobsThere = o.jobs ?? defaultJobs();
      await runInContainer(sh, dump, {
        work: db ?? live,
        // Straight: the chosen entries only (their schemas, types and functions are the live database's).
        workEntries: alone ? plan.entries : load ? plan.all.filter((e) => !load.retarget.has(e.dumpId)) : plan.all,
        // Without rows (they load straight into the new schema), the scratch restore has nothing to share
        // out; straight, no more jobs than tables' rows or indexes to share (a worker costs a connection).
        workJobs: alone ? Math.max(1, Math.min(jobsThere, Math.max(...['TABLE DATA', 'INDEX', 'CONSTRAINT'].map((k) => plan.entries.filter((e) => e.desc === k).length)))) : load ? 1 : jobsThere,
        move: o.as && !alone ? [`CREATE SCHEMA ${ident(o.as)};`, ...plan.tables.map((t) => `ALTER TABLE ${ident(t.namespace ?? '')}.${ident(t.tag ?? '')} SET SCHEMA ${ident(o.as!)};`)].join('\n') : null,
        copy: o.into || alone ? null : { live, schema: o.as!, data: load?.data ?? null, jobs: jobsThere },
        signal,
        onStep: (key) => steps.step(STEP_NAMES(o.as ?? '', live)[key]),
      });
      dump.removedThere();

      step('count the rows against those recorded');
      if (o.into) {
        await session.connect(o.into, signal);
        sessionIn = o.into;
      }
      const tables = await countRows(session, plan, o.as ?? null, dump, signal);
      const wrong = tables.filter((t) => t.recorded !== null && t.recorded !== t.rows);
      if (wrong.length) throw new VerificationError(`${where}: the restored tables differ from backup ${dump.meta?.id}: ${wrong.map((t) => `${t.to} has ${t.rows} rows, ${t.recorded} recorded`).join('; ')}`, ref);
      if (!dump.meta) log.warn({ file: dump.path }, 'no metadata: the restored tables cannot be checked against recorded row counts');

      if (o.into) keep();
      else {
        undo.clear();
        if (db) await dropDatabase(sh, db, session).catch((e) => log.warn({ err: (e as Error)?.message, database: db }, 'the scratch database could not be dropped'));
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
  })()
    .finally(() => session.close().catch(() => session.kill()))
    .then(done, failed);
}

/**
 * Before anything is touched, on the session: the live database exists (its properties, for the
 * scratch database), and the new schema's name is free. Should the session not connect, the
 * refusal says why: the container is not running, or the database does not exist.
 */
async function preflight(ctx: Context, sh: TargetShell, session: PsqlSession, live: string, schema: string | undefined, where: string, signal?: AbortSignal): Promise<{ props: DbProps } | { refusal: string }> {
  let props: DbProps | null;
  try {
    props = await dbProps(sh, live, { signal, session });
  } catch (e) {
    if (e instanceof InterruptedError || (e instanceof PgfleetError && !(e instanceof CommandError))) throw e;
    if (sh.container) await ctx.containers.requireRunning(sh.container, sh.ref);
    if (await dbProps(sh, live, { signal })) throw e;
    props = null;
  }
  if (!props) return { refusal: `${where}: database "${live}" does not exist (${sh.where})` };
  if (schema !== undefined && (await session.query(`SELECT count(*) FROM pg_namespace WHERE nspname = ${literal(schema)}`, signal)).trim() !== '0')
    return { refusal: `${where}: schema ${ident(schema)} already exists in ${live}; choose a new name with --as` };
  return { props };
}

/** One SQL text in `database`, in one transaction. */
async function psqlIn(sh: TargetShell, database: string, sql: string, signal?: AbortSignal): Promise<string> {
  const r = await sh.run('psql', ['-X', '-q', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', '-1', ...sh.conn(database), '-f', '-'], { input: sql, signal, what: 'psql', role: 'admin' });
  return r.stdout;
}

/**
 * The chosen tables' TABLE DATA entries, each with its COPY statement aimed at schema `as`: the
 * statement pg_dump wrote (`COPY <schema>.<table> (<columns>) FROM stdin;`) with its schema
 * replaced. Null when one is not written as expected (e.g. a dump made with
 * --load-via-partition-root): then every row goes through the scratch copy.
 */
export function retargeted(plan: TablePlan, as: string): { data: TablePlan['all']; retarget: Map<number, EntryChange> } | null {
  const tables = new Set(plan.tables.map((t) => `${t.namespace}\0${t.tag}`));
  const data = plan.all.filter((e) => e.desc === 'TABLE DATA' && tables.has(`${e.namespace}\0${e.tag}`));
  const retarget = new Map<number, EntryChange>();
  for (const e of data) {
    const c = e.copyStmt ?? '';
    const head = forms(e.namespace ?? '').flatMap((n) => forms(e.tag ?? '').map((t) => ({ n, t }))).find(({ n, t }) => c.startsWith(`COPY ${n}.${t} (`) || c.startsWith(`COPY ${n}.${t} FROM stdin;`));
    if (!head || !c.endsWith(' FROM stdin;\n')) return null;
    retarget.set(e.dumpId, { namespace: as, copyStmt: `COPY ${ident(as)}.${head.t}${c.slice(`COPY ${head.n}.${head.t}`.length)}` });
  }
  return { data, retarget };
}

/** A name as pg_dump may write it: quoted only where needed (as fmtId, keywords aside), or always. */
const forms = (s: string) => [...new Set([quoteIdent(s), ident(s)])];

/**
 * Where pg_dump writes a table's qualified name ({q}) at the head of an entry's statement, by entry
 * type ({i}: an index's own name, its tag). An ACL's every line is `GRANT|REVOKE … ON TABLE {q} TO|FROM …`.
 */
const HEADS: Record<string, string[]> = {
  TABLE: ['CREATE TABLE {q} (', 'CREATE UNLOGGED TABLE {q} ('],
  CONSTRAINT: ['ALTER TABLE ONLY {q}\n    ADD CONSTRAINT '],
  'CHECK CONSTRAINT': ['ALTER TABLE ONLY {q}\n    ADD CONSTRAINT '],
  INDEX: ['CREATE INDEX {i} ON {q} USING ', 'CREATE UNIQUE INDEX {i} ON {q} USING '],
  'ROW SECURITY': ['ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;'],
  COMMENT: ['COMMENT ON TABLE {q} IS ', 'COMMENT ON COLUMN {q}.'],
};

/**
 * Beside the live data without a scratch database: every chosen entry restored straight from the
 * thin archive into the new schema `as`, its namespace set to it (pg_restore's search_path and
 * OWNER statements follow it) and the table's name in its statement's head (HEADS) aimed there;
 * the rows' COPY as `copies` (retargeted). Only where that is all the statement says of the
 * schema: once the head is rewritten, a definition that still names a schema of the chosen tables
 * anywhere (a sequence, a default, a type, a trigger's function, a partition, a foreign key, even
 * a comment's text) or an entry of another type (sequences, defaults, triggers, policies, …) gives
 * null, and the scratch database's way, which moves the tables by OID, is taken. Nothing is
 * guessed: a statement of a form not listed is never rewritten.
 */
export function renamed(plan: TablePlan, as: string, copies: Map<number, EntryChange>): Map<number, EntryChange> | null {
  const to = ident(as);
  const names = plan.tables.flatMap((t) => forms(t.namespace ?? '').flatMap((n) => forms(t.tag ?? '').map((tag) => ({ from: `${n}.${tag}`, to: `${to}.${tag}` }))));
  const schemas = [...new Set(plan.tables.flatMap((t) => forms(t.namespace ?? '')))];
  const fill = (head: string, q: string, i: string) => head.split('{q}').join(q).split('{i}').join(i);
  /** `text` with a head of `heads` at its start aimed at the new schema, or null. */
  const atHead = (text: string, heads: string[], index: string) => {
    for (const head of heads)
      for (const i of forms(index))
        for (const q of names) {
          const from = fill(head, q.from, i);
          if (text.startsWith(from)) return fill(head, q.to, i) + text.slice(from.length);
        }
    return null;
  };
  const acl = (text: string) => {
    const lines = text.split('\n');
    if (lines.pop() !== '' || !lines.length) return null;
    const out = lines.map((l) => {
      const m = /^((?:GRANT|REVOKE) .* ON TABLE )(.*)$/.exec(l);
      const rest = m && atHead(m[2], ['{q} '], '');
      return rest === null || !m ? null : m[1] + rest;
    });
    return out.every((l) => l !== null) ? `${out.join('\n')}\n` : null;
  };
  const changes = new Map<number, EntryChange>();
  for (const e of plan.entries) {
    if (!e.namespace) return null;
    const defn = e.defn ?? '';
    const out = e.desc === 'TABLE DATA' ? (copies.has(e.dumpId) && defn === '' ? '' : null) : e.desc === 'ACL' ? acl(defn) : atHead(defn, HEADS[e.desc ?? ''] ?? [], e.tag ?? '');
    if (out === null || schemas.some((n) => out.includes(`${n}.`))) return null;
    changes.set(e.dumpId, { namespace: as, ...(out !== '' && { defn: out }), ...(e.desc === 'TABLE DATA' && { copyStmt: copies.get(e.dumpId)!.copyStmt }) });
  }
  return changes;
}

/** The steps TABLE_RESTORE_SH announces on its stdout (`step <key>`), as the terminal and the log name them. */
const STEP_NAMES = (schema: string, live: string) => ({
  move: `move the tables into schema ${schema}`,
  copy: `copy schema ${schema} into ${live}`,
  load: `load the rows into schema ${schema} of ${live}`,
  rest: `sequence positions, indexes, constraints, triggers and grants of schema ${schema}`,
});

/**
 * Shell that writes the small files at the start of its stdin into "$dir" (`bundled()` each, then a
 * line `.`) and reads not a byte further: `read` takes a pipe's bytes one at a time, so what follows
 * (the archive's head, binary) is left for the next program. Input cut short is an error.
 */
export const READ_FILES_SH = `cut_short() { echo 'pgfleet: the restore lists reached the container cut short' >&2; exit 1; }
while :; do
  IFS=' ' read -r name n || cut_short
  [ "$name" = . ] && break
  while [ "$n" -gt 0 ]; do IFS= read -r l || cut_short; printf '%s\\n' "$l"; n=$((n - 1)); done > "$dir/$name"
done`;

/** A file for READ_FILES_SH: its name, its line count, its lines. */
export function bundled(name: string, text: string): string {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return `${name} ${lines.length}\n${lines.join('\n')}\n`;
}

/**
 * The table restore's work where pg_restore runs, in ONE `sh` (each `docker exec` costs 0.1–0.3 s
 * on a quiet machine, and this was ten of them): the staged archive's head over its start (its
 * data positions), pg_restore -L of the chosen entries into the work database (the scratch
 * database, or --into's), the tables moved into the new schema there, and beside the live data
 * the copy into the live database: pg_dump of that schema, its list without its CREATE SCHEMA,
 * then pg_restore of it, or, when the rows load straight from the staged archive (data.list, their
 * COPY retargeted), its pre-data, those rows, then its data and post-data sections, pg_restore's
 * own order. Last, the staged directory is removed. `set -e`: the first failing program ends it,
 * its stderr is the error's.
 *
 * $1 the staged directory; pg_restore jobs: $2 into the work database, $3 into the live one, $4
 * for the rows loaded from data.list; $5 the role ('': none given), $6 the work database, $7 the
 * live database ('' with --into: no copy), $8 the new schema as a pg_dump pattern (quoted: exact),
 * $9 1 when the archive's head follows the files on stdin. The files: work.list, and move.sql
 * and data.list when there is that to do. stdout: `step <key>` as each step starts (STEP_NAMES),
 * nothing else.
 */
export const TABLE_RESTORE_SH = `set -eu
dir=$1 workjobs=$2 livejobs=$3 datajobs=$4 user=$5 work=$6 live=$7 pattern=$8 patch=$9
umask 077
${READ_FILES_SH}
archive=$dir/archive.dump
if [ "$patch" = 1 ]; then dd of="$archive" conv=notrunc bs=1M status=none; fi
restore() { db=$1; shift; pg_restore --exit-on-error -w \${user:+-U "$user"} -d "$db" "$@"; }
restore "$work" -j "$workjobs" -L "$dir/work.list" "$archive"
if [ -f "$dir/move.sql" ]; then
  echo 'step move'
  psql -X -q -w -v ON_ERROR_STOP=1 -1 \${user:+-U "$user"} -d "$work" -f "$dir/move.sql"
fi
if [ -n "$live" ]; then
  echo 'step copy'
  pg_dump -Fc -Z 0 -w \${user:+-U "$user"} -d "$work" -n "$pattern" -f "$dir/moved.dump"
  pg_restore -l "$dir/moved.dump" > "$dir/moved.toc"
  schema_line='/^[0-9][0-9]*; [0-9][0-9]* [0-9][0-9]* SCHEMA - /d'
  if [ -f "$dir/data.list" ]; then
    sed -e "$schema_line" -e '/^[0-9][0-9]*; [0-9][0-9]* [0-9][0-9]* TABLE DATA /d' "$dir/moved.toc" > "$dir/moved.list"
    restore "$live" --section=pre-data -L "$dir/moved.list" "$dir/moved.dump"
    echo 'step load'
    restore "$live" -j "$datajobs" -L "$dir/data.list" "$archive"
    echo 'step rest'
    restore "$live" -j "$livejobs" --section=data --section=post-data -L "$dir/moved.list" "$dir/moved.dump"
  else
    sed -e "$schema_line" "$dir/moved.toc" > "$dir/moved.list"
    restore "$live" -j "$livejobs" -L "$dir/moved.list" "$dir/moved.dump"
  fi
fi
rm -rf -- "$dir"
`;

/** TABLE_RESTORE_SH over the staged dump; `onStep` as it announces each step. Resolves once the staged directory is removed. */
async function runInContainer(
  sh: TargetShell,
  dump: OpenedDump,
  o: {
    work: string;
    workEntries: TablePlan['entries'];
    workJobs: number;
    move: string | null;
    copy: { live: string; schema: string; data: TablePlan['entries'] | null; jobs: number } | null;
    signal?: AbortSignal;
    onStep: (key: keyof ReturnType<typeof STEP_NAMES>) => void;
  },
): Promise<void> {
  const staged = dump.staged!;
  const patch = await staged.tocPatch;
  const files = [bundled('work.list', restoreList(o.workEntries)), o.move === null ? '' : bundled('move.sql', o.move), o.copy?.data ? bundled('data.list', restoreList(o.copy.data)) : ''];
  const input = Buffer.concat([Buffer.from(files.join('') + '.\n'), patch ?? Buffer.alloc(0)]);
  const c = o.copy;
  const jobs = c?.jobs ?? 1;
  const args = [path.posix.dirname(staged.file), String(o.workJobs), String(jobs), String(Math.max(1, Math.min(jobs, c?.data?.length ?? 1))), sh.target.user ?? '', o.work, c?.live ?? '', c ? ident(c.schema) : '', patch ? '1' : '0'];
  const p = sh.spawn('sh', ['-c', TABLE_RESTORE_SH, 'pgfleet-table-restore', ...args], { input, signal: o.signal, what: 'the table restore (pg_restore, psql, pg_dump)', program: 'sh', role: 'restore' });
  let buf = '';
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (d: string) => {
    buf += d;
    for (let at; (at = buf.indexOf('\n')) >= 0; buf = buf.slice(at + 1)) {
      const m = /^step (\w+)$/.exec(buf.slice(0, at));
      if (m && m[1] in STEP_NAMES('', '')) o.onStep(m[1] as keyof ReturnType<typeof STEP_NAMES>);
    }
  });
  await p.done;
}

/** Each restored table's rows, and those its metadata recorded (by its name in the dump), through `session` (connected to where they are). */
async function countRows(session: PsqlSession, plan: TablePlan, schema: string | null, dump: OpenedDump, signal?: AbortSignal): Promise<RestoredTable[]> {
  const parts = plan.tables.map((t) => {
    const now = `${ident(schema ?? t.namespace ?? '')}.${ident(t.tag ?? '')}`;
    return `SELECT quote_ident(${literal(t.namespace ?? '')}) || '.' || quote_ident(${literal(t.tag ?? '')}) AS f, quote_ident(${literal(schema ?? t.namespace ?? '')}) || '.' || quote_ident(${literal(t.tag ?? '')}) AS t,
      (SELECT count(*) FROM ONLY ${now}) AS n, (SELECT relkind FROM pg_class WHERE oid = ${literal(now)}::regclass) AS k`;
  });
  const out = await session.query(`SELECT json_agg(json_build_array(f, t, n, k)) FROM (${parts.join(' UNION ALL ')}) x`, signal);
  const rows = JSON.parse(out.trim().split('\n').pop() ?? '[]') as [string, string, number, string][];
  return rows.map(([from, to, n, kind]) => ({ from, to, rows: Number(n), recorded: kind === 'r' && dump.meta ? (dump.meta.tables[from] ?? null) : null }));
}
