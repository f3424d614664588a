import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, createReadStream, existsSync, mkdtempSync, openSync, readFileSync, readSync, writeSync, closeSync, truncateSync, statSync } from 'node:fs';
import path from 'node:path';
import { ArchiveIndexer, parseToc } from '../../lib/postgres/archive.js';
import { runBackup } from '../../lib/commands/backup.js';
import { runRestore } from '../../lib/commands/restore.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { CommandError, EXIT, PgfleetError } from '../../lib/core/errors.js';
import { leftoverDatabases } from '../../lib/restore/kept.js';
import { runStatus } from '../../lib/commands/status.js';
import { findTarget } from '../../lib/config/load.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { dataDigest, schemaDump, TestFleet } from '../helpers.js';

const PASSWORD = 'Pw-restore-7c1x-secret';

describe('restore over a live database (real PostgreSQL 15 in containers)', () => {
  let fleet: TestFleet;
  let app: string;
  let bulkApp: string;

  const startedAt = async (name: string) => (await fleet.runner.run(['podman', 'inspect', '--format', '{{.State.StartedAt}}', name])).stdout.trim();
  const databases = async (project: string) => (await fleet.sql(project, 'postgres', 'SELECT datname FROM pg_database ORDER BY 1')).split('\n').filter(Boolean);
  const scratchLeft = async (project: string) => (await databases(project)).filter((d) => d.includes('__pgfleet_scratch_'));
  /** Staged copies of dumps left in a container's /tmp. */
  const stagedLeft = async (c: string) => (await fleet.runner.run(['podman', 'exec', c, 'ls', '/tmp'])).stdout.split('\n').filter((f) => f.startsWith('pgfleet-restore-'));
  const props = (project: string, db: string) =>
    fleet.sql(
      project,
      'postgres',
      `SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datconnlimit,
              (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(d.datacl) x),
              (SELECT setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0),
              shobj_description(d.oid, 'pg_database')
       FROM pg_database d WHERE datname = '${db}'`,
    );

  beforeAll(async () => {
    fleet = await TestFleet.create([
      { project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: PASSWORD },
      { project: 'bulk', databases: { production: 'bulk_production' } },
    ]);
    app = `${fleet.prefix}-acme-app`;
    bulkApp = `${fleet.prefix}-bulk-app`;
    await Promise.all([fleet.sandbox.startApp(app), fleet.sandbox.startApp(bulkApp)]);
    fleet.projects[0].database = { app_containers: { production: [app] } };
    fleet.projects[1].database = { app_containers: { production: [bulkApp] } };
    fleet.writeConfig();
    // A safe restore creates and renames databases: the tenant role needs CREATEDB.
    await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB; CREATE ROLE reader LOGIN');
    await fleet.sql('acme', 'acme_production', sampleSql('acme'));
    await fleet.sql(
      'acme',
      'postgres',
      `ALTER DATABASE acme_production SET work_mem = '7MB';
       ALTER DATABASE acme_production SET search_path = "$user", public, "Odd ""Schema""";
       REVOKE CONNECT, TEMPORARY ON DATABASE acme_production FROM PUBLIC;
       GRANT CONNECT ON DATABASE acme_production TO reader;
       ALTER DATABASE acme_production CONNECTION LIMIT 50;
       COMMENT ON DATABASE acme_production IS 'acme — live';`,
    );
    await fleet.sql(
      'bulk',
      'bulk_production',
      `CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b FROM generate_series(1, 600000) g;
       ALTER TABLE big ADD PRIMARY KEY (id); CREATE INDEX big_a ON big (a); CREATE INDEX big_b ON big (b);
       CREATE TABLE big2 AS SELECT * FROM big; CREATE INDEX big2_a ON big2 (a);`,
    );
  });
  afterAll(() => fleet?.cleanup());

  it('restores a backup safely: safety backup, apps stopped and started, swap keeps settings, old database kept', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const schema = await schemaDump(fleet.runner, c, 'acme_production');
    const digest = await dataDigest(fleet.sandbox, c, 'acme_production');
    const before = await props('acme', 'acme_production');
    expect(before).toContain('reader=c/acme');
    // The live database moves on after the backup.
    await fleet.sql('acme', 'acme_production', `INSERT INTO "Customer" ("FullName") VALUES ('after the backup'); SET ROLE acme; DROP VIEW "HappyCustomers"; CREATE TABLE junk (x int)`);
    const appStarted = await startedAt(app);
    // A client still connected to the live database (as the tenant role): the swap ends its session.
    const session = fleet.runner.spawn(['podman', 'exec', '-e', 'PGPASSWORD', c, 'psql', '-X', '-U', 'acme', '-d', 'acme_production', '-c', 'SELECT pg_sleep(600)'], { env: { PGPASSWORD: PASSWORD } });
    while ((await fleet.sql('acme', 'postgres', `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'`)).trim() === '0') await new Promise((r) => setTimeout(r, 50));

    const { ctx: rctx, out, logs } = fleet.context();
    const r = await runRestore(rctx, { project: 'acme', environment: 'production', source: b.meta.id, yes: true });
    await expect(session.done).rejects.toThrow(/terminat/);

    expect(await schemaDump(fleet.runner, c, 'acme_production')).toBe(schema);
    expect(await dataDigest(fleet.sandbox, c, 'acme_production')).toEqual(digest);
    expect(await props('acme', 'acme_production')).toBe(before);
    expect(await fleet.sandbox.isRunning(app)).toBe(true);
    expect(await startedAt(app)).not.toBe(appStarted); // it was stopped and started again
    // The replaced database is kept, with what was written after the backup, and listed as a leftover.
    expect(r.previousDatabase).toMatch(/^acme_production__before_\d{8}_\d{6}$/);
    expect(await leftoverDatabases(rctx, findTarget(rctx.config, 'acme', 'production'))).toEqual([r.previousDatabase]);
    const { ctx: sctx, out: sout } = fleet.context();
    const st = await runStatus(sctx, {});
    expect(st.report.targets.find((t) => t.project === 'acme')?.leftover_databases).toEqual([r.previousDatabase]);
    expect(sout.join('\n')).toContain(`acme/production: ${r.previousDatabase}`);
    expect(await fleet.sql('acme', r.previousDatabase!, `SELECT count(*) FROM junk`)).toBe('0\n');
    expect(await scratchLeft('acme')).toEqual([]);
    const safety = (await rctx.repo.list('acme', 'production')).filter((x) => x.meta.type === 'safety');
    expect(safety.map((s) => s.meta.id)).toEqual([r.safetyBackup]);
    expect(out.join('\n')).toContain(`DROP DATABASE "${r.previousDatabase}"`);
    expect(logs.some((l) => /"step":"swap/.test(l))).toBe(true);
    expect([...out, ...logs].join('\n')).not.toContain(PASSWORD);
  });

  it('refuses a dump with one byte flipped, and a truncated one, before touching anything', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const digest = await dataDigest(fleet.sandbox, c, 'acme_production');
    const dbs = await databases('acme');
    const backups = (await ctx.repo.list('acme', 'production')).length;
    const appStarted = await startedAt(app);

    // One byte flipped in the middle of the stored backup (restored by id).
    const fd = openSync(b.path, 'r+');
    const mid = Math.floor(statSync(b.path).size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, mid);
    writeSync(fd, Buffer.from([byte[0] ^ 0xff]), 0, 1, mid);
    closeSync(fd);
    const flipped = await runRestore(fleet.context().ctx, { project: 'acme', environment: 'production', source: b.meta.id, yes: true }).catch((e) => e);
    expect(flipped).toBeInstanceOf(PgfleetError);
    expect(flipped.exitCode).toBe(EXIT.VERIFY_FAILED);
    expect(flipped.message).toMatch(/sha256 is [0-9a-f]{64} but its metadata says [0-9a-f]{64}: the file is damaged/);
    const fd2 = openSync(b.path, 'r+');
    writeSync(fd2, byte, 0, 1, mid);
    closeSync(fd2);

    // A truncated copy, named by its path, next to its metadata.
    const dir = mkdtempSync(path.join(fleet.dir, 'copy-'));
    const copy = path.join(dir, path.basename(b.path));
    copyFileSync(b.path, copy);
    copyFileSync(b.metaPath, copy + '.json');
    truncateSync(copy, Math.floor(statSync(copy).size / 2));
    const truncated = await runRestore(fleet.context().ctx, { project: 'acme', environment: 'production', source: copy, yes: true }).catch((e) => e);
    expect(truncated).toBeInstanceOf(PgfleetError);
    expect(truncated.exitCode).toBe(EXIT.VERIFY_FAILED);
    expect(truncated.message).toMatch(/is \d+ bytes, metadata says \d+: the file is truncated or damaged/);

    expect(await dataDigest(fleet.sandbox, c, 'acme_production')).toEqual(digest);
    expect(await databases('acme')).toEqual(dbs);
    expect((await ctx.repo.list('acme', 'production')).length).toBe(backups); // no safety backup was taken
    expect(await startedAt(app)).toBe(appStarted); // never stopped
    expect(await fleet.sandbox.isRunning(app)).toBe(true);
    expect(await stagedLeft(c)).toEqual([]);
  });

  it('a restore that fails inside pg_restore leaves the live database intact, the apps running, no scratch database', async () => {
    const c = fleet.container('bulk');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'bulk', environment: 'production', type: 'manual' });
    const digest = await dataDigest(fleet.sandbox, c, 'bulk_production');
    const dbs = await databases('bulk');

    let killed = 0;
    let done = false;
    const killer = (async () => {
      while (!done && !killed) {
        const n = await fleet.sql('bulk', 'postgres', `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pg_restore' AND datname LIKE '%pgfleet_scratch%'`);
        killed = Number(n.trim());
        if (!killed) await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const { ctx: rctx, logs } = fleet.context();
    const err = await runRestore(rctx, { project: 'bulk', environment: 'production', source: b.meta.id, yes: true, safetyBackup: false }).catch((e) => e);
    done = true;
    await killer;
    expect(killed).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(CommandError);
    // Run as `sh -c '… exec pg_restore'` (the data positions written first), it still says which program failed, and for what.
    expect([err.program, err.role]).toEqual(['pg_restore', 'restore']);
    expect(err.message).toMatch(/pg_restore/);
    expect(await dataDigest(fleet.sandbox, c, 'bulk_production')).toEqual(digest);
    expect(await databases('bulk')).toEqual(dbs);
    expect(await fleet.sandbox.isRunning(bulkApp)).toBe(true);
    expect(logs.some((l) => l.includes('start app container'))).toBe(true);
    expect(await stagedLeft(c)).toEqual([]);
  });

  it('--dry-run checks the file, prints the plan and changes nothing', async () => {
    const { ctx } = fleet.context();
    const dbs = await databases('acme');
    const backups = (await ctx.repo.list('acme', 'production')).map((x) => x.meta.id);
    const appStarted = await startedAt(app);
    const { ctx: rctx, out } = fleet.context();
    const r = await runRestore(rctx, { project: 'acme', environment: 'production', latest: true, dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(out.join('\n')).toMatch(/restore plan[\s\S]*swap[\s\S]*dry run: nothing changed/);
    expect(await databases('acme')).toEqual(dbs);
    expect((await ctx.repo.list('acme', 'production')).map((x) => x.meta.id)).toEqual(backups);
    expect(await startedAt(app)).toBe(appStarted);
  });

  it('--into restores into a new database and touches nothing live', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const digest = await dataDigest(fleet.sandbox, c, 'acme_production');
    const appStarted = await startedAt(app);
    await fleet.sql('acme', 'acme_production', `INSERT INTO "Customer" ("FullName") VALUES ('live moves on')`);
    const live = await dataDigest(fleet.sandbox, c, 'acme_production');
    // A container without zstd (e.g. a slim image): the host decompresses and dd stages the archive.
    // (The container's root filesystem is an overlay: this removal never reaches the host.)
    await fleet.runner.run(['podman', 'exec', '-u', 'root', c, 'rm', '-f', '/usr/bin/zstd']);
    const { ctx: rctx, out, logs } = fleet.context();
    await runRestore(rctx, { project: 'acme', environment: 'production', source: b.path, into: 'acme_investigate', yes: true });
    expect(logs.some((l) => l.includes('no zstd in the container'))).toBe(true);
    expect(await dataDigest(fleet.sandbox, c, 'acme_investigate')).toEqual(digest);
    expect(await dataDigest(fleet.sandbox, c, 'acme_production')).toEqual(live);
    expect(await startedAt(app)).toBe(appStarted);
    expect(out.join('\n')).toContain('DROP DATABASE "acme_investigate"');
    const again = await runRestore(fleet.context().ctx, { project: 'acme', environment: 'production', source: b.path, into: 'acme_investigate', yes: true }).catch((e) => e);
    expect(again.message).toMatch(/already exists/);
    expect(await dataDigest(fleet.sandbox, c, 'acme_investigate')).toEqual(digest);
  });

  it('--into, refused by the server (no CREATEDB): its reason and SQLSTATE, nothing created, nothing left staged', async () => {
    const c = fleet.container('acme');
    const b = await runBackup(fleet.context().ctx, { project: 'acme', environment: 'production', type: 'manual' });
    await fleet.sql('acme', 'postgres', 'ALTER ROLE acme NOCREATEDB');
    try {
      const e = await runRestore(fleet.context().ctx, { project: 'acme', environment: 'production', source: b.path, into: 'acme_refused', yes: true }).catch((x) => x);
      expect(e).toBeInstanceOf(PgfleetError);
      expect(e.exitCode).toBe(EXIT.FAILED);
      expect(e.message).toMatch(/could not create database "acme_refused" \(container [^)]+\): permission denied to create database \(SQLSTATE 42501\)/);
    } finally {
      await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
    }
    expect(await databases('acme')).not.toContain('acme_refused');
    expect(await stagedLeft(c)).toEqual([]);
  });

  it('refuses before touching anything when the preflight finds a reason: no live database, no CREATEDB, an app container missing', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const [dbs, backups, appStarted] = [await databases('acme'), (await ctx.repo.list('acme', 'production')).length, await startedAt(app)];
    const refused = async (environment: string, why: RegExp) => {
      const e = await runRestore(fleet.context().ctx, { project: 'acme', environment, source: b.path, yes: true }).catch((x) => x);
      expect(e).toBeInstanceOf(PgfleetError);
      expect(e.exitCode).toBe(EXIT.FAILED);
      expect(e.message).toMatch(why);
      // No safety backup, no database created or renamed, nothing staged, the app never stopped.
      expect(await databases('acme')).toEqual(dbs);
      expect((await ctx.repo.list('acme', 'production')).length).toBe(backups);
      expect(await stagedLeft(c)).toEqual([]);
      expect(await startedAt(app)).toBe(appStarted);
    };
    const spec = fleet.projects[0];
    const [databasesWere, databaseWas] = [spec.databases, spec.database];
    try {
      spec.databases = { ...databasesWere, staging: 'acme_gone' };
      spec.database = { app_containers: { production: [app, `${fleet.prefix}-no-such-app`] } };
      fleet.writeConfig();
      await refused('staging', /database "acme_gone" does not exist \(container [^)]+\); to create it from the dump, restore with --into acme_gone/);
      await refused('production', /app container "[^"]+-no-such-app" \(database\.app_containers\.production\) does not exist/);
      spec.database = databaseWas;
      fleet.writeConfig();
      await fleet.sql('acme', 'postgres', 'ALTER ROLE acme NOCREATEDB');
      await refused('production', /role acme may not create or rename databases; a safe restore needs CREATEDB/);
    } finally {
      await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
      [spec.databases, spec.database] = [databasesWere, databaseWas];
      fleet.writeConfig();
    }
  });

  it('fills in the data positions pg_dump could not write into a pipe: stock pg_restore -j2 of the result is identical', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const digest = await dataDigest(fleet.sandbox, c, 'acme_production');
    const dir = mkdtempSync(path.join(fleet.dir, 'positions-'));
    const raw = path.join(dir, 'archive.dump');
    await fleet.runner.run(['zstd', '-d', '-q', '-o', raw, b.path]);
    const ix = new ArchiveIndexer();
    for await (const chunk of createReadStream(raw)) ix.write(chunk as Buffer);
    const patch = ix.tocPatch();
    expect(ix.problem).toBeUndefined();

    // As written: every entry with data says "position not set" (pg_dump wrote into a pipe).
    const asWritten = parseToc(readFileSync(raw));
    const withData = asWritten.entries.filter((e) => e.flag === 1);
    expect(withData.map((e) => e.desc)).toEqual(expect.arrayContaining(['TABLE DATA', 'BLOBS']));
    expect(withData.length).toBeGreaterThan(5);
    // Filled in: each of them points at a block header carrying its own dump id; nothing else changed.
    const filled = parseToc(patch!);
    const fd = openSync(raw, 'r');
    for (const e of filled.entries) {
      const was = asWritten.entries.find((x) => x.dumpId === e.dumpId)!;
      if (was.flag !== 1) {
        expect([e.flag, e.offset]).toEqual([was.flag, was.offset]);
        continue;
      }
      expect(e.flag).toBe(2);
      const header = Buffer.alloc(6);
      readSync(fd, header, 0, 6, e.offset);
      expect([header[0], header[1], header.readUInt32LE(2)]).toEqual([e.desc === 'BLOBS' ? 3 : 1, 0, e.dumpId]);
    }
    closeSync(fd);
    const out = openSync(raw, 'r+');
    writeSync(out, patch!, 0, patch!.length, 0);
    closeSync(out);

    // Stock tools alone restore the result in parallel, identical to the source.
    await fleet.runner.run(['bash', '-c', 'podman exec -i "$1" dd of=/tmp/positions.dump bs=1M status=none < "$2"', 'stage', c, raw]);
    await fleet.sql('acme', 'postgres', 'CREATE DATABASE acme_positions TEMPLATE template0');
    await fleet.runner.run(['podman', 'exec', c, 'pg_restore', '-j2', '--exit-on-error', '-U', 'postgres', '-d', 'acme_positions', '/tmp/positions.dump']);
    expect(await dataDigest(fleet.sandbox, c, 'acme_positions')).toEqual(digest);
    await fleet.runner.run(['podman', 'exec', c, 'rm', '-f', '/tmp/positions.dump']);

    // pgfleet's own parallel restore uses them.
    const { ctx: rctx, logs } = fleet.context();
    await runRestore(rctx, { project: 'acme', environment: 'production', source: b.meta.id, into: 'acme_positions2', yes: true, jobs: 2 });
    expect(logs.some((l) => l.includes('"data_positions":"filled in"'))).toBe(true);
    expect(await dataDigest(fleet.sandbox, c, 'acme_positions2')).toEqual(digest);
    expect(await stagedLeft(c)).toEqual([]);
  });

  it("sessions held open across a dump or a restore outlive the server's idle timeouts", async () => {
    // pgfleet keeps psql sessions waiting while pg_dump or pg_restore run: the backup's snapshot
    // session (idle in its transaction), the restore's session on `postgres` (create, swap, check)
    // and the one that counts the scratch database's rows. A tenant's idle timeouts must not end them.
    const c = fleet.container('bulk');
    await fleet.sql('bulk', 'postgres', `ALTER DATABASE postgres SET idle_session_timeout = '250ms'; ALTER DATABASE bulk_production SET idle_in_transaction_session_timeout = '250ms'`);
    try {
      const { ctx, logs } = fleet.context();
      const b = await runBackup(ctx, { project: 'bulk', environment: 'production', type: 'manual' });
      const digest = await dataDigest(fleet.sandbox, c, 'bulk_production');
      const r = await runRestore(ctx, { project: 'bulk', environment: 'production', source: b.meta.id, yes: true, safetyBackup: false, jobs: 2 });
      expect(await dataDigest(fleet.sandbox, c, 'bulk_production')).toEqual(digest);
      expect(logs.some((l) => l.includes('"data_positions":"filled in"'))).toBe(true);
      // The sessions did wait longer than the timeouts: pg_restore alone took longer.
      const took = (msg: string) => logs.map((l) => JSON.parse(l)).find((l) => l.msg === msg)?.ms as number;
      expect(took('pg_restore done') - took('database created')).toBeGreaterThan(500);
      await fleet.sql('bulk', 'postgres', `DROP DATABASE "${r.previousDatabase}"`);
      const v = await runVerifyBackups(fleet.context().ctx, { project: 'bulk', backup: b.meta.id });
      expect(v.exitCode).toBe(EXIT.OK);
      expect(await scratchLeft('bulk')).toEqual([]);
    } finally {
      await fleet.sql('bulk', 'postgres', `ALTER DATABASE postgres RESET idle_session_timeout; ALTER DATABASE bulk_production RESET idle_in_transaction_session_timeout`);
    }
  });

  it('CLI: no --yes without a TTY is exit 2; restore and backup of one target meet the lock (exit 3)', async () => {
    const lock = path.join(fleet.backupRoot, 'bulk', 'production', '.lock');
    const backupIds = async () => (await fleet.context().ctx.repo.list('bulk', 'production')).map((x) => x.meta.id);
    const [dbsBefore, backupsBefore] = [await databases('bulk'), await backupIds()];
    const noYes = await fleet.cli(['restore', 'bulk', 'production', '--latest']);
    expect(noYes.code).toBe(EXIT.USAGE);
    expect(noYes.stderr).toMatch(/--yes/);
    // Refused before acting: no safety backup, no database created or renamed, nothing staged, no lock left.
    expect(await databases('bulk')).toEqual(dbsBefore);
    expect(await backupIds()).toEqual(backupsBefore);
    expect(await stagedLeft(fleet.container('bulk'))).toEqual([]);
    expect(existsSync(lock)).toBe(false);

    const restoring = fleet.cli(['restore', 'bulk', 'production', '--latest', '--yes', '--no-safety-backup']);
    const until = Date.now() + 60_000;
    while (!existsSync(lock) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const backup = await fleet.cli(['backup', 'bulk', 'production']);
    const restored = await restoring;
    expect(backup.code).toBe(EXIT.LOCKED);
    expect(backup.stderr).toMatch(/lock/);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/kept as bulk_production__before_/);
    expect(existsSync(lock)).toBe(false);
  });
});
