// Point-in-time recovery from the bucket alone: a real archiving PostgreSQL 15 cluster with two
// tenants and the project's own RADOS Gateway (scripts/sandbox/objectstore.ts, port 7496: its
// own). A base backup and the WAL land in the bucket encrypted with age as they are taken (basebackup,
// pitr archive); a failed upload leaves the base backup complete and pending, offsite sync
// catches up (idempotent, --dry-run); list --offsite shows them; prune keeps the WAL a kept base
// backup needs; then the local PITR repository is deleted and pitr recover --from-offsite and
// restore --to --from-offsite bring the tenant back to exactly the rows committed by the target,
// from the bucket alone, the other tenant untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { findTarget } from '../../lib/config/load.js';
import type { BaseBackupMetadata } from '../../lib/formats/pitr.js';
import { offsiteStore } from '../../lib/offsite/bucket.js';
import { safeArchiveCommand } from '../../lib/pitr/settings.js';
import { segmentOfLsn } from '../../lib/pitr/segments.js';
import { startObjectStore, type RunningObjectStore } from '../../scripts/sandbox/objectstore.js';
import { TestFleet, type ProjectSpec } from '../helpers.js';

const PORT = 7496;
const BUCKET = 'pgfleet-pitr';

describe('PITR offsite: base backups and WAL in the bucket, restore --to from the bucket alone', () => {
  let gw: RunningObjectStore;
  let fleet: TestFleet;
  let pg = '';
  let landing = '';
  let identity = '';
  let recipient = '';
  let target = '';

  const env = () => ({ ...gw.env(), PGFLEET_AGE_IDENTITY_FILE: identity });
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const now = async () => (await fleet.sql('acme', 'postgres', "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")).trim();
  const rows = async (p: string) => (await fleet.sql(p, `${p}_production`, `select string_agg(what, ',' order by what) from marks`)).trim();
  const bucket = () => offsiteStore(findTarget(fleet.context().ctx.config, 'acme', 'production'), {}, gw.env());
  const prefix = () => `_clusters/${pg}/`;
  const keys = async (under: string) => (await (await bucket()).list(prefix() + under)).map((o) => o.key.slice(prefix().length + under.length));
  const localMeta = (id: string): BaseBackupMetadata => JSON.parse(readFileSync(path.join(fleet.backupRoot, '_clusters', pg, 'base', `${id}.tar.zst.json`), 'utf8'));
  const recoverLeft = async () => (await fleet.runner.run(['podman', 'exec', pg, 'sh', '-c', 'ls -d /tmp/pgfleet-recover-* 2>/dev/null || true'])).stdout.trim();
  const scratchLeft = () => readdirSync(fleet.backupRoot).filter((n) => n.startsWith('.pitr-'));
  async function archiveNow() {
    await fleet.sql('acme', 'postgres', 'select pg_switch_wal()');
    await pause(1500);
    const r = await fleet.cli(['pitr', 'archive', 'acme', 'production'], { env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r;
  }

  beforeAll(async () => {
    fleet = new TestFleet();
    pg = `${fleet.prefix}-pg`;
    landing = path.join(fleet.dir, 'wal');
    mkdirSync(landing, { recursive: true });
    chmodSync(landing, 0o700);
    const [g] = await Promise.all([
      startObjectStore(path.join(os.tmpdir(), `pgfleet-s3-test-${PORT}`), PORT),
      (async () => {
        await fleet.runner.run(['chown', 'postgres:postgres', landing]);
        await fleet.sandbox.startTenant({
          name: pg,
          databases: ['acme_production', 'beta_production'],
          mounts: { [landing]: '/wal-archive' },
          settings: { wal_level: 'replica', archive_mode: 'on', archive_timeout: '0', archive_command: safeArchiveCommand() },
        });
      })(),
    ]);
    gw = g;
    identity = path.join(fleet.dir, 'age-identity.txt');
    await fleet.runner.run(['age-keygen', '-o', identity]);
    recipient = (await fleet.runner.run(['age-keygen', '-y', identity])).stdout.trim();
    const pitr = { pitr: { enabled: true, archive_dir: landing, max_wal_age: '5m' } };
    const projects: ProjectSpec[] = [
      { project: 'acme', databases: { production: 'acme_production' }, database: pitr },
      { project: 'beta', databases: { production: 'beta_production' }, database: pitr },
    ];
    for (const p of projects) fleet.containerOf.set(p.project, pg);
    fleet.projects = projects;
    fleet.platform = { offsite: { url: `s3://${BUCKET}/fleet`, endpoint: gw.endpoint, region: gw.region, path_style: true }, encryption: { age_recipients: [recipient] } };
    fleet.writeConfig();
    await (await bucket()).client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    for (const p of ['acme', 'beta'] as const) await fleet.sql(p, `${p}_production`, 'CREATE TABLE marks (what text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  }, 240_000);

  afterAll(async () => {
    await fleet?.cleanup();
    await gw?.stop();
  });

  let first = '';

  it('basebackup uploads the base backup encrypted, its metadata last; pitr archive uploads the WAL it takes in', async () => {
    const bb = await fleet.cli(['basebackup', 'acme', 'production'], { env: env() });
    expect(bb.code, bb.stdout + bb.stderr).toBe(0);
    first = /(base_\d{8}_\d{6}Z)\.tar\.zst$/.exec(bb.stdout.trim().split('\n').at(-1)!)![1];
    expect(bb.stdout).toMatch(new RegExp(`cluster ${pg}: uploaded 1 base backup\\(s\\) and \\d+ WAL file\\(s\\) → s3://${BUCKET}/fleet`));
    expect(await keys('base/')).toEqual([`${first}.tar.zst.age`, `${first}.tar.zst.age.json`]);
    const copy = JSON.parse((await (await bucket()).read(`${prefix()}base/${first}.tar.zst.age.json`)).toString()) as BaseBackupMetadata;
    const local = localMeta(first);
    expect(copy.encryption).toEqual({ algorithm: 'age', recipients: [recipient], plaintext_sha256: local.sha256, plaintext_size_bytes: local.size_bytes });
    expect(copy.sha256).not.toBe(local.sha256);
    expect(local.offsite).toMatchObject({ status: 'uploaded', key: `${prefix()}base/${first}.tar.zst.age` });
    // The stored bytes are age's, not a zstd frame: unreadable without the identity; stock age, zstd and tar read them with it.
    const enc = await (await bucket()).read(`${prefix()}base/${first}.tar.zst.age`);
    expect(enc.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    const file = path.join(fleet.dir, 'base.tar.zst.age');
    writeFileSync(file, enc, { mode: 0o600 });
    const listing = await fleet.runner.run(['sh', '-c', 'age -d -i "$1" "$2" | zstd -dc | tar -t', 'sh', identity, file]);
    expect(listing.stdout.split('\n')).toContain('PG_VERSION');
    rmSync(file);

    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('acme 1'), ('acme 2')");
    await fleet.sql('beta', 'beta_production', "INSERT INTO marks (what) VALUES ('beta early')");
    await pause(1100);
    target = await now();
    await pause(1100);
    await fleet.sql('acme', 'acme_production', "INSERT INTO marks (what) VALUES ('acme late'); DELETE FROM marks WHERE what = 'acme 1'");
    await fleet.sql('beta', 'beta_production', "INSERT INTO marks (what) VALUES ('beta late')");
    const ar = await archiveNow();
    expect(ar.stdout).toMatch(new RegExp(`cluster ${pg}: uploaded 0 base backup\\(s\\) and [1-9]\\d* WAL file\\(s\\)`));
    // Every segment taken in from the one the base backup starts in is in the bucket, encrypted, each with its record; none before it (no base backup there needs it).
    const start = segmentOfLsn(local.start_lsn, local.timeline, 16 << 20);
    const localWal = readdirSync(path.join(fleet.backupRoot, '_clusters', pg, 'wal')).filter((n) => /^[0-9A-F]{24}\.zst$/.test(n)).map((n) => n.slice(0, 24));
    const there = await keys('wal/');
    expect(localWal.filter((n) => n >= start).length).toBeGreaterThan(1);
    for (const n of localWal) {
      if (n >= start) expect(there).toEqual(expect.arrayContaining([`${n}.zst.age`, `${n}.zst.age.json`]));
      else expect(there).not.toContain(`${n}.zst.age.json`);
    }
    expect(there.every((k) => k.includes('.zst.age'))).toBe(true);
  }, 240_000);

  it('a failed upload leaves the base backup complete and pending (exit 0); offsite sync catches up, idempotent, and --dry-run says what it would do', async () => {
    const bad = await fleet.cli(['basebackup', 'acme', 'production'], { env: { ...env(), AWS_SECRET_ACCESS_KEY: 'not-the-secret-pitr-77' } });
    expect(bad.code, bad.stdout + bad.stderr).toBe(0);
    expect(bad.stdout).toContain(`cluster ${pg}: offsite FAILED: `);
    expect(bad.stdout + bad.stderr).not.toContain('not-the-secret-pitr-77');
    const second = /(base_\d{8}_\d{6}Z(_\d+)?)\.tar\.zst$/.exec(bad.stdout.trim().split('\n').at(-1)!)![1];
    expect(localMeta(second).offsite?.status).toBe('pending');
    expect(await keys('base/')).not.toContain(`${second}.tar.zst.age.json`);

    const dry = await fleet.cli(['offsite', 'sync', 'acme', 'production', '--dry-run'], { env: env() });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`cluster ${pg}: would upload 1 base backup(s) and`);
    expect(localMeta(second).offsite?.status).toBe('pending');
    const sync = await fleet.cli(['offsite', 'sync', 'acme', 'production'], { env: env() });
    expect(sync.code, sync.stdout + sync.stderr).toBe(0);
    expect(sync.stdout).toContain(`cluster ${pg}: uploaded 1 base backup(s) and`);
    expect(localMeta(second).offsite?.status).toBe('uploaded');
    expect(await keys('base/')).toContain(`${second}.tar.zst.age.json`);
    const again = await fleet.cli(['offsite', 'sync', 'acme', 'production'], { env: env() });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`cluster ${pg}: uploaded 0 base backup(s) and 0 WAL file(s)`);
  }, 240_000);

  it('list --offsite shows the base backups and the WAL range the bucket holds, from the bucket alone', async () => {
    const r = await fleet.cli(['list', 'acme', 'production', '--offsite', '--json'], { env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const bases = (JSON.parse(r.stdout) as { id: string; type: string; path: string; container: string; wal: { first: string; last: string; segments: number } | null; encryption: unknown }[]).filter((x) => x.type === 'base');
    expect(bases.map((b) => b.id)).toContain(first);
    const b = bases.find((x) => x.id === first)!;
    expect(b).toMatchObject({ container: pg, path: `s3://${BUCKET}/fleet/${prefix()}base/${first}.tar.zst.age`, encryption: { algorithm: 'age', recipients: [recipient] } });
    expect(b.wal!.segments).toBeGreaterThan(0);
    const table = await fleet.cli(['list', 'acme', 'production', '--offsite'], { env: env() });
    expect(table.stdout).toMatch(new RegExp(`cluster ${pg} in s3://${BUCKET}/fleet/${prefix()}: 2 base backup\\(s\\); WAL [0-9A-F]{24} … [0-9A-F]{24} \\(\\d+ segment\\(s\\)`));
  }, 120_000);

  it("prune keeps in the bucket every segment a kept base backup needs (dry run says why)", async () => {
    const r = await fleet.cli(['prune', 'acme', 'production', '--dry-run'], { env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`offsite s3://${BUCKET}/fleet cluster ${pg}: would remove 0 base backup\\(s\\) and \\d+ WAL file\\(s\\)`));
    const bucketPart = r.stdout.slice(r.stdout.indexOf(`offsite s3://${BUCKET}/fleet cluster`));
    expect(bucketPart).toMatch(new RegExp(`keep    WAL \\(\\d+ file\\(s\\)\\)  from [0-9A-F]{24} on: needed by base backup ${first}`));
    expect(bucketPart).toContain(`keep    ${first}  `);
  }, 120_000);

  it('the local PITR repository deleted: pitr recover --from-offsite gives the database with exactly the rows committed by the target, from the bucket alone; nothing left', async () => {
    // The host side of PITR gone: the repository's _clusters/ and what waits in the landing directory (archived after the target).
    rmSync(path.join(fleet.backupRoot, '_clusters'), { recursive: true, force: true });
    for (const f of readdirSync(landing)) rmSync(path.join(landing, f));
    const out = path.join(fleet.dir, 'acme-at-target.dump');
    // Without the identity: refused before anything is fetched.
    const noId = await fleet.cli(['pitr', 'recover', 'acme', 'production', '--to', target, '--out', out, '--from-offsite'], { env: { ...gw.env(), PGFLEET_AGE_IDENTITY_FILE: '' } });
    expect(noId.code, noId.stdout + noId.stderr).toBe(2);
    expect(noId.stderr).toContain('PGFLEET_AGE_IDENTITY_FILE');
    expect(existsSync(out)).toBe(false);
    expect(scratchLeft()).toEqual([]);
    const r = await fleet.cli(['pitr', 'recover', 'acme', 'production', '--to', target, '--out', out, '--from-offsite'], { env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(out);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    await fleet.sql('acme', 'postgres', 'CREATE DATABASE acme_at_target');
    await fleet.runner.run(['sh', '-c', 'podman exec -i "$1" pg_restore -U postgres --exit-on-error -d acme_at_target < "$2"', 'sh', pg, out]);
    expect((await fleet.sql('acme', 'acme_at_target', `select string_agg(what, ',' order by what) from marks`)).trim()).toBe('acme 1,acme 2');
    expect(scratchLeft()).toEqual([]);
    expect(await recoverLeft()).toBe('');
    expect(await rows('beta')).toBe('beta early,beta late');
    expect(existsSync(path.join(fleet.backupRoot, '_clusters', pg, 'base'))).toBe(false); // nothing of the bucket kept in the repository
  }, 300_000);

  it('restore --to --from-offsite over the live database, the local PITR repository gone: exactly the rows committed by the target; the other tenant untouched; nothing left', async () => {
    // The host side of PITR gone: the repository's _clusters/ and what waits in the landing directory (archived after the target).
    rmSync(path.join(fleet.backupRoot, '_clusters'), { recursive: true, force: true });
    for (const f of readdirSync(landing)) rmSync(path.join(landing, f));
    // Without the identity: refused before anything is touched.
    const noId = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--from-offsite', '--yes'], { env: { ...gw.env(), PGFLEET_AGE_IDENTITY_FILE: '' } });
    expect(noId.code, noId.stdout + noId.stderr).toBe(2);
    expect(noId.stderr).toContain('PGFLEET_AGE_IDENTITY_FILE');
    expect(await rows('acme')).toBe('acme 2,acme late');
    expect(existsSync(path.join(fleet.backupRoot, '_clusters'))).toBe(false);

    const dry = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--from-offsite', '--dry-run'], { env: env() });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`base backup   ${first} (finished`);
    expect(dry.stdout).toContain(`offsite       fetched from s3://${BUCKET}/fleet/${prefix()} (age-encrypted, read with PGFLEET_AGE_IDENTITY_FILE)`);
    expect(dry.stdout).toContain('dry run: nothing changed');
    expect(scratchLeft()).toEqual([]);

    const r = await fleet.cli(['restore', 'acme', 'production', '--to', target, '--from-offsite', '--yes'], { env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await rows('acme')).toBe('acme 1,acme 2');
    expect(await rows('beta')).toBe('beta early,beta late');
    expect(scratchLeft()).toEqual([]);
    expect(await recoverLeft()).toBe('');
    expect(existsSync(path.join(fleet.backupRoot, '_clusters', pg, 'base'))).toBe(false); // nothing of the bucket kept in the repository
  }, 300_000);
});
