// Partial backups against real PostgreSQL 15 in a real container: exclude_tables and
// exclude_table_data reach pg_dump, the dump's own table of contents agrees with the metadata,
// verification expects the excluded data empty, list/status/show say partial, and a whole restore
// is refused without --allow-partial and works with it.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../lib/commands/backup.js';
import { runList } from '../../lib/commands/list.js';
import { runRestore } from '../../lib/commands/restore.js';
import { runRestoreTables } from '../../lib/commands/restore-tables.js';
import { runShow } from '../../lib/commands/show.js';
import { runStatus } from '../../lib/commands/status.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { EXIT, UsageError } from '../../lib/core/errors.js';
import type { StoredBackup } from '../../lib/storage/repository.js';
import { TEST_CONTAINER_CLI, TestFleet } from '../helpers.js';

const SCHEMA = `
SET ROLE logs;
CREATE TABLE orders (id int PRIMARY KEY, item text);
INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 3) g;
CREATE TABLE event_logs (id serial PRIMARY KEY, msg text);
INSERT INTO event_logs (msg) SELECT 'event ' || g FROM generate_series(1, 5) g;
CREATE TABLE "EVENT_ARCHIVE" (id int);
INSERT INTO "EVENT_ARCHIVE" VALUES (1);
CREATE SCHEMA "Audit Trail";
CREATE TABLE "Audit Trail"."Raw ""Log""" (id int);
INSERT INTO "Audit Trail"."Raw ""Log""" SELECT generate_series(1, 4);
CREATE TABLE "Audit Trail".raw_log (id int);
INSERT INTO "Audit Trail".raw_log SELECT generate_series(1, 2);
`;

describe('partial backups (real PostgreSQL 15 in a container)', () => {
  let fleet: TestFleet;
  let b: StoredBackup;
  const sql = (db: string, q: string) => fleet.sql('logs', db, q);
  const tablesOf = async (db: string) => (await sql(db, `SELECT quote_ident(schemaname) || '.' || quote_ident(relname) || '=' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, relname), false, true, '')))[1]::text FROM pg_stat_user_tables ORDER BY 1`)).split('\n').filter(Boolean);

  beforeAll(async () => {
    fleet = await TestFleet.create([
      {
        project: 'logs',
        databases: { production: 'logs_production' },
        user: 'logs',
        password: 'Pw-partial-7c1q-secret',
        // Quoting and mixed case: the one table named exactly, beside a raw_log it must not match; an
        // unqualified wildcard, lower case, that must not match "EVENT_ARCHIVE"; per environment.
        database: { backup: { exclude_tables: ['"Audit Trail"."Raw ""Log"""'], exclude_table_data: { production: ['event_*'] } } },
      },
    ]);
    await sql('postgres', 'ALTER ROLE logs CREATEDB');
    await sql('logs_production', SCHEMA);
    b = await runBackup(fleet.context().ctx, { project: 'logs', environment: 'production', type: 'manual' });
  });
  afterAll(() => fleet?.cleanup());

  it('pg_dump left them out: the dump has no TABLE DATA of the excluded data and no excluded table; the metadata records both and counts neither', async () => {
    const toc = execFileSync('sh', ['-c', 'zstd -dc "$1" | "$2" exec -i "$3" pg_restore -l', 'toc', b.path, TEST_CONTAINER_CLI, fleet.container('logs')], { encoding: 'utf8' });
    const lines = toc.split('\n').filter((l) => /^\d+;/.test(l));
    const has = (re: RegExp) => lines.some((l) => re.test(l));
    expect(has(/ TABLE public event_logs /)).toBe(true);
    expect(has(/ TABLE DATA public event_logs /)).toBe(false);
    expect(has(/ TABLE DATA public orders /)).toBe(true);
    expect(has(/ TABLE DATA public EVENT_ARCHIVE /)).toBe(true);
    expect(has(/ TABLE DATA Audit Trail raw_log /)).toBe(true);
    expect(has(/Raw "Log"/)).toBe(false);
    expect(b.meta.partial).toEqual({
      exclude_tables: ['"Audit Trail"."Raw ""Log"""'],
      exclude_table_data: ['event_*'],
      tables_excluded: ['"Audit Trail"."Raw ""Log"""'],
      data_excluded: ['public.event_logs'],
    });
    expect(b.meta.tables).toEqual({ '"Audit Trail".raw_log': 2, 'public."EVENT_ARCHIVE"': 1, 'public.orders': 3 });
    expect(b.meta.total_rows).toBe(6);
  });

  it('verification passes, expects the excluded data empty and says so', async () => {
    const { ctx, out } = fleet.context();
    const r = await runVerifyBackups(ctx, { project: 'logs', backup: b.meta.id });
    expect(r.exitCode).toBe(0);
    expect(out.join('\n')).toContain(`passed  logs/production ${b.meta.id}: 4 tables, 6 rows; partial backup; no rows expected and none found in public.event_logs (data excluded); not in the backup: "Audit Trail"."Raw ""Log""" (excluded)`);
  });

  it('list, status and show say it is partial', async () => {
    const l = fleet.context();
    const listed = await runList(l.ctx, { project: 'logs' });
    expect(listed[0].partial?.data_excluded).toEqual(['public.event_logs']);
    expect(l.out[0]).toMatch(/\bPARTIAL\b/);
    expect(l.out[1]).toMatch(/\bpartial\b/);
    const s = fleet.context();
    const st = await runStatus(s.ctx, {});
    expect(st.report.targets[0].latest?.partial).toBe(true);
    expect(s.out.join('\n')).toContain(`${b.meta.id} (partial)`);
    const sh = fleet.context();
    const c = await runShow(sh.ctx, { project: 'logs', environment: 'production', id: b.meta.id });
    expect(c.exclusions?.tables_excluded).toEqual(['"Audit Trail"."Raw ""Log"""']);
    expect(c.schemas.find((x) => x.name === 'public')?.tables.find((t) => t.name === 'public.event_logs')).toEqual({ name: 'public.event_logs', rows: null, data: false, data_excluded: true });
    const text = sh.out.join('\n');
    expect(text).toContain(`exclusions    PARTIAL: exclude_tables "Audit Trail"."Raw ""Log""" (matched "Audit Trail"."Raw ""Log"""); exclude_table_data event_* (matched public.event_logs)`);
    expect(text).toMatch(/public\.event_logs\s+data excluded/);
  });

  it('a whole restore (over the live database, --into) is refused without --allow-partial, naming the exclusions; nothing touched', async () => {
    const before = await tablesOf('logs_production');
    for (const into of [undefined, 'logs_copy']) {
      const e = await runRestore(fleet.context().ctx, { project: 'logs', environment: 'production', source: b.meta.id, into, yes: true }).catch((x) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect(e.exitCode).toBe(EXIT.USAGE);
      expect(e.message).toContain(`backup ${b.meta.id} is partial (exclude_tables "Audit Trail"."Raw ""Log"""`);
      expect(e.message).toContain('exclude_table_data event_* (matched public.event_logs)');
      expect(e.message).toContain('--allow-partial');
    }
    expect(await tablesOf('logs_production')).toEqual(before);
    expect(await sql('postgres', `SELECT count(*) FROM pg_database WHERE datname = 'logs_copy'`)).toBe('0\n');
  });

  it('a table restore of a table whose data was excluded is refused; of another table it works', async () => {
    const e = await runRestoreTables(fleet.context().ctx, { project: 'logs', environment: 'production', source: b.meta.id, tables: ['event_logs'], schemas: [], as: 'rescued', yes: true }).catch((x) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toContain('holds no rows of public.event_logs: its data was excluded at backup time (exclude_table_data event_*)');
    const r = await runRestoreTables(fleet.context().ctx, { project: 'logs', environment: 'production', source: b.meta.id, tables: ['orders'], schemas: [], as: 'rescued', yes: true });
    expect(r.restored?.tables.map((t) => [t.to, t.rows, t.recorded])).toEqual([['rescued.orders', 3, 3]]);
    await sql('logs_production', 'DROP SCHEMA rescued CASCADE');
  });

  it('with --allow-partial: --into and over the live database; the excluded-data table there and empty, the excluded table gone, the rest as recorded', async () => {
    const into = fleet.context();
    await runRestore(into.ctx, { project: 'logs', environment: 'production', source: b.meta.id, into: 'logs_copy', allowPartial: true, yes: true });
    expect(into.out.join('\n')).toContain('PARTIAL       exclude_tables');
    expect(await tablesOf('logs_copy')).toEqual(['"Audit Trail".raw_log=2', 'public."EVENT_ARCHIVE"=1', 'public.event_logs=0', 'public.orders=3']);

    const over = fleet.context();
    const r = await runRestore(over.ctx, { project: 'logs', environment: 'production', source: b.meta.id, allowPartial: true, yes: true });
    expect(await tablesOf('logs_production')).toEqual(['"Audit Trail".raw_log=2', 'public."EVENT_ARCHIVE"=1', 'public.event_logs=0', 'public.orders=3']);
    // The safety backup taken before it is whole: the live database's way back holds the excluded data too.
    const safety = (await fleet.context().ctx.repo.list('logs', 'production')).find((x) => x.meta.id === r.safetyBackup)!;
    expect(safety.meta.partial ?? null).toBeNull();
    expect(safety.meta.tables).toEqual({ '"Audit Trail"."Raw ""Log"""': 4, '"Audit Trail".raw_log': 2, 'public."EVENT_ARCHIVE"': 1, 'public.event_logs': 5, 'public.orders': 3 });
  });
});
