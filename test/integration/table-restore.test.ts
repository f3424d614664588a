import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../lib/commands/backup.js';
import { runRestoreTables } from '../../lib/commands/restore-tables.js';
import { runShow } from '../../lib/commands/show.js';
import { EXIT, PgfleetError, UsageError } from '../../lib/core/errors.js';
import { silentLogger } from '../../lib/core/log.js';
import { Runner, type RunOptions, type RunResult, type Spawned } from '../../lib/process/runner.js';
import { contextFor, defaultDeps } from '../../lib/runtime/context.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { TEST_CONTAINER_CLI, TestFleet } from '../helpers.js';
import { richSql } from './table-fixture.js';

/** The real Runner; every argv it starts is kept in `calls` (as test/integration/status-calls.test.ts counts them). */
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

const PASSWORD = 'Pw-tables-93kd-secret';

describe('restore --table (real PostgreSQL 15 in containers)', () => {
  let fleet: TestFleet;
  let c: string;
  let backupId: string;
  /** At backup time: each table's ordered row hash, and pg_dump --schema-only -t of it. */
  const atBackup: Record<string, { rows: string; schema: string }> = {};

  const sql = (db: string, q: string) => fleet.sql('shop', db, q);
  const rowHash = async (db: string, table: string) => (await sql(db, `SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '-') FROM ONLY ${table} x`)).trim();
  /** pg_dump --schema-only of one table; `as` → the schema written as public, to compare a moved copy with the original. */
  const tableSchema = async (db: string, table: string, as?: string) => {
    const r = await fleet.runner.run(['podman', 'exec', c, 'pg_dump', '-U', 'postgres', '--schema-only', '-d', db, '-t', table]);
    let text = r.stdout.replace(/^\\(un)?restrict .*$/gm, '');
    if (as) text = text.split(`${as}.`).join('public.').split(`Schema: ${as};`).join('Schema: public;');
    return text;
  };
  const databases = async () => (await sql('postgres', 'SELECT datname FROM pg_database ORDER BY 1')).split('\n').filter(Boolean);
  const schemas = async () => (await sql('shop_production', `SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1`)).split('\n').filter(Boolean);
  const stagedLeft = async () => (await fleet.runner.run(['podman', 'exec', c, 'ls', '/tmp'])).stdout.split('\n').filter((f) => f.startsWith('pgfleet-restore-'));

  beforeAll(async () => {
    fleet = await TestFleet.create([{ project: 'shop', databases: { production: 'shop_production' }, user: 'shop', password: PASSWORD }]);
    c = fleet.container('shop');
    await sql('postgres', 'ALTER ROLE shop CREATEDB; CREATE ROLE reader');
    await sql('shop_production', sampleSql('shop'));
    await sql('shop_production', richSql('shop'));
    for (const t of ['public."Customer"', 'public.tickets', 'public.measurements_2025_01', 'public.measurements_other', '"My Schema"."Odd ""Name"""'])
      atBackup[t] = { rows: await rowHash('shop_production', t), schema: await tableSchema('shop_production', t) };
    const { ctx } = fleet.context();
    backupId = (await runBackup(ctx, { project: 'shop', environment: 'production', type: 'manual' })).meta.id;
  });
  afterAll(() => fleet?.cleanup());

  it('restores two tables beside the live ones after rows were damaged: rows, schema, sequence positions and grants as at backup time; the live tables untouched', async () => {
    // Someone damages the live data after the backup.
    await sql('shop_production', `UPDATE "Customer" SET city = 'damaged' WHERE "Id" % 3 = 0; DELETE FROM tickets WHERE id > 10; SELECT setval('"Customer_Id_seq"', 9000); SELECT nextval('invoice_no')`);
    const liveCustomer = await rowHash('shop_production', 'public."Customer"');
    const liveTickets = await rowHash('shop_production', 'public.tickets');
    const liveSchema = await tableSchema('shop_production', 'public."Customer"');
    const invoiceLive = await sql('shop_production', 'SELECT last_value FROM invoice_no');
    const dbsBefore = await databases();

    const { ctx, out, logs } = fleet.context();
    const r = await runRestoreTables(ctx, { project: 'shop', environment: 'production', source: backupId, tables: ['public."Customer"', 'tickets'], schemas: [], as: 'rescued', yes: true });
    expect(r.restored?.tables.map((t) => [t.from, t.to, t.rows, t.recorded])).toEqual([
      ['public."Customer"', 'rescued."Customer"', 200, 200],
      ['public.tickets', 'rescued.tickets', 40, 40],
    ]);
    expect(await rowHash('shop_production', 'rescued."Customer"')).toBe(atBackup['public."Customer"'].rows);
    expect(await rowHash('shop_production', 'rescued.tickets')).toBe(atBackup['public.tickets'].rows);
    // Indexes, constraints, the trigger, row security and its policy, comments, grants, the owned sequence: all as pg_dump saw them.
    expect(await tableSchema('shop_production', 'rescued."Customer"', 'rescued')).toBe(atBackup['public."Customer"'].schema);
    expect(await tableSchema('shop_production', 'rescued.tickets', 'rescued')).toBe(atBackup['public.tickets'].schema);
    expect(atBackup['public."Customer"'].schema).toMatch(/CREATE POLICY happy_only[\s\S]*GRANT SELECT ON TABLE public."Customer" TO reader[\s\S]*/);
    expect(await sql('shop_production', `SELECT last_value, is_called FROM rescued."Customer_Id_seq"`)).toBe('5000|t\n');
    expect(await sql('shop_production', `SELECT last_value FROM rescued.tickets_id_seq`)).toBe('40\n');
    // The trigger works on the copy, and the shared sequence its default uses is the live one, untouched.
    await sql('shop_production', `INSERT INTO rescued."Customer" ("FullName") VALUES ('trigger check')`);
    expect(await sql('shop_production', `SELECT city FROM rescued."Customer" WHERE "FullName" = 'trigger check'`)).toBe('unknown\n');
    expect(await sql('shop_production', `SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'rescued.tickets'::regclass`)).toBe(`nextval('invoice_no'::regclass)\n`);
    expect(await sql('shop_production', 'SELECT last_value FROM invoice_no')).toBe(invoiceLive);
    // Nothing live was touched; nothing is left behind.
    expect(await rowHash('shop_production', 'public."Customer"')).toBe(liveCustomer);
    expect(await rowHash('shop_production', 'public.tickets')).toBe(liveTickets);
    expect(await tableSchema('shop_production', 'public."Customer"')).toBe(liveSchema);
    expect(await databases()).toEqual(dbsBefore);
    expect(await stagedLeft()).toEqual([]);
    // What was left out is said, and how to compare and drop.
    const text = out.join('\n');
    expect(text).toContain('left out fk constraint public.orders orders_customer_id_fkey: it refers to table public.orders, which is not restored');
    expect(text).toContain('left out view public.HappyCustomers');
    expect(text).toContain('SELECT * FROM rescued."Customer" EXCEPT SELECT * FROM public."Customer" LIMIT 20;');
    expect(text).toContain('DROP SCHEMA "rescued" CASCADE;');
    expect([...out, ...logs].join('\n')).not.toContain(PASSWORD);

    // The same name again is refused before anything is restored.
    const again = await runRestoreTables(fleet.context().ctx, { project: 'shop', environment: 'production', source: backupId, tables: ['tickets'], schemas: [], as: 'rescued', yes: true }).catch((e) => e);
    expect(again).toBeInstanceOf(PgfleetError);
    expect(again.message).toContain('schema "rescued" already exists');
    expect(await rowHash('shop_production', 'rescued.tickets')).toBe(atBackup['public.tickets'].rows);
    expect(await databases()).toEqual(dbsBefore);
  });

  it('a table restore makes three container calls (the psql session, the staging, the one restore script) and reads the TOC once, beside and --into', async () => {
    const dbsBefore = await databases();
    const restore = async (o: { as?: string; into?: string }, table = 'public.tickets') => {
      const runner = new CountingRunner();
      const ctx = contextFor(fleet.configFile, defaultDeps({ runner, logger: silentLogger(), out: () => undefined, progress: false }));
      const r = await runRestoreTables(ctx, { project: 'shop', environment: 'production', source: backupId, tables: [table], schemas: [], ...o, yes: true });
      const container = runner.calls.filter((a) => a[0] === TEST_CONTAINER_CLI);
      // Each call by what it runs in the container: psql, or the name a `sh -c` script is given.
      const what = container.map((a) => (a.includes('psql') ? 'psql' : (a[a.indexOf('-c') + 2] ?? a.join(' '))));
      // The restore script's work database and live database (lib/restore/tables.ts TABLE_RESTORE_SH $6, $7).
      const script = container.find((a) => a.includes('pgfleet-table-restore'))!;
      const at = script.indexOf('pgfleet-table-restore');
      const hostZstd = runner.calls.filter((a) => a[0] === 'zstd').length;
      return { r, what, hostZstd, work: script[at + 6], live: script[at + 7] };
    };
    // tickets has an identity sequence: its copy takes the scratch database's way.
    const beside = await restore({ as: 'counted' });
    expect(beside.r.restored?.tables.map((t) => [t.to, t.rows, t.recorded])).toEqual([['counted.tickets', 40, 40]]);
    expect(await rowHash('shop_production', 'counted.tickets')).toBe(atBackup['public.tickets'].rows);
    expect(beside.what).toEqual(['psql', 'pgfleet-stage', 'pgfleet-table-restore']);
    expect(beside.hostZstd).toBe(2); // the TOC's head, then the one read that checks and thins the dump
    expect(beside.work).toMatch(/^shop_production__pgfleet_scratch_/);
    expect(beside.live).toBe('shop_production');
    // A table with its key and grants only: straight into the new schema, no scratch database.
    const straight = await restore({ as: 'counted_straight' }, '"My Schema"."Odd ""Name"""');
    expect(straight.r.restored?.tables.map((t) => [t.to, t.rows, t.recorded])).toEqual([['counted_straight."Odd ""Name"""', 25, 25]]);
    expect(await rowHash('shop_production', 'counted_straight."Odd ""Name"""')).toBe(atBackup['"My Schema"."Odd ""Name"""'].rows);
    expect(straight.what).toEqual(['psql', 'pgfleet-stage', 'pgfleet-table-restore']);
    expect([straight.work, straight.live]).toEqual(['shop_production', '']);
    const copied = await tableSchema('shop_production', 'counted_straight."Odd ""Name"""');
    expect(copied.split('counted_straight.').join('"My Schema".').split('Schema: counted_straight;').join('Schema: My Schema;')).toBe(atBackup['"My Schema"."Odd ""Name"""'].schema);
    const into = await restore({ into: 'shop_counted' });
    expect(into.r.restored?.tables.map((t) => [t.to, t.rows, t.recorded])).toEqual([['public.tickets', 40, 40]]);
    expect(await rowHash('shop_counted', 'public.tickets')).toBe(atBackup['public.tickets'].rows);
    expect(into.what).toEqual(['psql', 'pgfleet-stage', 'pgfleet-table-restore']);
    expect(into.hostZstd).toBe(2);
    // Nothing left behind: no scratch database, no staged copy.
    expect((await databases()).sort()).toEqual([...dbsBefore, 'shop_counted'].sort());
    expect(await stagedLeft()).toEqual([]);
    await sql('postgres', 'DROP DATABASE shop_counted');
    await sql('shop_production', 'DROP SCHEMA counted CASCADE; DROP SCHEMA counted_straight CASCADE');
  });

  it('restores a partitioned table with its partitions into a new database', async () => {
    const { ctx } = fleet.context();
    const r = await runRestoreTables(ctx, { project: 'shop', environment: 'production', source: backupId, tables: ['measurements'], schemas: [], into: 'shop_measurements', yes: true });
    expect(r.restored?.tables.map((t) => t.to)).toEqual(['public.measurements', 'public.measurements_2025_01', 'public.measurements_2025_02', 'public.measurements_other']);
    expect(r.restored?.tables.filter((t) => t.recorded !== null).every((t) => t.rows === t.recorded)).toBe(true);
    expect(await rowHash('shop_measurements', 'public.measurements_2025_01')).toBe(atBackup['public.measurements_2025_01'].rows);
    expect(await tableSchema('shop_measurements', 'public.measurements_other')).toBe(atBackup['public.measurements_other'].schema);
    expect(await sql('shop_measurements', `SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass`)).toBe('3\n');
    // Only what was asked for: no other table came along.
    expect(await sql('shop_measurements', `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'measurements%'`)).toBe('0\n');
    await sql('postgres', 'DROP DATABASE shop_measurements');
  });

  it('restores a table whose names need quoting, into the default restored_<stamp> schema', async () => {
    const { ctx, out } = fleet.context({ now: '2031-05-06T07:08:09Z' });
    const r = await runRestoreTables(ctx, { project: 'shop', environment: 'production', source: backupId, tables: ['"My Schema"."Odd ""Name"""'], schemas: [], yes: true });
    expect(r.restored?.schema).toBe('restored_20310506_070809');
    expect(await rowHash('shop_production', 'restored_20310506_070809."Odd ""Name"""')).toBe(atBackup['"My Schema"."Odd ""Name"""'].rows);
    expect(out.join('\n')).toContain('restored_20310506_070809."Odd ""Name"""  25 rows (as recorded)');
    await sql('shop_production', 'DROP SCHEMA restored_20310506_070809 CASCADE');
  });

  it('a dry run prints the exact objects and changes nothing; a table not in the dump names the closest ones', async () => {
    const before = await schemas();
    const { ctx, out } = fleet.context();
    const r = await runRestoreTables(ctx, { project: 'shop', environment: 'production', source: backupId, tables: ['orders'], schemas: [], as: 'dry', dryRun: true });
    expect(r.dryRun).toBe(true);
    const text = out.join('\n');
    for (const x of ['table public.orders', 'sequence public.orders_id_seq', 'table data public.orders', 'index public.orders_customer', 'the dump matches its metadata']) expect(text).toContain(x);
    expect(text).toContain('left out fk constraint public.orders orders_customer_id_fkey: it refers to table public.Customer, which is not restored');
    expect(await schemas()).toEqual(before);
    const missing = await runRestoreTables(fleet.context().ctx, { project: 'shop', environment: 'production', source: backupId, tables: ['public.customer'], schemas: [], yes: true }).catch((e) => e);
    expect(missing).toBeInstanceOf(UsageError);
    expect(missing.exitCode).toBe(EXIT.USAGE);
    expect(missing.message).toContain('no table public.customer in the dump; the closest: public."Customer"');
  });

  it('show: what the backup holds, from its metadata and its table of contents', async () => {
    const { ctx, out } = fleet.context();
    const c = await runShow(ctx, { project: 'shop', environment: 'production', id: backupId });
    expect(c.schemas.find((s) => s.name === 'public')?.tables).toContainEqual({ name: 'public."Customer"', rows: 200, data: true });
    expect(c.exclusions).toBeNull();
    const text = out.join('\n');
    expect(text).toContain(`backup ${backupId} of shop/production`);
    expect(text).toContain('exclusions    none (a full backup)');
    expect(text).toMatch(/"My Schema"\."Odd ""Name"""\s+25/);
    const cli = await fleet.cli(['show', 'shop', 'production', backupId, '--json']);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(JSON.parse(JSON.stringify(c)));
  });

  it('the CLI: --table with --dry-run exits 0 and lists the plan', async () => {
    const r = await fleet.cli(['restore', 'shop', 'production', backupId, '--table', 'public.tickets', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('sequence public.tickets_id_seq');
    expect(r.stdout).toContain('dry run: nothing changed');
  });
});
