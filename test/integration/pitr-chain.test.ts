// The chain of a base backup on a real cluster archiving WAL: verify-backups recovers it to the end
// of the archive and records the result; a deleted segment and a flipped byte are caught (exit 4,
// the segment named); retention removes old base backups and the WAL before the oldest kept one,
// never a segment a kept base backup needs (the chain still verifies after it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BaseBackupMetadata } from '../../lib/formats/pitr.js';
import { ClusterArchive } from '../../lib/pitr/archive.js';
import { segmentOfLsn } from '../../lib/pitr/segments.js';
import { LocalStore } from '../../lib/storage/local.js';
import { TestFleet } from '../helpers.js';
import { archivingCluster, pitrOn } from './support.js';

describe('verification of the WAL chain and its retention (real PostgreSQL 15 archiving WAL)', () => {
  let fleet: TestFleet;
  let pg = '';
  let landing = '';

  beforeAll(async () => {
    fleet = new TestFleet();
    ({ pg, landing } = await archivingCluster(fleet, { databases: ['acme_production'], archiveTimeout: '60' }));
    fleet.containerOf.set('acme', pg);
    fleet.projects = [{ project: 'acme', databases: { production: 'acme_production' }, database: pitrOn(landing, { keep_base_backups: 1, base_backup_retention: '7d' }) }];
    fleet.writeConfig();
    await fleet.sql('acme', 'acme_production', 'CREATE TABLE orders (id int PRIMARY KEY)');
  }, 120_000);

  afterAll(async () => {
    await fleet?.cleanup();
  });

  const archive = () => new ClusterArchive(new LocalStore(fleet.backupRoot), pg);
  const walFile = (name: string) => path.join(fleet.backupRoot, '_clusters', pg, 'wal', `${name}.zst`);

  /** Write, force a switch, wait until it landed; returns the segment's name. */
  async function landOne(): Promise<string> {
    await fleet.sql('acme', 'acme_production', 'INSERT INTO orders SELECT coalesce(max(id), 0) + 1 FROM orders');
    const seg = (await fleet.sql('acme', 'postgres', 'select pg_walfile_name(pg_switch_wal())')).trim();
    for (let i = 0; i < 150 && !existsSync(path.join(landing, seg)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(path.join(landing, seg)), `${seg} landed`).toBe(true);
    return seg;
  }
  async function baseWithWal(): Promise<{ base: BaseBackupMetadata; segs: string[] }> {
    const bb = await fleet.cli(['basebackup', 'acme', 'production']);
    expect(bb.code, bb.stdout + bb.stderr).toBe(0);
    const segs = [await landOne(), await landOne(), await landOne()];
    const ar = await fleet.cli(['pitr', 'archive']);
    expect(ar.code, ar.stdout + ar.stderr).toBe(0);
    const base = BaseBackupMetadata.parse(JSON.parse(readFileSync(bb.stdout.trim().split('\n').at(-1)! + '.json', 'utf8')));
    return { base, segs };
  }
  const metaOf = async (id: string) => (await archive().baseBackups()).items.find((b) => b.id === id)!;

  let first: { base: BaseBackupMetadata; segs: string[] };

  it('a good chain: verify-backups recovers the base backup to the end of the archive, records it, and status and metrics show it', async () => {
    first = await baseWithWal();
    const newest = (await archive().walRecords()).items.filter((r) => r.kind === 'segment').map((r) => r.name).sort().at(-1)!;
    const r = await fleet.cli(['verify-backups', 'acme', 'production']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`passed  cluster ${pg} ${first.base.id}: recovered through \\d+ WAL segment\\(s\\) to ${newest} \\(replayed to [0-9A-F]+/[0-9A-F]+\\)`));
    const v = (await metaOf(first.base.id)).verification!;
    expect(v).toMatchObject({ status: 'passed', through: newest });
    expect(v.segments).toBeGreaterThanOrEqual(3);
    const left = await fleet.runner.run(['podman', 'exec', pg, 'sh', '-c', 'ls -d /tmp/pgfleet-recover-* 2>/dev/null; ps -eo args | grep -c "[p]ostgres -D /tmp/pgfleet-recover" || true']);
    expect(left.stdout.trim()).toBe('0'); // the temporary instance and its files are gone
    const st = JSON.parse((await fleet.cli(['status', '--json'])).stdout) as { targets: { pitr: { verification: Record<string, unknown> } }[] };
    expect(st.targets[0].pitr.verification).toMatchObject({ status: 'passed', base_backup_id: first.base.id, through: newest });
    expect((await fleet.cli(['status'])).stdout).toMatch(/WAL \S+, base \S+, chain passed \S+ ago/); // the table's PITR cell
  }, 300_000);

  it('a flipped byte in an archived segment fails verification (exit 4), naming it; the failure is recorded and fails status', async () => {
    const victim = first.segs[1];
    const file = walFile(victim);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)] ^= 0x01;
    writeFileSync(file, bad);
    try {
      const r = await fleet.cli(['verify-backups', 'acme', 'production']);
      expect(r.code, r.stdout + r.stderr).toBe(4);
      expect(r.stdout).toContain(`FAILED  cluster ${pg} ${first.base.id}: WAL ${victim}: the stored file's sha256 is`);
      expect((await metaOf(first.base.id)).verification).toMatchObject({ status: 'failed', error: expect.stringContaining(`WAL ${victim}`) });
      const st = await fleet.cli(['status', '--json']);
      expect(st.stdout).toContain(`pitr: chain verification of base backup ${first.base.id} failed`);
    } finally {
      writeFileSync(file, good);
    }
  }, 300_000);

  it('a flipped byte in the base backup fails verification (exit 4), caught as the tar is staged: nothing started on it', async () => {
    const file = path.join(fleet.backupRoot, '_clusters', pg, 'base', `${first.base.id}.tar.zst`);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)] ^= 0x01;
    writeFileSync(file, bad);
    try {
      const r = await fleet.cli(['verify-backups', 'acme', 'production']);
      expect(r.code, r.stdout + r.stderr).toBe(4);
      expect(r.stdout).toMatch(new RegExp(`FAILED  cluster ${pg} ${first.base.id}: base backup ${first.base.id}: (its tar does not decompress|sha256 [0-9a-f]{64}, metadata says ${first.base.sha256}) \\(damaged\\)[^\\n]*; nothing was started on it`));
      expect((await metaOf(first.base.id)).verification).toMatchObject({ status: 'failed', error: expect.stringContaining(`base backup ${first.base.id}`) });
      const left = await fleet.runner.run(['podman', 'exec', pg, 'sh', '-c', 'ls -d /tmp/pgfleet-recover-* 2>/dev/null; ps -eo args | grep -c "[p]ostgres -D /tmp/pgfleet-recover" || true']);
      expect(left.stdout.trim()).toBe('0');
    } finally {
      writeFileSync(file, good);
    }
  }, 300_000);

  it('a deleted segment is a gap: verification fails (exit 4) naming it', async () => {
    const victim = first.segs[0];
    const aside = path.join(fleet.dir, 'aside');
    mkdirSync(aside, { recursive: true });
    for (const f of [walFile(victim), walFile(victim) + '.json']) renameSync(f, path.join(aside, path.basename(f)));
    try {
      const r = await fleet.cli(['verify-backups', 'acme', 'production']);
      expect(r.code, r.stdout + r.stderr).toBe(4);
      expect(r.stdout).toContain(`FAILED  cluster ${pg} ${first.base.id}: the WAL archive has a gap after base backup ${first.base.id}: ${victim} missing`);
    } finally {
      for (const f of [walFile(victim), walFile(victim) + '.json']) copyFileSync(path.join(aside, path.basename(f)), f);
    }
    expect((await fleet.cli(['verify-backups', 'acme', 'production'])).code).toBe(0); // whole again
  }, 300_000);

  it('retention: the older base backup and the WAL before the newer one go; every segment the kept one needs stays, and its chain verifies', async () => {
    const second = await baseWithWal();
    const later = { PGFLEET_NOW: new Date(Date.now() + 30 * 86_400_000).toISOString() };
    const size = (await archive().walRecords()).items.find((r) => r.kind === 'segment')!.size_bytes;
    const start = segmentOfLsn(second.base.start_lsn, second.base.timeline, size);
    // The first is still the newest verified one, which retention keeps…
    const held = await fleet.cli(['prune', '--dry-run'], { env: later });
    expect(held.stdout).toContain(`  keep    ${first.base.id}  newest verified base backup`);
    // …until the second's chain is verified.
    const ver = await fleet.cli(['verify-backups', 'acme', 'production']);
    expect(ver.code, ver.stdout + ver.stderr).toBe(0);
    const dry = await fleet.cli(['prune', '--dry-run'], { env: later });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`  remove  ${first.base.id}  older than 7d and not among the newest 1`);
    expect(dry.stdout).toContain(`before ${start}, where the oldest kept base backup ${second.base.id} starts`);
    expect(dry.stdout).toMatch(new RegExp(`  keep    ${second.base.id}  newest base backup`));
    expect(dry.stdout).toContain(`from ${start} on: needed by base backup ${second.base.id}`);
    expect((await archive().baseBackups()).items).toHaveLength(2); // the dry run removed nothing
    const before = (await archive().walRecords()).items.map((r) => r.name);
    const r = await fleet.cli(['prune'], { env: later });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await archive().baseBackups()).items.map((b) => b.id)).toEqual([second.base.id]);
    const after = (await archive().walRecords()).items.map((r) => r.name);
    expect(after.filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()[0]).toBe(start); // its start segment is the oldest left
    expect(before.filter((n) => /^[0-9A-F]{24}$/.test(n) && n >= start).every((n) => after.includes(n))).toBe(true);
    for (const s of first.segs) expect(existsSync(walFile(s))).toBe(false);
    const v = await fleet.cli(['verify-backups', 'acme', 'production']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toContain(`passed  cluster ${pg} ${second.base.id}`);
  }, 600_000);
});
