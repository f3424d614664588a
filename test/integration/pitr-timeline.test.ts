// A timeline switch on a real archiving cluster: the cluster recovered from its own WAL and
// promoted (archive recovery of the live data directory, as a restore of the whole cluster or a
// failover leaves it) goes on on timeline 2. A base backup taken on timeline 1 still recovers past
// the switch: status's window, restore --to and verify-backups follow the history file alike; a
// history file missing from the archive is refused, named.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers.js';
import { archivingCluster, pitrOn, sleep, waitFor } from './support.js';

describe('a timeline switch (real PostgreSQL 15 archiving WAL, promoted onto timeline 2)', () => {
  let fleet: TestFleet;
  let pg = '';
  let dataDir = '';
  const walDir = () => path.join(fleet.backupRoot, '_clusters', pg, 'wal');
  const now = async () => (await fleet.sql('acme', 'postgres', "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")).trim();
  const marks = async (db: string) => (await fleet.sql('acme', db, `select string_agg(what, ',' order by what) from marks`)).trim();
  async function archiveNow() {
    await fleet.sql('acme', 'postgres', 'select pg_switch_wal()');
    await sleep(1500);
    const r = await fleet.cli(['pitr', 'archive', 'acme', 'production']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }
  const pitrStatus = async () =>
    (JSON.parse((await fleet.cli(['status', '--json'])).stdout) as { targets: { pitr: { window: { from: string; to: string }; problems: string[] } }[] }).targets[0].pitr;

  beforeAll(async () => {
    fleet = new TestFleet();
    const c = await archivingCluster(fleet, { databases: ['acme_production'] });
    pg = c.pg;
    dataDir = c.dataDir;
    fleet.containerOf.set('acme', pg);
    fleet.projects = [{ project: 'acme', databases: { production: 'acme_production' }, database: pitrOn(c.landing) }];
    fleet.writeConfig();
    await fleet.sql('acme', 'acme_production', 'CREATE TABLE marks (what text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const bb = await fleet.cli(['basebackup', 'acme', 'production']);
    expect(bb.code, bb.stdout + bb.stderr).toBe(0);
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('tl1')");
    await archiveNow();
    // The promotion: the live data directory recovered from its own pg_wal (restore_command finds nothing), then onto a new timeline.
    await fleet.runner.run(['podman', 'stop', '-t', '60', pg]);
    writeFileSync(path.join(dataDir, 'recovery.signal'), '');
    appendFileSync(path.join(dataDir, 'postgresql.auto.conf'), "restore_command = 'false'\n");
    await fleet.runner.run(['chown', 'postgres:postgres', path.join(dataDir, 'recovery.signal'), path.join(dataDir, 'postgresql.auto.conf')]);
    await fleet.runner.run(['podman', 'start', pg]);
    await fleet.sandbox.waitReady(pg, 60_000);
    await waitFor('the promotion', async () => (await fleet.sql('acme', 'postgres', 'select pg_is_in_recovery()')).trim() === 'f', 60_000, 200);
    expect((await fleet.sql('acme', 'postgres', 'select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)')).trim()).toBe('00000002');
  }, 240_000);

  afterAll(async () => {
    await fleet?.cleanup();
  });

  let target = '';

  it('status, restore --to and verify-backups follow the switch: the window extends across it, a point on timeline 2 is restored exactly, the chain recovers to its newest segment', async () => {
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('tl2 early')");
    await sleep(1100);
    target = await now();
    await sleep(1100);
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('tl2 late')");
    await archiveNow();
    expect(existsSync(path.join(walDir(), '00000002.history.zst.json')), 'the history file was taken in').toBe(true);
    const tl2 = readdirSync(walDir()).filter((n) => /^00000002[0-9A-F]{16}\.zst$/.test(n)).map((n) => n.slice(0, 24)).sort();
    expect(tl2.length).toBeGreaterThan(0);

    const st = await pitrStatus();
    expect(st.problems).toEqual([]);
    expect(st.window.to > target).toBe(true);

    const dry = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--into', 'acme_tl2', '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/timelines     1 → 2 \(switch at 00000002[0-9A-F]{16}\) \(recovery follows the timeline switch, as the history file says\)/);

    const r = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--into', 'acme_tl2', '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('row counts match the recovered instance');
    expect(await marks('acme_tl2')).toBe('tl1,tl2 early');
    expect(await marks('acme_production')).toBe('tl1,tl2 early,tl2 late');

    const v = await fleet.cli(['verify-backups', 'acme', 'production']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`passed  cluster ${pg} base_\\d{8}_\\d{6}Z: recovered through \\d+ WAL segment\\(s\\) to ${tl2.at(-1)}`));
  }, 300_000);

  it('the history file missing from the archive: status fails naming it, restore past the switch is refused (exit 2), verification fails (exit 4)', async () => {
    const aside = path.join(fleet.dir, 'aside');
    mkdirSync(aside);
    const files = ['00000002.history.zst', '00000002.history.zst.json'];
    for (const f of files) renameSync(path.join(walDir(), f), path.join(aside, f));
    try {
      const st = await pitrStatus();
      expect(st.problems).toEqual(expect.arrayContaining([expect.stringContaining('(00000002.history missing): recovery cannot follow the timeline switch')]));
      const r = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--into', 'acme_tl2_again', '--yes']);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain('00000002.history missing');
      expect(r.stderr).toContain('take a new base backup');
      const v = await fleet.cli(['verify-backups', 'acme', 'production']);
      expect(v.code, v.stdout + v.stderr).toBe(4);
      expect(v.stdout + v.stderr).toContain('00000002.history missing');
    } finally {
      for (const f of files) renameSync(path.join(aside, f), path.join(walDir(), f));
    }
  }, 240_000);
});
