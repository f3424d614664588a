/**
 * SQL through psql where the database lives. Identifiers are quoted here (`ident`), and every
 * name that reaches SQL was already checked by the config (lib/config/names.ts).
 */
import { InterruptedError, PgfleetError, type TargetRef } from '../core/errors.js';
import type { Spawned } from '../process/runner.js';
import type { TargetShell } from '../process/container.js';

export const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';
export const literal = (s: string) => "'" + s.replace(/'/g, "''") + "'";
/** One argument of a psql meta-command (\\connect), single-quoted. */
const metaArg = (s: string) => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";

const PSQL_FLAGS = ['-X', '-q', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1'];

/** Run one SQL text in `database`; returns stdout (unaligned, tuples only). */
export async function psql(sh: TargetShell, database: string, sql: string, signal?: AbortSignal): Promise<string> {
  const r = await sh.run('psql', [...PSQL_FLAGS, ...sh.conn(database), '-c', sql], { what: 'psql', signal });
  return r.stdout;
}

/**
 * The row count of every table whose rows pg_dump dumps (ordinary tables and partitions, not
 * extension members), as one JSON object {"schema"."table": rows}. Meant to run inside the
 * snapshot a dump uses, or against a restored copy; the two sides then compare exactly.
 */
export const ROW_COUNTS_SQL = rowCountsSql();

/** ROW_COUNTS_SQL without the tables named in `except` (as its keys spell them): a partial dump's tables left out or without their rows. */
export function rowCountsSql(except: readonly string[] = []): string {
  const skip = except.length ? `\n     AND quote_ident(n.nspname) || '.' || quote_ident(c.relname) <> ALL (ARRAY[${except.map(literal).join(', ')}]::text[])` : '';
  return `
SELECT coalesce(
  (SELECT 'SELECT coalesce(json_object_agg(t, n ORDER BY t), ''{}''::json) FROM (' ||
     string_agg(format('SELECT %L AS t, count(*) AS n FROM ONLY %I.%I', quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname), ' UNION ALL ') || ') x'
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')${skip}),
  'SELECT ''{}''::json') \\gexec
`;
}

export function parseRowCounts(out: string): Record<string, number> {
  const line = out.trim().split('\n').pop() ?? '{}';
  const obj = JSON.parse(line) as Record<string, number | string>;
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, Number(v)]));
}

/** Session settings that end idle sessions (9.6+, 14+), off for this session where the server has them. */
const NO_IDLE_TIMEOUTS = `SELECT count(set_config(name, '0', false)) FROM pg_settings WHERE name IN ('idle_in_transaction_session_timeout', 'idle_session_timeout')`;

/** The session's own backend (pid and start time), read when it connects. */
const WHO_AM_I = `SELECT pid || ' ' || backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()`;

/**
 * A psql kept open over stdin, for work that must share one transaction (the exported snapshot a
 * dump runs in) or that should not wait for a new `exec` and connection (the restore's steps).
 * Queries run one after another, each one's output read up to a marker line. If psql dies, every
 * pending and later query rejects with its CommandError.
 *
 * Killed while a query runs, it also ends its backend on the server: killing the `docker exec`
 * client does not stop the psql inside the container, which would finish the statement and run
 * the rest of the text it had been sent (a COMMIT included). The backend is known by pid and start
 * time, so a pid the server has since given to another session is never ended.
 */
export class PsqlSession {
  private buf = '';
  private seq = 0;
  private waiting?: { marker: string; resolve: (s: string) => void; reject: (e: unknown) => void };
  private failed?: unknown;
  private tail: Promise<unknown> = Promise.resolve();
  /** A query has been sent and its output not yet read. */
  private busy = false;
  private backend?: { pid: number; start: string; database: string };
  /** Settles once a killed session's backend is ended (or known gone). */
  ended: Promise<void> = Promise.resolve();

  private constructor(
    private readonly proc: Spawned,
    private readonly sh: TargetShell,
  ) {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => {
      this.buf += d;
      this.pump();
    });
    proc.done.then(
      () => this.fail(new PgfleetError('psql session ended unexpectedly')),
      (e) => this.fail(e),
    );
  }

  static open(sh: TargetShell, database: string, signal?: AbortSignal): PsqlSession {
    const session = new PsqlSession(sh.spawn('psql', [...PSQL_FLAGS, ...sh.conn(database)], { interactive: true, what: 'psql', signal }), sh);
    // A session may wait as long as a dump or a restore runs: the server's idle timeouts must not end it.
    session.query(`${NO_IDLE_TIMEOUTS};\n${WHO_AM_I}`).then((out) => session.identify(out, database), () => undefined); // a failure here is the next query's
    return session;
  }

  private identify(out: string, database: string) {
    const m = /^(\d+) (.+)$/m.exec(out.trim().split('\n').pop() ?? '');
    this.backend = m ? { pid: Number(m[1]), start: m[2], database } : undefined;
  }

  private fail(e: unknown) {
    this.failed ??= e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.failed);
  }

  private pump() {
    const w = this.waiting;
    if (!w) return;
    const at = this.buf.indexOf(w.marker);
    if (at < 0) return;
    const out = this.buf.slice(0, at);
    this.buf = this.buf.slice(at + w.marker.length);
    this.waiting = undefined;
    w.resolve(out);
  }

  /**
   * Run one SQL text (it may end in a psql meta-command such as \\gexec) and return its output.
   * With `signal`, an interrupt ends the session (the server rolls back what was open) and the
   * query rejects with InterruptedError; without it, the query runs to its end (a swap must not be
   * left half-known).
   */
  query(sql: string, signal?: AbortSignal): Promise<string> {
    const run = this.tail.then(() => this.send(sql, signal));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private send(sql: string, signal?: AbortSignal): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    if (signal?.aborted) {
      this.kill();
      return Promise.reject(new InterruptedError(String(signal.reason ?? 'SIGINT')));
    }
    const marker = `__pgfleet_end_${++this.seq}__\n`;
    const onAbort = () => {
      this.fail(new InterruptedError(String(signal?.reason ?? 'SIGINT')));
      this.kill();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<string>((resolve, reject) => {
      this.busy = true;
      this.waiting = {
        marker,
        resolve: (out) => {
          this.busy = false;
          resolve(out);
        },
        reject,
      };
      const body = /\\\w+\s*$/.test(sql.trim()) ? sql.trim() : sql.trim().replace(/;?$/, ';');
      this.proc.stdin.write(`${body}\n\\echo ${marker.trim()}\n`);
      this.pump();
    }).finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /**
   * Connect the session to another database of the same server, as the same role: a new backend
   * (what the last one had open is rolled back, its settings gone), with the idle timeouts off
   * again, in one round trip. A failed \\connect ends psql (ON_ERROR_STOP): the session is over.
   */
  async connect(database: string, signal?: AbortSignal): Promise<void> {
    const out = await this.query(`\\connect ${metaArg(database)}\n${NO_IDLE_TIMEOUTS};\n${WHO_AM_I}`, signal);
    this.identify(out, database);
  }

  /** Resolves once every query sent so far has answered; rejects with the session's failure if it has one. */
  async idle(): Promise<void> {
    await this.tail;
    if (this.failed) throw this.failed;
  }

  /** Quit psql and wait for it; errors if it had failed. */
  async close(): Promise<void> {
    await this.tail;
    if (this.failed) throw this.failed;
    this.proc.stdin.end('\\q\n');
    await this.proc.done;
  }

  /** Stop it now (after a failure elsewhere); a query still running on the server is ended too (see `ended`). */
  kill() {
    this.failed ??= new PgfleetError('psql session closed');
    try {
      this.proc.stdin.destroy();
    } catch {
      /* gone */
    }
    this.proc.kill();
    const b = this.backend;
    if (this.busy && b) {
      this.busy = false;
      // Not under any signal: this is the clean-up of an interrupt.
      const sql = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ${b.pid} AND backend_start = ${literal(b.start)}::timestamptz`;
      this.ended = psql(this.sh, b.database, sql).then(() => undefined, () => undefined);
    }
  }
}

export function majorOf(version: string): number {
  const m = /(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) throw new PgfleetError(`cannot read a PostgreSQL version from ${JSON.stringify(version)}`);
  return Number(m[1]);
}

export type { TargetRef };
