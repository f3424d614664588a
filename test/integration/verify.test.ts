import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runBackup } from '../../lib/commands/backup.js';
import { runList } from '../../lib/commands/list.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { EXIT } from '../../lib/core/errors.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { TestFleet } from '../helpers.js';

describe('verify-backups (real PostgreSQL 15 in containers)', () => {
  let fleet: TestFleet;
  const scratchLeft = async (project: string) =>
    (await fleet.sql(project, 'postgres', `SELECT datname FROM pg_database WHERE datname LIKE '%pgfleet_scratch%'`)).split('\n').filter(Boolean);

  beforeAll(async () => {
    fleet = await TestFleet.create([
      { project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: 'Pw-verify-q8z' },
      { project: 'globex', databases: { staging: 'globex_staging' } },
      { project: 'verifier', databases: { ci: 'verifier_ci' }, database: { backup: { enabled: false } } },
    ]);
    await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
    await fleet.sql('acme', 'acme_production', sampleSql('acme'));
    await fleet.sql(
      'globex',
      'globex_staging',
      `CREATE TABLE items AS SELECT g AS id, md5(g::text) AS a FROM generate_series(1, 300000) g; ALTER TABLE items ADD PRIMARY KEY (id); CREATE INDEX items_a ON items (a);
       CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'one'), (2, 'two');`,
    );
  });
  afterAll(() => fleet?.cleanup());

  it('verifies the latest backup of every enabled target, records the result, and list shows it', async () => {
    const { ctx } = fleet.context();
    const older = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'scheduled' });
    const latest = await runBackup(fleet.context({ now: new Date(Date.now() + 2000).toISOString() }).ctx, { project: 'acme', environment: 'production', type: 'scheduled' });
    await runBackup(ctx, { project: 'globex', environment: 'staging', type: 'scheduled' });

    const { ctx: vctx, out } = fleet.context();
    const r = await runVerifyBackups(vctx, {});
    expect(r.exitCode).toBe(EXIT.OK);
    expect(r.results.map((x) => `${x.project}:${x.status}`).sort()).toEqual(['acme:passed', 'globex:passed']);
    const meta = JSON.parse(readFileSync(latest.metaPath, 'utf8'));
    expect(meta.verification).toMatchObject({ status: 'passed', tables: Object.keys(latest.meta.tables).length, rows: latest.meta.total_rows, container: fleet.container('acme') });
    expect(JSON.parse(readFileSync(older.metaPath, 'utf8')).verification).toBeNull();
    expect(out.join('\n')).toMatch(/2 verified: 2 passed, 0 failed/);
    const listed = await runList(fleet.context().ctx, { project: 'acme', json: true });
    expect(listed[0].verification).toMatchObject({ status: 'passed' });
    expect(listed[1].verification).toBeNull();
    expect(await scratchLeft('acme')).toEqual([]);
    expect(await scratchLeft('globex')).toEqual([]);

    const all = await runVerifyBackups(fleet.context().ctx, { project: 'acme', all: true });
    expect(all.results.map((x) => x.status)).toEqual(['passed', 'passed']);
    expect(JSON.parse(readFileSync(older.metaPath, 'utf8')).verification.status).toBe('passed');
  });

  it('--dry-run lists what it would verify and changes nothing', async () => {
    const { ctx } = fleet.context();
    const before = (await ctx.repo.list('acme', 'production')).map((b) => readFileSync(b.metaPath, 'utf8'));
    const { ctx: vctx, out } = fleet.context();
    await runVerifyBackups(vctx, { project: 'acme', all: true, dryRun: true });
    expect(out.filter((l) => l.startsWith('would verify acme/production')).length).toBe(2);
    expect((await ctx.repo.list('acme', 'production')).map((b) => readFileSync(b.metaPath, 'utf8'))).toEqual(before);
  });

  it('exit 4 on a backup whose content differs from its metadata (checksum still valid); failure recorded; no scratch left', async () => {
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'globex', environment: 'staging', type: 'manual' });
    // The metadata now claims one more row in public.notes: the dump is intact, its content disagrees.
    await ctx.repo.saveMetadata({ ...b.meta, tables: { ...b.meta.tables, 'public.notes': 3 }, total_rows: b.meta.total_rows + 1 });
    const prom = path.join(fleet.dir, 'pgfleet.prom');
    fleet.platform = { metrics: { textfile: prom } };
    fleet.writeConfig();
    const r = await fleet.cli(['verify-backups', 'globex', 'staging', '--backup', b.meta.id]);
    fleet.platform = {};
    fleet.writeConfig();
    expect(r.code).toBe(EXIT.VERIFY_FAILED);
    expect(readFileSync(prom, 'utf8')).toContain('pgfleet_verification_last_success{project="globex",environment="staging"} 0');
    expect(r.stdout).toMatch(/FAILED +globex\/staging/);
    const meta = JSON.parse(readFileSync(b.metaPath, 'utf8'));
    expect(meta.verification.status).toBe('failed');
    expect(meta.verification.error).toMatch(/table public\.notes has 2 rows, 3 recorded/);
    expect(meta.sha256).toBe(b.meta.sha256);
    expect(await scratchLeft('globex')).toEqual([]);
  });

  it('runs in platform.verify.container when set', async () => {
    fleet.platform = { verify: { container: fleet.container('verifier') } };
    fleet.writeConfig();
    try {
      const { ctx } = fleet.context();
      const r = await runVerifyBackups(ctx, { project: 'acme' });
      expect(r.results.map((x) => x.status)).toEqual(['passed']);
      expect(r.results[0].verification?.container).toBe(fleet.container('verifier'));
      expect(await scratchLeft('verifier')).toEqual([]);
      expect(await scratchLeft('acme')).toEqual([]);
    } finally {
      fleet.platform = {};
      fleet.writeConfig();
    }
  });

  it('SIGINT mid-verification: exit 130, the scratch database dropped, nothing recorded', async () => {
    const { ctx } = fleet.context();
    const [latest] = await ctx.repo.list('globex', 'staging');
    const before = readFileSync(latest.metaPath, 'utf8');
    let pid = 0;
    let seen = false;
    const run = fleet.cli(['verify-backups', 'globex', 'staging'], { onSpawn: (p) => (pid = p) });
    let ended: Awaited<typeof run> | undefined;
    void run.then((r) => (ended = r));
    const until = Date.now() + 60_000;
    while (!seen && Date.now() < until) {
      if (ended) throw new Error(`verify-backups ended before its scratch database was seen: ${JSON.stringify(ended)}`);
      seen = (await scratchLeft('globex')).length > 0;
      if (!seen) await new Promise((r) => setTimeout(r, 30));
    }
    expect(seen).toBe(true);
    process.kill(pid, 'SIGINT');
    const r = await run;
    expect(r.code, r.stderr).toBe(EXIT.INTERRUPTED);
    expect(await scratchLeft('globex')).toEqual([]);
    expect(readFileSync(latest.metaPath, 'utf8')).toBe(before);
  });
  it('a role without CREATEDB: says so, exit 1, nothing recorded', async () => {
    const { ctx } = fleet.context();
    const [latest] = await ctx.repo.list('acme', 'production');
    const before = readFileSync(latest.metaPath, 'utf8');
    await fleet.sql('acme', 'postgres', 'ALTER ROLE acme NOCREATEDB');
    try {
      const { ctx: vctx, out } = fleet.context();
      const r = await runVerifyBackups(vctx, { project: 'acme' });
      expect(r.exitCode).toBe(EXIT.FAILED);
      expect(out.join('\n')).toMatch(/role acme may not create databases; a verification restore needs CREATEDB/);
      expect(readFileSync(latest.metaPath, 'utf8')).toBe(before);
    } finally {
      await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
    }
  });
});
