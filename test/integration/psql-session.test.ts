/**
 * lib/postgres/psql.ts PsqlSession against a real PostgreSQL 15 in a sandbox tenant container,
 * reached as pgfleet reaches it (TargetShell: `podman exec -i … psql`, the tenant role with its
 * password): queries queue in order, multi-statement output, a failure rejects that query and
 * every later one, \connect, kill, and an aborted signal that interrupts a running query.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTarget } from '../../lib/config/load.js';
import { CommandError, InterruptedError } from '../../lib/core/errors.js';
import { parseRowCounts, PsqlSession, ROW_COUNTS_SQL } from '../../lib/postgres/psql.js';
import type { TargetShell } from '../../lib/process/container.js';
import { TestFleet } from '../helpers.js';

const PASSWORD = 'Pw-psql-session-4q2z';

describe('PsqlSession (real PostgreSQL 15 in a container)', () => {
  let fleet: TestFleet;
  let sh: TargetShell;
  const open: PsqlSession[] = [];
  const session = (db = 'shop_production') => {
    const s = PsqlSession.open(sh, db);
    open.push(s);
    return s;
  };
  /** Backends running `pattern` on the server, seen by the superuser. */
  const running = async (pattern: string) =>
    (await fleet.sql('shop', 'postgres', `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '${pattern}' AND pid <> pg_backend_pid()`)).trim();

  beforeAll(async () => {
    fleet = await TestFleet.create([{ project: 'shop', databases: { production: 'shop_production', staging: 'shop_staging' }, user: 'shop', password: PASSWORD }]);
    await fleet.sql('shop', 'shop_production', 'SET ROLE shop; CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, 3);');
    const { ctx } = fleet.context();
    sh = ctx.shellFor(findTarget(ctx.config, 'shop', 'production'));
  });
  afterAll(async () => {
    for (const s of open) s.kill();
    await fleet?.cleanup();
  });

  it('queries sent at once run one after another, in order, each with its own output', async () => {
    const s = session();
    const [a, b, c] = [
      s.query(`CREATE TEMP TABLE seen (n int); SELECT pg_sleep(0.3); SELECT 'first'`),
      s.query(`INSERT INTO seen VALUES (2); SELECT 'second'`),
      s.query(`SELECT string_agg(n::text, ',') FROM seen`),
    ];
    expect(await a).toBe('\nfirst\n'); // pg_sleep's empty row, then the SELECT
    expect(await b).toBe('second\n');
    expect(await c).toBe('2\n'); // the third saw the second's insert: they did not overlap
    await s.close();
  });

  it('returns the output of every statement of a multi-statement text, and of a \\gexec', async () => {
    const s = session();
    expect(await s.query(`SELECT 1; SELECT 'a' UNION ALL SELECT 'b'; SELECT current_user`)).toBe('1\na\nb\nshop\n');
    expect(parseRowCounts(await s.query(ROW_COUNTS_SQL))).toEqual({ 'public.items': 3 });
    await s.close();
  });

  it('turns the server idle timeouts off for itself: it outlives a 250 ms idle_session_timeout', async () => {
    await fleet.sql('shop', 'postgres', `ALTER DATABASE shop_staging SET idle_session_timeout = '250ms'`);
    try {
      const s = session('shop_staging');
      expect(await s.query(`SELECT current_setting('idle_session_timeout')`)).toBe('0\n');
      await new Promise((r) => setTimeout(r, 800));
      expect(await s.query('SELECT 42')).toBe('42\n');
      await s.close();
    } finally {
      await fleet.sql('shop', 'postgres', 'ALTER DATABASE shop_staging RESET idle_session_timeout');
    }
  });

  it('a failing query rejects with the server error; every later query rejects too, and close reports it', async () => {
    const s = session();
    const bad = s.query('SELECT 1/0');
    const later = s.query('SELECT 1');
    const e = (await bad.catch((x) => x)) as CommandError;
    expect(e).toBeInstanceOf(CommandError);
    expect(e.stderrTail).toMatch(/division by zero/);
    expect(e.message).toMatch(/^shop\/production: psql failed/);
    expect(e.message).not.toContain(PASSWORD);
    await expect(later).rejects.toBe(e);
    await expect(s.query('SELECT 2')).rejects.toBe(e);
    await expect(s.close()).rejects.toBe(e);
  });

  it('\\connect moves the session to another database of the server, as the same role, on a new backend with the idle timeouts off again', async () => {
    const s = session();
    expect(await s.query(`SET lock_timeout = 1234; SELECT current_database(), current_user`)).toBe('shop_production|shop\n');
    await fleet.sql('shop', 'postgres', `ALTER DATABASE shop_staging SET idle_session_timeout = '250ms'`);
    try {
      await s.connect('shop_staging');
      expect(await s.query('SELECT current_database(), current_user')).toBe('shop_staging|shop\n');
      expect(await s.query(`SELECT current_setting('lock_timeout'), current_setting('idle_session_timeout')`)).toBe('0|0\n'); // nothing of the last backend's settings
      await new Promise((r) => setTimeout(r, 800));
      expect(await s.query('SELECT 42')).toBe('42\n');
    } finally {
      await fleet.sql('shop', 'postgres', 'ALTER DATABASE shop_staging RESET idle_session_timeout');
    }
    await expect(s.connect('no_such_database')).rejects.toThrow(/no_such_database/);
  });

  // Through `docker exec`, ending the client cannot stop a statement already running inside the
  // container: psql there finishes it, then reads the end of its input and quits, and the server
  // rolls back what was open. So the waits below are short statements (6 s), and the promise
  // checked is: the caller is released at once (well before the statement could end), the backend
  // ends, nothing open is committed.
  it('kill ends it: the query running rejects at once, so does every later one, and its backend goes away', async () => {
    const s = session();
    await s.query('SELECT 1');
    const long = s.query('SELECT pg_sleep(6) /* pgfleet-test-kill */');
    await waitFor(async () => (await running('%pgfleet-test-kill%')) === '1');
    const started = Date.now();
    s.kill();
    await expect(long).rejects.toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(4000);
    await expect(s.query('SELECT 1')).rejects.toThrow();
    await waitFor(async () => (await running('%pgfleet-test-kill%')) === '0');
  });

  it('an aborted signal interrupts the running query (InterruptedError at once), ends the session and rolls back what was open', async () => {
    const s = session();
    const ac = new AbortController();
    const q = s.query('BEGIN; INSERT INTO items VALUES (99); SELECT pg_sleep(6) /* pgfleet-test-abort */', ac.signal);
    await waitFor(async () => (await running('%pgfleet-test-abort%')) === '1');
    const started = Date.now();
    ac.abort('SIGINT');
    const e = await q.catch((x) => x);
    expect(e).toBeInstanceOf(InterruptedError);
    expect(e.message).toMatch(/SIGINT/);
    expect(Date.now() - started).toBeLessThan(4000);
    await expect(s.query('SELECT 1')).rejects.toBeInstanceOf(InterruptedError);
    await waitFor(async () => (await running('%pgfleet-test-abort%')) === '0');
    expect((await fleet.sql('shop', 'shop_production', 'SELECT count(*) FROM items')).trim()).toBe('3');

    const t = session();
    const gone = new AbortController();
    gone.abort('SIGTERM');
    await expect(t.query(`SELECT 'pgfleet-test-never'`, gone.signal)).rejects.toBeInstanceOf(InterruptedError);
    expect(await running('%pgfleet-test-never%')).toBe('0');
  });

  it('an interrupted text that ends in COMMIT does not commit: the backend is ended, not only the exec client', async () => {
    const s = session();
    const ac = new AbortController();
    const q = s.query('BEGIN; INSERT INTO items VALUES (77); SELECT pg_sleep(3) /* pgfleet-test-commit */; COMMIT', ac.signal);
    await waitFor(async () => (await running('%pgfleet-test-commit%')) === '1');
    ac.abort('SIGINT');
    await expect(q).rejects.toBeInstanceOf(InterruptedError);
    await s.ended;
    await waitFor(async () => (await running('%pgfleet-test-commit%')) === '0');
    await new Promise((r) => setTimeout(r, 3500)); // past the sleep: a psql left running would have committed by now
    expect((await fleet.sql('shop', 'shop_production', 'SELECT count(*) FROM items WHERE id = 77')).trim()).toBe('0');
  });

  it('a query without a signal is not cut short by an unrelated abort elsewhere (a swap must not be left half-known)', async () => {
    const s = session();
    const ac = new AbortController();
    const guarded = s.query(`SELECT pg_sleep(0.5); SELECT 'finished'`);
    const other = s.query('SELECT 1', ac.signal);
    setTimeout(() => ac.abort('SIGINT'), 100); // aborts the queued query's signal while the first runs
    expect(await guarded).toBe('\nfinished\n');
    await expect(other).rejects.toBeInstanceOf(InterruptedError);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
