// scheduled-backup keeps its snapshot sessions between targets (lib/postgres/pool.ts): a target
// of the same container, role and credentials as one before gets that psql session moved to its
// own database (\connect), not a new container exec; after the first backup of a container,
// pg_dump is called by its direct path (no pg_wrapper). A failing target (its database missing: the
// kept session cannot move there; a table lock: the session dies inside its snapshot) never breaks
// the next one: that one gets a new session, and its counts are its own database's, taken in the
// dump's own snapshot while rows are being written (checked by restoring the dump with stock tools).
// The calls are counted on the real Runner (a subclass that records each argv and runs it).
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScheduledBackup } from '../../lib/commands/scheduled-backup.js';
import { silentLogger } from '../../lib/core/log.js';
import { Runner, type RunOptions, type RunResult, type Spawned } from '../../lib/process/runner.js';
import { contextFor, defaultDeps } from '../../lib/runtime/context.js';
import { stockRestore, TEST_CONTAINER_CLI, TestFleet } from '../helpers.js';

/** The real Runner; every argv it starts is kept in `calls`. */
class CountingRunner extends Runner {
  readonly calls: string[][] = [];
  override run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.calls.push([...argv]);
    return super.run(argv, opts);
  }
  override spawn(argv: readonly string[], opts?: RunOptions): Spawned {
    this.calls.push([...argv]);
    return super.spawn(argv, opts);
  }
}

const PASSWORD = 'Pw-session-reuse-7k';
const ROWS: Record<string, number> = { e1: 10, e3: 30, e4: 40, e5: 50, e6: 60 };
const WRITER = 'pgfleet-test-writer';

describe('scheduled-backup reuses its snapshot sessions (real PostgreSQL 15)', () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await TestFleet.create([
      { project: 'many', databases: { e1: 'many_e1', e2: 'many_e2', e3: 'many_e3', e4: 'many_e4', e5: 'many_e5', e6: 'many_e6' }, database: { backup: { lock_wait_timeout: '1s' } } },
      { project: 'shop', databases: { production: 'shop_production', staging: 'shop_staging' }, user: 'shop', password: PASSWORD },
    ]);
    for (const [env, n] of Object.entries(ROWS)) await fleet.sql('many', `many_${env}`, `CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, ${n})`);
    await fleet.sql('many', 'many_e2', 'CREATE TABLE items (id int)');
    for (const [env, n] of [['production', 7], ['staging', 8]] as const) await fleet.sql('shop', `shop_${env}`, `SET ROLE shop; CREATE TABLE items (id int); INSERT INTO items SELECT generate_series(1, ${n})`);
  }, 180_000);
  afterAll(() => fleet?.cleanup());

  const run = async (concurrency: number) => {
    const runner = new CountingRunner();
    const ctx = contextFor(fleet.configFile, defaultDeps({ runner, logger: silentLogger(), out: () => undefined, progress: false }));
    const result = await runScheduledBackup(ctx, { concurrency });
    const execs = (project: string, what: (argv: string[]) => boolean) => runner.calls.filter((a) => a[0] === TEST_CONTAINER_CLI && a.includes(fleet.container(project)) && what(a));
    // A snapshot session: psql with no -c (the one-off psql calls, such as ending a killed session's backend, have one).
    const sessions = (project: string) => execs(project, (a) => a.includes('psql') && !a.includes('-c')).length;
    const dumps = (project: string) => execs(project, (a) => a.includes('pgfleet-dump')).map((a) => a[a.indexOf('pgfleet-dump') + 1]);
    const byTarget = Object.fromEntries(result.targets.map((t) => [`${t.project}/${t.environment}`, t]));
    return { result, sessions, dumps, byTarget, ctx };
  };

  /** Writers running on the server. */
  const writing = async () => Number((await fleet.sql('many', 'postgres', `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%${WRITER}%' AND pid <> pg_backend_pid()`)).trim());

  /** Rows of the dump, restored with stock tools into a new database. */
  const rowsInDump = async (file: string, as: string) => {
    await stockRestore(fleet.runner, fleet.container('many'), file, as);
    return Number((await fleet.sql('many', as, 'SELECT count(*) FROM items')).trim());
  };

  it('one session per container and role, moved from target to target; a missing database and a lock timeout fail only their own target', async () => {
    await fleet.sql('many', 'postgres', 'DROP DATABASE many_e2');
    // Rows written all along, committed one by one, in two of the databases.
    const writers = ['many_e3', 'many_e6'].map((db) => {
      const p = spawn('podman', ['exec', fleet.container('many'), 'psql', '-X', '-q', '-U', 'postgres', '-d', db, '-c', `DO $$ BEGIN FOR i IN 1..100000 LOOP INSERT INTO items VALUES (1000 + i); COMMIT; PERFORM pg_sleep(0.002); END LOOP; END $$ /* ${WRITER} */`], { stdio: 'ignore' });
      return new Promise((r) => p.on('close', r));
    });
    // Another session holds ACCESS EXCLUSIVE on e4's table: its dump and its counts wait, and give up after 1 s.
    const holder = spawn('podman', ['exec', '-i', fleet.container('many'), 'psql', '-X', '-q', '-A', '-t', '-U', 'postgres', '-d', 'many_e4'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let held = '';
    holder.stdout.on('data', (d) => (held += d));
    holder.stdin.write(`BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n`);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      await waitFor(async () => held.includes('locked') && (await writing()) === 2);
      r = await run(1);
    } finally {
      holder.stdin.end('ROLLBACK;\n\\q\n');
      await new Promise((x) => holder.on('close', x));
      await fleet.sql('many', 'postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%${WRITER}%' AND pid <> pg_backend_pid()`);
      await Promise.all(writers);
    }

    const { byTarget, sessions, dumps } = r;
    expect(Object.fromEntries(Object.entries(byTarget).map(([k, t]) => [k, t.result]))).toEqual({
      'many/e1': 'ok',
      'many/e2': 'failed',
      'many/e3': 'ok',
      'many/e4': 'failed',
      'many/e5': 'ok',
      'many/e6': 'ok',
      'shop/production': 'ok',
      'shop/staging': 'ok',
    });
    expect(byTarget['many/e2'].error).toMatch(/^many\/e2: database "many_e2" does not exist/);
    expect(byTarget['many/e4'].error).toMatch(/^many\/e4: a table lock was not granted within 1s/);
    // many: e1's session, moved to e2 (refused: it is ended), a new one for e2 (fails), a new one
    // for e3, kept and moved to e4 (dies in its lock), a new one for e5, moved to e6. shop: one.
    expect(sessions('many')).toBe(4);
    expect(sessions('shop')).toBe(1);
    // One pg_dump exec per target; the first of each container through PATH, then by its path.
    const direct = /^\/usr\/lib\/postgresql\/15\/bin\/pg_dump$/;
    expect(dumps('many')).toHaveLength(6);
    expect(dumps('many')[0]).toBe('');
    for (const p of dumps('many').slice(1)) expect(p).toMatch(direct);
    expect(dumps('shop')).toEqual(['', expect.stringMatching(direct)]);

    // Each target's counts are its own database's, and exactly what its dump holds, rows written meanwhile or not.
    const counted = (key: string) => r.byTarget[key];
    const meta = async (key: string) => {
      const [project, environment] = key.split('/');
      const b = (await r.ctx.repo.list(project, environment)).find((x) => x.meta.id === counted(key).id)!;
      return { rows: b.meta.tables['public.items'], path: b.path };
    };
    expect((await meta('many/e1')).rows).toBe(10);
    expect((await meta('many/e5')).rows).toBe(50);
    expect((await meta('shop/production')).rows).toBe(7);
    expect((await meta('shop/staging')).rows).toBe(8);
    for (const env of ['e3', 'e6']) {
      const m = await meta(`many/${env}`);
      expect(m.rows).toBeGreaterThan(ROWS[env]); // the writer had committed rows before
      expect(await rowsInDump(m.path, `check_${env}`)).toBe(m.rows);
    }
    // Every kept session quit at the end: no backend of pgfleet's left on the targets' databases.
    await waitFor(async () => (await fleet.sql('many', 'postgres', `SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'many\\_e%' AND backend_type = 'client backend'`)).trim() === '0');
  });

  it('two at once: at most one session per worker and container, every target backed up', async () => {
    await fleet.sql('many', 'postgres', 'CREATE DATABASE many_e2');
    const { result, sessions, dumps } = await run(2);
    expect(result.targets.map((t) => t.result)).toEqual(new Array(8).fill('ok'));
    expect(sessions('many')).toBeGreaterThanOrEqual(1);
    expect(sessions('many')).toBeLessThanOrEqual(2);
    expect(sessions('shop')).toBeLessThanOrEqual(2);
    expect(dumps('many')).toHaveLength(6);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
