// Point-in-time recovery on a real cluster that archives WAL: pitr check (a misconfigured cluster
// and a good one), WAL intake (sha256, gaps, conflicting duplicates), base backups that start.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { BaseBackupMetadata, WalRecord } from '../../lib/formats/pitr.js';
import { pgBinDir } from '../../scripts/sandbox/tenants.js';
import { ClusterArchive } from '../../lib/pitr/archive.js';
import { takeInWal, WalConflictError, WalGapError } from '../../lib/pitr/intake.js';
import { clusterOf } from '../../lib/pitr/cluster.js';
import { checkRecoverySpace, planRecovery, recoverDatabase } from '../../lib/pitr/recover.js';
import { safeArchiveCommand } from '../../lib/pitr/settings.js';
import { LocalStore } from '../../lib/storage/local.js';
import { TestFleet, type ProjectSpec } from '../helpers.js';
import { archivingCluster, landingDir, pitrOn } from './support.js';

const SEG = /^[0-9A-F]{24}$/;

describe('point-in-time recovery (real PostgreSQL 15 archiving WAL)', () => {
  let fleet: TestFleet;
  let good = '';
  let bad = '';
  let landing = '';
  const badLanding = () => path.join(fleet.dir, 'wal-bad');

  beforeAll(async () => {
    fleet = new TestFleet();
    bad = `${fleet.prefix}-bad`;
    const [cluster] = await Promise.all([
      archivingCluster(fleet, { databases: ['acme_production', 'beta_production'], archiveTimeout: '60' }),
      // Archiving, but unsafely and into a directory that is not mounted: what pitr check must find.
      fleet.sandbox.startTenant({ name: bad, databases: ['gamma_production'], settings: { archive_mode: 'on', archive_command: 'test ! -f /wal-archive/%f && cp %p /wal-archive/%f' } }),
    ]);
    ({ pg: good, landing } = cluster);
    const projects: [ProjectSpec, string][] = [
      [{ project: 'acme', databases: { production: 'acme_production' }, database: pitrOn(landing) }, good],
      [{ project: 'beta', databases: { production: 'beta_production' }, database: pitrOn(landing) }, good],
      [{ project: 'gamma', databases: { production: 'gamma_production' }, database: pitrOn(await landingDir(fleet, badLanding())) }, bad],
    ];
    for (const [p, c] of projects) fleet.containerOf.set(p.project, c);
    fleet.projects = projects.map(([p]) => p);
    fleet.writeConfig();
    await fleet.sql('acme', 'acme_production', 'CREATE TABLE orders (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); INSERT INTO orders (id) SELECT generate_series(1, 1000)');
  }, 120_000);

  afterAll(async () => {
    await fleet?.cleanup();
  });

  const archive = () => new ClusterArchive(new LocalStore(fleet.backupRoot), good);
  const records = async () => (await archive().walRecords()).items;

  /** Write, force a switch, and wait until the segment it closed is in `dir`: returns its name. */
  async function landOne(dir = landing): Promise<string> {
    await fleet.sql('acme', 'acme_production', `INSERT INTO orders (id) SELECT coalesce(max(id), 0) + 1 FROM orders`);
    const seg = (await fleet.sql('acme', 'postgres', 'select pg_walfile_name(pg_switch_wal())')).trim();
    for (let i = 0; i < 150 && !existsSync(path.join(dir, seg)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(path.join(dir, seg)), `${seg} landed`).toBe(true);
    return seg;
  }

  it('pitr check fails a misconfigured cluster and prints the exact settings and mount to add', async () => {
    const r = await fleet.cli(['pitr', 'check', 'gamma', 'production', '--wait', '5s']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('archive_timeout is 0s');
    expect(r.stdout).toContain('copies straight to the final name, so a half-copied segment can look whole');
    expect(r.stdout).toContain('  archive_timeout = 60\n');
    expect(r.stdout).toContain(`  archive_command = '${safeArchiveCommand()}'\n`);
    expect(r.stdout).toContain(`  -v ${badLanding()}:/wal-archive\n`);
    expect(r.stdout).toContain('/wal-archive is not mounted from the host');
    expect(r.stderr).toMatch(/WAL archiving is not healthy \(\d problem\(s\)/);
    expect(readdirSync(badLanding())).toEqual([]);
  }, 60_000);

  it('pitr check passes a good cluster: the forced segment lands and is taken in, a sha256 each, the landing directory emptied', async () => {
    const r = await fleet.cli(['pitr', 'check', 'acme', 'production']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`cluster ${good} (acme/production, beta/production)`);
    expect(r.stdout).toMatch(/ok: forced a segment switch; [0-9A-F]{24} landed after/);
    expect(r.stdout).toContain(`healthy: ${good} archives its WAL into ${landing}`);
    const forced = /forced a segment switch; ([0-9A-F]{24})/.exec(r.stdout)![1];
    expect(readdirSync(landing).filter((n) => SEG.test(n))).toEqual([]);
    const recs = await records();
    const rec = recs.find((x) => x.name === forced)!;
    expect(WalRecord.parse(rec)).toMatchObject({ kind: 'segment', timeline: 1, size_bytes: 16 << 20, stored: { file: `${forced}.zst`, compression: 'zstd' } });
    // The stored object is the segment, compressed: its own sha256 and, decompressed, the segment's.
    const file = path.join(fleet.backupRoot, '_clusters', good, 'wal', `${forced}.zst`);
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(rec.stored.sha256);
    const raw = await fleet.runner.run(['sh', '-c', 'zstd -dc -- "$1" | sha256sum', 'sh', file]);
    expect(raw.stdout.split(' ')[0]).toBe(rec.sha256);
    expect(rec.stored.size_bytes).toBeLessThan(rec.size_bytes);
  }, 120_000);

  it('intake: a gap between the first and last segment and a duplicate with other bytes are errors; an identical repeat is removed', async () => {
    const [a, b, c] = [await landOne(), await landOne(), await landOne()];
    const deps = { runner: fleet.runner, clock: () => new Date() };
    // A gap: the first and the third only.
    const gapLanding = path.join(fleet.dir, 'gap');
    mkdirSync(gapLanding);
    for (const n of [a, c]) copyFileSync(path.join(landing, n), path.join(gapLanding, n));
    writeFileSync(path.join(gapLanding, `${b}.part`), 'half a segment');
    const gapStore = new ClusterArchive(new LocalStore(path.join(fleet.dir, 'gap-store')), good);
    const gap = await takeInWal(deps, gapStore, gapLanding).catch((e) => e);
    expect(gap).toBeInstanceOf(WalGapError);
    expect(gap.message).toContain(`${b} missing`);
    expect(gap.missing).toEqual([b]);
    expect(readdirSync(gapLanding)).toEqual([`${b}.part`]); // both whole ones taken in (safe), the .part untouched
    expect((await gapStore.walRecords()).items.map((x) => x.name)).toEqual([a, c]);
    // A conflicting duplicate: the same name, one byte changed: an error, the file left where it is.
    const dupLanding = path.join(fleet.dir, 'dup');
    mkdirSync(dupLanding);
    const bytes = readFileSync(path.join(landing, a));
    bytes[100] ^= 0xff;
    writeFileSync(path.join(dupLanding, a), bytes);
    const dup = await takeInWal(deps, gapStore, dupLanding).catch((e) => e);
    expect(dup).toBeInstanceOf(WalConflictError);
    expect(dup.message).toMatch(new RegExp(`WAL ${a} is already in the archive with sha256 [0-9a-f]{64}, and the landing directory holds one with sha256 [0-9a-f]{64}`));
    expect(readdirSync(dupLanding)).toEqual([a]);
    // An identical repeat (the archiver retrying after a crash) is removed, taken in once.
    copyFileSync(path.join(landing, a), path.join(dupLanding, a));
    const again = await takeInWal(deps, gapStore, dupLanding).catch((e) => e);
    expect(again).toBeInstanceOf(WalGapError); // still the gap, but the repeat went
    expect(readdirSync(dupLanding)).toEqual([]);
    // The real archive takes the three in order through the CLI.
    const r = await fleet.cli(['pitr', 'archive']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`${good}: 3 WAL file(s) taken in; newest segment ${c}`);
    expect((await records()).map((x) => x.name)).toEqual(expect.arrayContaining([a, b, c]));
  }, 120_000);

  it("basebackup: one tar streamed from the container, compressed and checksummed, metadata last; it restores into a fresh data directory that starts and holds the data", async () => {
    const rows = (await fleet.sql('acme', 'acme_production', 'select count(*) from orders')).trim();
    const r = await fleet.cli(['basebackup', 'acme', 'production']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const file = r.stdout.trim().split('\n').at(-1)!;
    expect(path.dirname(file)).toBe(path.join(fleet.backupRoot, '_clusters', good, 'base'));
    expect(path.basename(file)).toMatch(/^base_\d{8}_\d{6}Z\.tar\.zst$/);
    const meta = BaseBackupMetadata.parse(JSON.parse(readFileSync(file + '.json', 'utf8')));
    expect(meta).toMatchObject({ container: good, file: path.basename(file), timeline: 1, compression: { algorithm: 'zstd', level: 3 } });
    expect(meta.databases).toEqual(['acme_production', 'beta_production', 'postgres']);
    expect(meta.server_version_num).toBeGreaterThanOrEqual(150000);
    expect(meta.pg_basebackup_version).toMatch(/^pg_basebackup \(PostgreSQL\) 15/);
    const lsn = (l: string) => l.split('/').reduce((a, h) => a * 2 ** 32 + parseInt(h, 16), 0);
    expect(lsn(meta.stop_lsn)).toBeGreaterThan(lsn(meta.start_lsn));
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(meta.sha256);
    expect(readFileSync(file).length).toBe(meta.size_bytes);
    // The tar's own size, counted as it streamed: what decompressing it gives.
    expect(meta.tar_size_bytes).toBe(Number((await fleet.runner.run(['sh', '-c', 'zstd -dc -- "$1" | wc -c', 'sh', file])).stdout.trim()));
    // Stock tools only: zstd -dc | tar -x into an empty directory, then pg_ctl start.
    const root = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-pitr-restore-'));
    chmodSync(root, 0o755);
    const data = path.join(root, 'data');
    mkdirSync(data, { mode: 0o700 });
    const pg = (bin: string, ...args: string[]) => fleet.runner.run(['runuser', '-u', 'postgres', '--', path.join(pgBinDir(), bin), ...args]);
    try {
      await fleet.runner.run(['sh', '-c', 'zstd -dc -- "$1" | tar -x -C "$2" && chown -R postgres:postgres "$3"', 'sh', file, data, root]);
      expect(existsSync(path.join(data, 'backup_label'))).toBe(true);
      expect(readdirSync(path.join(data, 'pg_wal')).filter((n) => SEG.test(n)).length).toBeGreaterThan(0); // -X fetch: the WAL it needs is inside
      await pg('pg_ctl', '-D', data, '-w', '-t', '60', '-l', path.join(root, 'log'), '-o', `-c listen_addresses= -k ${root} -p 5999 -c archive_mode=off`, 'start');
      const got = await pg('psql', '-X', '-A', '-t', '-h', root, '-p', '5999', '-U', 'postgres', '-d', 'acme_production', '-c', 'select count(*) from orders');
      expect(got.stdout.trim()).toBe(rows);
      const dbs = await pg('psql', '-X', '-A', '-t', '-h', root, '-p', '5999', '-U', 'postgres', '-d', 'postgres', '-c', 'select string_agg(datname, \',\' order by datname) from pg_database where not datistemplate');
      expect(dbs.stdout.trim()).toBe('acme_production,beta_production,postgres');
    } finally {
      await pg('pg_ctl', '-D', data, '-m', 'immediate', 'stop').catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    }
  }, 180_000);

  it('status shows the restorable window and the ages; stale archiving fails it; scheduled-backup takes the WAL in and a base backup when due', async () => {
    const seg = await landOne(); // waiting in the landing directory (with those the base backup switched out): status counts them, read-only
    const waiting = readdirSync(landing).filter((n) => SEG.test(n)).length;
    const st = await fleet.cli(['status', '--json']);
    const report = JSON.parse(st.stdout) as { targets: { project: string; problems: string[]; pitr: Record<string, any> | null }[] };
    const acme = report.targets.find((t) => t.project === 'acme')!;
    expect(acme.pitr).toMatchObject({ container: good, max_wal_age_seconds: 300, waiting, base_backups: 1, newest_segment: { name: seg }, archiver: { failing: false }, problems: [] });
    expect(acme.pitr!.newest_segment.age_seconds).toBeLessThan(60);
    expect(acme.pitr!.window.from).toBe(acme.pitr!.newest_base_backup.finished_at);
    expect(acme.pitr!.window.to >= acme.pitr!.window.from).toBe(true);
    expect(acme.problems.filter((p) => p.startsWith('pitr:'))).toEqual([]);
    expect(report.targets.find((t) => t.project === 'beta')!.pitr).toEqual(acme.pitr); // one cluster, one answer
    expect(readdirSync(landing)).toContain(seg); // status took nothing in
    const table = await fleet.cli(['status']);
    expect(table.stdout).toMatch(new RegExp(`restorable window of cluster ${good}: \\S+ … \\S+`));
    // Ten minutes on: archiving is stale (max_wal_age 5m) and status fails for it.
    const later = new Date(Date.now() + 600_000).toISOString();
    const stale = await fleet.cli(['status', '--json'], { env: { PGFLEET_NOW: later } });
    expect(stale.code).toBe(1);
    const sp = (JSON.parse(stale.stdout) as typeof report).targets.find((t) => t.project === 'acme')!.problems;
    expect(sp).toEqual(expect.arrayContaining([expect.stringMatching(/^pitr: newest archived WAL segment [0-9A-F]{24} is \d+s old \(max_wal_age 300s\): archiving is stale/)]));
    // scheduled-backup: the dumps, then the cluster: the waiting WAL taken in, no base backup due yet…
    const sb = await fleet.cli(['scheduled-backup', '--project', 'acme']);
    expect(sb.code, sb.stdout + sb.stderr).toBe(0);
    const taken = new RegExp(`cluster ${good}: OK: (\\d+) WAL file\\(s\\) taken in, no base backup due`).exec(sb.stdout);
    expect(Number(taken?.[1]), sb.stdout).toBeGreaterThanOrEqual(waiting + 1); // the segments, the base backup's .backup file (and any archive_timeout switched out since)
    expect(readdirSync(landing).filter((n) => SEG.test(n))).toEqual([]);
    // …and two days on, one is due and taken.
    const due = await fleet.cli(['scheduled-backup', '--project', 'beta'], { env: { PGFLEET_NOW: new Date(Date.now() + 2 * 86_400_000).toISOString() } });
    expect(due.code, due.stdout + due.stderr).toBe(0);
    expect(due.stdout).toMatch(new RegExp(`cluster ${good}: OK: 0 WAL file\\(s\\) taken in, base backup base_\\d{8}_\\d{6}Z \\(`));
    expect((await archive().baseBackups()).items).toHaveLength(2);
  }, 240_000);

  it("recovery by hand, as the README says: the base backup's tar, restore_command over the repository's WAL, recovery_target_time between two writes, promote", async () => {
    const bb = await fleet.cli(['basebackup', 'acme', 'production']);
    expect(bb.code, bb.stdout + bb.stderr).toBe(0);
    await fleet.sql('acme', 'acme_production', "CREATE TABLE marks (what text, at timestamptz DEFAULT clock_timestamp()); INSERT INTO marks (what) VALUES ('before')");
    await new Promise((r) => setTimeout(r, 1100));
    const target = (await fleet.sql('acme', 'postgres', "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")).trim();
    await new Promise((r) => setTimeout(r, 1100));
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('after')");
    await landOne();
    const ar = await fleet.cli(['pitr', 'archive', 'acme', 'production']);
    expect(ar.code, ar.stdout + ar.stderr).toBe(0);
    const B = path.join(fleet.backupRoot, '_clusters', good);
    const newestBase = (await archive().baseBackups()).items.map((b) => b.id).sort().at(-1)!;
    const root = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-pitr-byhand-'));
    chmodSync(root, 0o755);
    const data = path.join(root, 'recover');
    const wal = path.join(root, 'wal');
    const pg = (bin: string, ...args: string[]) => fleet.runner.run(['runuser', '-u', 'postgres', '--', path.join(pgBinDir(), bin), ...args]);
    try {
      // The README's lines, with its paths replaced.
      const script = [
        `mkdir -m 700 ${data}`,
        `zstd -dc ${B}/base/${newestBase}.tar.zst | tar -x -C ${data}`,
        `cp -r ${B}/wal ${wal}`,
        `cat >> ${data}/postgresql.auto.conf <<'CONF'`,
        `restore_command = 'zstd -q -d -f -o %p ${wal}/%f.zst'`,
        `recovery_target_time = '${target}'`,
        `recovery_target_action = 'promote'`,
        `archive_mode = off`,
        `CONF`,
        `touch ${data}/recovery.signal && chown -R postgres:postgres ${data} ${wal} ${root}`,
      ].join('\n');
      await fleet.runner.run(['sh', '-ec', script]);
      await pg('pg_ctl', '-D', data, '-w', '-t', '120', '-l', path.join(root, 'log'), '-o', `-c listen_addresses= -k ${root} -p 5998`, 'start');
      const q = (db: string, sql: string) => pg('psql', '-X', '-A', '-t', '-h', root, '-p', '5998', '-U', 'postgres', '-d', db, '-c', sql).then((r) => r.stdout.trim());
      for (let i = 0; i < 300 && (await q('postgres', 'select pg_is_in_recovery()')) !== 'f'; i++) await new Promise((r) => setTimeout(r, 200));
      expect(await q('postgres', 'select pg_is_in_recovery()')).toBe('f'); // promoted
      expect(await q('acme_production', 'select string_agg(what, \',\' order by at) from marks')).toBe('before');
      expect(readFileSync(path.join(root, 'log'), 'utf8')).toMatch(/recovery stopping before commit of transaction \d+, time /);
      expect(await fleet.sql('acme', 'acme_production', "select string_agg(what, ',' order by at) from marks")).toBe('before,after\n'); // the live cluster untouched
    } finally {
      await pg('pg_ctl', '-D', data, '-m', 'immediate', 'stop').catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    }
  }, 240_000);

  it('recoverDatabase: a temporary postmaster in the tenant container recovers to a time between two writes and dumps the one database; it leaves nothing behind', async () => {
    const bb = await fleet.cli(['basebackup', 'acme', 'production']);
    expect(bb.code, bb.stdout + bb.stderr).toBe(0);
    await fleet.sql('acme', 'acme_production', "CREATE TABLE IF NOT EXISTS marks2 (what text); INSERT INTO marks2 VALUES ('one')");
    await new Promise((r) => setTimeout(r, 1100));
    const to = new Date(Number((await fleet.sql('acme', 'postgres', 'select extract(epoch from clock_timestamp()) * 1000')).trim()));
    await new Promise((r) => setTimeout(r, 1100));
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks2 VALUES ('two')");
    await landOne();
    expect((await fleet.cli(['pitr', 'archive'])).code).toBe(0);
    const { ctx } = fleet.context();
    const c = clusterOf(ctx.config, ctx.config.targets.find((t) => t.project === 'acme')!);
    const outFile = path.join(fleet.dir, 'recovered.dump');
    const cli = await fleet.cli(['pitr', 'recover', 'acme', 'production', '--to', to.toISOString(), '--out', outFile]);
    expect(cli.code, cli.stdout + cli.stderr).toBe(0);
    expect(cli.stdout.trim().split('\n')).toEqual([`restore it safely with: pgfleet restore acme production ${outFile}`, outFile]);
    await stockRestoreDump(outFile, 'acme_recovered');
    expect(await fleet.sql('acme', 'acme_recovered', "select string_agg(what, ',') from marks2")).toBe('one\n');
    expect(await fleet.sql('acme', 'acme_production', "select string_agg(what, ',' order by what) from marks2")).toBe('one,two\n'); // the live one untouched by the recovery
    const left = await fleet.runner.run(['podman', 'exec', good, 'sh', '-c', 'ls -d /tmp/pgfleet-recover-* 2>/dev/null; ps -eo args | grep -c "[p]ostgres -D /tmp/pgfleet-recover" || true']);
    expect(left.stdout.trim()).toBe('0');
    // Through the safe restore, over the live database: the tenant back at the target, the other tenant untouched.
    await fleet.sql('beta', 'beta_production', "CREATE TABLE IF NOT EXISTS notes (n int); INSERT INTO notes VALUES (1)");
    const over = await fleet.cli(['restore', 'acme', 'production', outFile, '--yes']);
    expect(over.code, over.stdout + over.stderr).toBe(0);
    expect(await fleet.sql('acme', 'acme_production', "select string_agg(what, ',') from marks2")).toBe('one\n');
    expect(await fleet.sql('beta', 'beta_production', 'select count(*) from notes')).toBe('1\n');
    // The space check reads the tar's size from the metadata; for metadata from before it was recorded it counts it: the same figure.
    const plan = await planRecovery(ctx, c, 'latest');
    const { tar_size_bytes, ...old } = plan.base;
    expect(tar_size_bytes).toBeGreaterThan(0);
    expect((await checkRecoverySpace(ctx, c, { ...plan, base: old })).needed).toBe((await checkRecoverySpace(ctx, c, plan)).needed);
    // Before the earliest base backup: refused, naming the earliest point.
    const early = await recoverDatabase(ctx, c, { to: new Date('2000-01-01T00:00:00Z'), database: 'acme_production', outFile }).catch((e) => e);
    expect(early.message).toMatch(/2000-01-01T00:00:00.000Z is outside the restorable window: earliest \d{4}-\S+, latest \d{4}-/);
    expect(early.exitCode).toBe(2);
  }, 240_000);

  async function stockRestoreDump(file: string, db: string) {
    await fleet.runner.run(['podman', 'exec', good, 'createdb', '-U', 'postgres', db]);
    await fleet.runner.run(['sh', '-c', `podman exec -i ${good} pg_restore -U postgres --exit-on-error -d ${db} < "$1"`, 'sh', file]);
  }
});
