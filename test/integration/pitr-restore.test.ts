// restore --to: one tenant's database of a shared, archiving cluster restored to a point in time
// through the safe restore, the other tenant untouched; the window status shows is the one restore
// accepts; a gap in the archive and a point outside the window refused before anything is
// touched; SIGINT mid-recovery leaves no temporary instance and no temporary file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { TestFleet, type ProjectSpec } from '../helpers.js';
import { archivingCluster, pitrOn } from './support.js';

describe('restore --to (real PostgreSQL 15 archiving WAL, two tenants in one cluster)', () => {
  let fleet: TestFleet;
  let pg = '';
  let app = '';
  let landing = '';

  const startedAt = async (name: string) => (await fleet.runner.run(['podman', 'inspect', '--format', '{{.State.StartedAt}}', name])).stdout.trim();
  const now = async () => (await fleet.sql('acme', 'postgres', "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")).trim();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** What a recovery could leave: its directory and postmaster in the container, its dump directory on the host. */
  async function leftovers(): Promise<{ container: string; host: string[] }> {
    const r = await fleet.runner.run(['podman', 'exec', pg, 'sh', '-c', 'ls -d /tmp/"$1"-* 2>/dev/null; ps -eo args | grep -E "^[^ ]*postgres .*-D /tmp/$1" || true', 'sh', 'pgfleet-recover']);
    return { container: r.stdout.trim(), host: readdirSync(fleet.backupRoot).filter((n) => n.startsWith('.pitr-restore-')) };
  }
  /** Force a segment switch and take what landed into the repository. */
  async function archiveNow() {
    await fleet.sql('acme', 'postgres', 'select pg_switch_wal()');
    await pause(1500);
    const r = await fleet.cli(['pitr', 'archive', 'acme', 'production']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }
  async function windowOf(): Promise<{ from: string; to: string }> {
    const st = await fleet.cli(['status', '--json']);
    return (JSON.parse(st.stdout) as { targets: { project: string; pitr: { window: { from: string; to: string } } }[] }).targets.find((t) => t.project === 'acme')!.pitr.window;
  }
  const shift = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

  beforeAll(async () => {
    fleet = new TestFleet();
    app = `${fleet.prefix}-acme-app`;
    // archive_timeout off (the helper's default): segments switch only when the test forces it, so the window moves only then.
    const [cluster] = await Promise.all([archivingCluster(fleet, { databases: ['acme_production', 'beta_production'] }), fleet.sandbox.startApp(app)]);
    ({ pg, landing } = cluster);
    const pitr = pitrOn(landing);
    const projects: ProjectSpec[] = [
      { project: 'acme', databases: { production: 'acme_production' }, database: { ...pitr, app_containers: { production: [app] } } },
      { project: 'beta', databases: { production: 'beta_production' }, database: pitr },
    ];
    for (const p of projects) fleet.containerOf.set(p.project, pg);
    fleet.projects = projects;
    fleet.writeConfig();
    for (const p of ['acme', 'beta'] as const) await fleet.sql(p, `${p}_production`, 'CREATE TABLE marks (what text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const bb = await fleet.cli(['basebackup', 'acme', 'production']);
    expect(bb.code, bb.stdout + bb.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await fleet?.cleanup();
  });

  let target = '';

  it('restore --to an instant between two writes: the tenant has exactly the rows committed by then, the other tenant untouched, the app stopped and started, nothing left', async () => {
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('acme 1'), ('acme 2')");
    await fleet.sql('beta', 'beta_production', "INSERT INTO marks (what) VALUES ('beta early')");
    await pause(1100);
    target = await now();
    await pause(1100);
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('acme late'); DELETE FROM marks WHERE what = 'acme 1'");
    await fleet.sql('beta', 'beta_production', "INSERT INTO marks (what) VALUES ('beta late')");
    await archiveNow();
    const committed = (await fleet.sql('acme', 'acme_production', `select string_agg(what, ',' order by what) from marks`)).trim();
    expect(committed).toBe('acme 2,acme late');

    // --dry-run: the plan, and nothing touched.
    const dry = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`from          acme_production as it was at ${target}, recovered by a temporary instance in container ${pg}`);
    expect(dry.stdout).toMatch(/base backup   base_\d{8}_\d{6}Z \(finished /);
    expect(dry.stdout).toMatch(new RegExp(`WAL           [0-9A-F]{24} … [0-9A-F]{24} \\(\\d+ segment\\(s\\)[^)]*\\), replayed to ${target.replace(/\./g, '\\.')} inclusive, then promoted`));
    expect(dry.stdout).toMatch(/space         [\d.]+ \S+ needed in the container's \/tmp, [\d.]+ \S+ free/);
    expect(dry.stdout).toContain('5. swap        acme_production → acme_production__before_<stamp> (kept), scratch → acme_production');
    expect(dry.stdout).toContain('dry run: nothing changed');
    expect((await fleet.sql('acme', 'acme_production', `select string_agg(what, ',' order by what) from marks`)).trim()).toBe(committed);
    expect(await leftovers()).toEqual({ container: '', host: [] });

    const appStarted = await startedAt(app);
    const r = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await fleet.sql('acme', 'acme_production', `select string_agg(what, ',' order by what) from marks`)).toBe('acme 1,acme 2\n');
    expect(await fleet.sql('beta', 'beta_production', `select string_agg(what, ',' order by what) from marks`)).toBe('beta early,beta late\n');
    expect(await fleet.sandbox.isRunning(app)).toBe(true);
    expect(await startedAt(app)).not.toBe(appStarted); // stopped for the swap and started again
    expect(r.stdout).toMatch(/the replaced database is kept as (acme_production__before_\d{8}_\d{6})/);
    const kept = /kept as (acme_production__before_\d{8}_\d{6})/.exec(r.stdout)![1];
    expect(await fleet.sql('acme', kept, `select string_agg(what, ',' order by what) from marks`)).toBe('acme 2,acme late\n');
    expect(r.stdout).toMatch(/safety backup: db_\d{8}_\d{6}Z/);
    // The recovered dump carries the recovered instance's row counts: the restored copy was checked against them.
    expect(r.stdout).toContain(`restored acme_production as it was at ${target} into acme_production: 1 tables, 2 rows, row counts match the recovered instance`);
    expect(r.stderr).not.toContain('cannot be checked against recorded row counts');
    const checked = r.stderr.split('\n').filter((l) => l.includes('"restored and checked"')).map((l) => JSON.parse(l) as { tables: number; rows: number });
    expect(checked).toEqual([expect.objectContaining({ tables: 1, rows: 2 })]);
    expect(await leftovers()).toEqual({ container: '', host: [] });
  }, 300_000);

  it("the window status shows is the one restore accepts: just inside accepted, just outside refused naming both points (exit 2)", async () => {
    const w = await windowOf();
    expect(w.from < target && target < w.to).toBe(true);
    for (const inside of [w.from, w.to, 'latest']) {
      const r = await fleet.cli(['restore', 'acme', 'production', '--to', inside, '--dry-run']);
      expect(r.code, `${inside}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    const latest = await fleet.cli(['restore', 'acme', 'production', '--to', 'latest', '--dry-run']);
    expect(latest.stdout).toContain(`as it was at ${w.to} (latest: the end of the WAL archive)`);
    expect(latest.stdout).toContain('replayed to the end of the archive, then promoted');
    for (const outside of [shift(w.from, -1), shift(w.to, 1), '2000-01-01T00:00:00Z']) {
      const r = await fleet.cli(['restore', 'acme', 'production', '--to', outside, '--dry-run']);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain(`${pg}: ${new Date(outside).toISOString()} is outside the restorable window: earliest ${w.from}, latest ${w.to}`);
    }
    const bad = await fleet.cli(['restore', 'acme', 'production', '--to', 'yesterday', '--yes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--to must be an ISO-8601 time with its zone');
    expect(await leftovers()).toEqual({ container: '', host: [] });
  }, 180_000);

  it('SIGINT mid-recovery: no temporary instance, directory or file left; the live databases untouched', async () => {
    for (let i = 0; i < 3; i++) {
      await fleet.sql('beta', 'beta_production', `INSERT INTO marks (what) VALUES ('beta filler ${i}')`);
      await fleet.sql('acme', 'postgres', 'select pg_switch_wal()');
    }
    await archiveNow();
    const before = await fleet.sql('acme', 'acme_production', `select string_agg(what, ',' order by what) from marks`);
    let pid = 0;
    const run = fleet.cli(['restore', 'acme', 'production', '--to', 'latest', '--into', 'acme_pitr_copy', '--yes'], { onSpawn: (p) => (pid = p) });
    let seen = false;
    for (let i = 0; i < 600 && !seen; i++) {
      seen = (await leftovers()).container.includes('/tmp/pgfleet-recover-');
      if (!seen) await pause(50);
    }
    expect(seen, 'the recovery directory appeared in the container').toBe(true);
    process.kill(pid, 'SIGINT');
    const r = await run;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(await leftovers()).toEqual({ container: '', host: [] });
    expect(await fleet.sql('acme', 'postgres', "select count(*) from pg_database where datname = 'acme_pitr_copy'")).toBe('0\n');
    expect(await fleet.sql('acme', 'acme_production', `select string_agg(what, ',' order by what) from marks`)).toBe(before);
  }, 240_000);

  it('a segment deleted from the archive: restore past it refused with the gap named (exit 2), nothing touched', async () => {
    const wal = path.join(fleet.backupRoot, '_clusters', pg, 'wal');
    const segs = readdirSync(wal).filter((n) => /^[0-9A-F]{24}\.zst$/.test(n)).sort();
    expect(segs.length).toBeGreaterThan(3);
    const gone = segs[segs.length - 2].slice(0, 24);
    const aside = path.join(fleet.dir, 'aside');
    mkdirSync(aside);
    for (const f of [`${gone}.zst`, `${gone}.zst.json`]) renameSync(path.join(wal, f), path.join(aside, f));
    try {
      const w = await windowOf();
      const r = await fleet.cli(['restore', 'acme', 'production', '--to', 'latest', '--dry-run']);
      expect(r.code, r.stdout + r.stderr).toBe(0); // latest is the end of the window, which stops before the gap
      expect(r.stdout).toContain(`as it was at ${w.to} (latest`);
      const past = await fleet.cli(['restore', 'acme', 'production', '--to', shift(w.to, 1), '--yes']);
      expect(past.code, past.stdout + past.stderr).toBe(2);
      expect(past.stderr).toContain(`the WAL archive has a gap after base backup`);
      expect(past.stderr).toContain(`${gone} missing`);
      expect(await leftovers()).toEqual({ container: '', host: [] });
    } finally {
      for (const f of [`${gone}.zst`, `${gone}.zst.json`]) if (existsSync(path.join(aside, f))) renameSync(path.join(aside, f), path.join(wal, f));
    }
  }, 240_000);
});
