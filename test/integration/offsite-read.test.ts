/**
 * The read side of offsite copies, against the project's own local RADOS Gateway
 * (scripts/sandbox/objectstore.ts, port 7494: its own) and real tenant containers: list --offsite
 * from the bucket alone, restore --from-offsite, a damaged copy refused, the identity checked,
 * verify-backups --offsite, the recovery by hand with stock tools, and the disaster recovery from
 * the bucket alone.
 * Copies reach the bucket the real way: every backup of a target with offsite configured uploads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { runBackup } from '../../lib/commands/backup.js';
import { findTarget } from '../../lib/config/load.js';
import { offsiteStore } from '../../lib/offsite/bucket.js';
import { Repository } from '../../lib/storage/repository.js';
import { startObjectStore, type RunningObjectStore } from '../../scripts/sandbox/objectstore.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { CLI, dataDigest, schemaDump, TestFleet } from '../helpers.js';

const PORT = 7494;
const BUCKET = 'pgfleet-read';
const PASSWORD = 'Pw-offsite-read-9q2z-secret';

let gw: RunningObjectStore;
let fleet: TestFleet;
let identity: string;
let recipient: string;

const databases = async () => (await fleet.sql('acme', 'postgres', 'SELECT datname FROM pg_database ORDER BY 1')).split('\n').filter(Boolean);
/** Staged copies of dumps left in the tenant's /tmp. */
const stagedLeft = async () => (await fleet.runner.run(['podman', 'exec', fleet.container('acme'), 'ls', '/tmp'])).stdout.split('\n').filter((f) => f.startsWith('pgfleet-restore-'));
const bucketOf = () => offsiteStore(findTarget(fleet.context().ctx.config, 'acme', 'production'), {}, gw.env());

const env = () => ({ ...gw.env(), PGFLEET_AGE_IDENTITY_FILE: identity });

beforeAll(async () => {
  const [g, f] = await Promise.all([
    startObjectStore(path.join(os.tmpdir(), `pgfleet-s3-test-${PORT}`), PORT),
    TestFleet.create([{ project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: PASSWORD }]),
  ]);
  [gw, fleet] = [g, f];
  identity = path.join(fleet.dir, 'age-identity.txt');
  await fleet.runner.run(['age-keygen', '-o', identity]);
  recipient = (await fleet.runner.run(['age-keygen', '-y', identity])).stdout.trim();
  fleet.platform = { offsite: { url: `s3://${BUCKET}/base`, endpoint: gw.endpoint, region: gw.region, path_style: true }, encryption: { age_recipients: [recipient] } };
  fleet.writeConfig();
  await (await offsiteStore(findTarget(fleet.context().ctx.config, 'acme', 'production'), {}, gw.env())).client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
  await fleet.sql('acme', 'acme_production', sampleSql('acme'));
}, 180_000);

afterAll(async () => {
  await fleet?.cleanup();
  await gw?.stop();
});

describe('list --offsite', () => {
  it('lists what the bucket holds, from the bucket alone: the copy, encrypted, at its s3:// location', async () => {
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    expect((await ctx.repo.find('acme', 'production', b.meta.id))?.meta.offsite?.status).toBe('uploaded');
    const meta = (await new Repository(await offsiteStore(findTarget(ctx.config, 'acme', 'production'), {}, gw.env())).find('acme', 'production', b.meta.id))!.meta;
    const r = await fleet.cli(['list', 'acme', 'production', '--offsite', '--json'], { env: { ...env(), PGFLEET_CONFIG: fleet.configFile } });
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout);
    const mine = listed.find((x: { id: string }) => x.id === b.meta.id);
    expect(mine).toMatchObject({
      id: b.meta.id,
      project: 'acme',
      environment: 'production',
      size_bytes: meta.size_bytes,
      sha256: meta.sha256,
      path: `s3://${BUCKET}/base/acme/production/database/${b.meta.id}.dump.zst.age`,
      encryption: { algorithm: 'age', recipients: [recipient] },
    });
    expect(mine.sha256).not.toBe(b.meta.sha256);
    // The table form names the object too; a local list does not show the bucket's copy's path.
    const table = await fleet.cli(['list', 'acme', '--offsite'], { env: env() });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`s3://${BUCKET}/base/acme/production/database/${b.meta.id}.dump.zst.age`);
    // A copy whose metadata names a missing object is not listed (nor is a dump without metadata).
    const bucket = await offsiteStore(findTarget(ctx.config, 'acme', 'production'), {}, gw.env());
    await bucket.save('acme/production/database/db_20200101_000000Z.dump.zst.age', 'not a backup');
    const again = JSON.parse((await fleet.cli(['list', 'acme', 'production', '--offsite', '--json'], { env: env() })).stdout);
    expect(again.map((x: { id: string }) => x.id)).not.toContain('db_20200101_000000Z');
  });

  it('wrong credentials: a clear error naming the bucket, never the secret', async () => {
    const r = await fleet.cli(['list', 'acme', 'production', '--offsite'], { env: { ...env(), AWS_SECRET_ACCESS_KEY: 'not-the-secret-xyz123' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`s3://${BUCKET}/base`);
    expect(r.stderr).not.toContain('not-the-secret-xyz123');
  });
});

describe('restore --from-offsite', () => {
  it('--into: the copy streamed from the bucket, decrypted and checked, is the database as it was backed up', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const [schema, digest] = [await schemaDump(fleet.runner, c, 'acme_production'), await dataDigest(fleet.sandbox, c, 'acme_production')];
    await fleet.sql('acme', 'acme_production', 'CREATE TABLE after_backup (x int); INSERT INTO after_backup VALUES (1); ALTER TABLE after_backup OWNER TO acme');
    const r = await fleet.cli(['restore', 'acme', 'production', b.meta.id, '--from-offsite', '--into', 'acme_from_bucket', '--yes', '--jobs', '2'], { env: { ...env(), PGFLEET_LOG_LEVEL: 'debug' } });
    expect(r.code, r.stderr).toBe(0);
    // The one read from the bucket also fed the data-positions pass: pg_restore -j2 seeks instead of scanning.
    expect(r.stderr).toMatch(/"data_positions":"filled in".*pg_restore starts from the staged copy/);
    expect(r.stdout).toContain(`s3://${BUCKET}/base/acme/production/database/${b.meta.id}.dump.zst.age`);
    expect(await schemaDump(fleet.runner, c, 'acme_from_bucket')).toBe(schema);
    expect(await dataDigest(fleet.sandbox, c, 'acme_from_bucket')).toEqual(digest);
    expect(await stagedLeft()).toEqual([]);
    await fleet.sql('acme', 'postgres', 'DROP DATABASE acme_from_bucket');
    await fleet.sql('acme', 'acme_production', 'DROP TABLE after_backup');
  });

  it('over the live database: the safe restore, from the bucket', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const digest = await dataDigest(fleet.sandbox, c, 'acme_production');
    await fleet.sql('acme', 'acme_production', 'CREATE TABLE after_backup (x int); ALTER TABLE after_backup OWNER TO acme');
    const r = await fleet.cli(['restore', 'acme', 'production', b.meta.id, '--from-offsite', '--yes'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(await dataDigest(fleet.sandbox, c, 'acme_production')).toEqual(digest);
    const kept = (await databases()).filter((d) => d.startsWith('acme_production__before_'));
    expect(kept.length).toBeGreaterThan(0);
    for (const d of kept) await fleet.sql('acme', 'postgres', `DROP DATABASE "${d}"`);
  });

  it('a missing or wrong identity is a clear error before anything is touched', async () => {
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const before = await databases();
    const { PGFLEET_AGE_IDENTITY_FILE: _i, ...noIdentity } = env();
    const missing = await fleet.cli(['restore', 'acme', 'production', b.meta.id, '--from-offsite', '--into', 'acme_never', '--yes'], { env: { ...noIdentity, PGFLEET_AGE_IDENTITY_FILE: '' } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('PGFLEET_AGE_IDENTITY_FILE is not set');
    const other = path.join(fleet.dir, 'other-identity.txt');
    await fleet.runner.run(['age-keygen', '-o', other]);
    const wrong = await fleet.cli(['restore', 'acme', 'production', b.meta.id, '--from-offsite', '--into', 'acme_never', '--yes'], { env: { ...env(), PGFLEET_AGE_IDENTITY_FILE: other } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`it is not one backup ${b.meta.id} was encrypted to`);
    expect(wrong.stderr).not.toContain('AGE-SECRET-KEY');
    const gone = await fleet.cli(['restore', 'acme', 'production', b.meta.id, '--from-offsite', '--into', 'acme_never', '--yes'], { env: { ...env(), PGFLEET_AGE_IDENTITY_FILE: path.join(fleet.dir, 'nope.txt') } });
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('not a readable age identity file');
    expect(await databases()).toEqual(before);
    expect(await stagedLeft()).toEqual([]);
  });

  it('a path, or a table restore, with --from-offsite is a usage error (exit 2)', async () => {
    const path_ = await fleet.cli(['restore', 'acme', 'production', '/tmp/some.dump.zst', '--from-offsite', '--yes'], { env: env() });
    expect(path_.code).toBe(2);
    expect(path_.stderr).toContain('--from-offsite takes a backup id');
    const table = await fleet.cli(['restore', 'acme', 'production', '--latest', '--from-offsite', '--table', 'public.items', '--yes'], { env: env() });
    expect(table.code).toBe(2);
    expect(table.stderr).toContain('--from-offsite restores a whole database');
  });

  it('a flipped byte in the bucket: refused (exit 4) before anything is touched, dry run included', async () => {
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const bucket = await bucketOf();
    const key = `acme/production/database/${b.meta.id}.dump.zst.age`;
    const good = await bucket.read(key);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)] ^= 0x01;
    await bucket.save(key, bad);
    try {
      const before = await databases();
      for (const extra of [['--into', 'acme_never'], ['--dry-run'], []]) {
        const r = await fleet.cli(['restore', 'acme', 'production', b.meta.id, '--from-offsite', '--yes', ...extra], { env: env() });
        expect(r.code, r.stderr).toBe(4);
        expect(r.stderr).toContain('the copy in the bucket is damaged; refusing to use it');
      }
      expect(await databases()).toEqual(before);
      expect(await stagedLeft()).toEqual([]);
    } finally {
      await bucket.save(key, good);
    }
  });
});

describe('verify-backups --offsite', () => {
  it('restores the copy into a scratch database, checks it and records the result in its metadata object in the bucket; a flipped byte fails (exit 4), recorded', async () => {
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const repo = new Repository(await bucketOf());
    const before = await databases();
    const r = await fleet.cli(['verify-backups', 'acme', 'production', '--offsite', '--backup', b.meta.id], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`passed  acme/production ${b.meta.id}`);
    const copy = (await repo.find('acme', 'production', b.meta.id))!;
    expect(copy.meta.verification).toMatchObject({ status: 'passed', tables: Object.keys(b.meta.tables).length, rows: b.meta.total_rows });
    expect(copy.meta.encryption?.plaintext_sha256).toBe(b.meta.sha256);
    // The local backup's own metadata is not the one written.
    expect((await ctx.repo.find('acme', 'production', b.meta.id))!.meta.verification).toBeNull();
    expect(await databases()).toEqual(before);
    // Without an identity: exit 2 before anything is read, nothing recorded.
    const noKey = await fleet.cli(['verify-backups', 'acme', 'production', '--offsite', '--backup', b.meta.id], { env: { ...env(), PGFLEET_AGE_IDENTITY_FILE: '' } });
    expect(noKey.code).toBe(2);

    const key = copy.key;
    const bucket = await bucketOf();
    const good = await bucket.read(key);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 3)] ^= 0x40;
    await bucket.save(key, bad);
    try {
      const f = await fleet.cli(['verify-backups', 'acme', 'production', '--offsite', '--backup', b.meta.id], { env: env() });
      expect(f.code, f.stderr).toBe(4);
      expect(f.stdout).toContain(`FAILED  acme/production ${b.meta.id}`);
      expect((await repo.find('acme', 'production', b.meta.id))!.meta.verification).toMatchObject({ status: 'failed', error: expect.stringContaining('damaged') });
      expect(await databases()).toEqual(before);
      expect(await stagedLeft()).toEqual([]);
    } finally {
      await bucket.save(key, good);
    }
  });
});

describe('recovery by hand, with stock tools only', () => {
  it('aws s3 cp … - | age -d -i key | zstd -dc | pg_restore: the README pipeline, exactly, gives the database back', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const digest = await dataDigest(fleet.sandbox, c, 'acme_production');
    const url = `s3://${BUCKET}/base/acme/production/database/${b.meta.id}.dump.zst.age`;
    const stock = { ...process.env, AWS_ACCESS_KEY_ID: gw.accessKeyId, AWS_SECRET_ACCESS_KEY: gw.secretAccessKey, AWS_DEFAULT_REGION: gw.region };
    const sh = (script: string) => fleet.runner.run(['bash', '-c', `set -euo pipefail; ${script}`], { env: stock });
    // The copy's metadata says what to expect of the stored bytes and of the archive inside.
    const meta = JSON.parse((await sh(`aws s3 cp "${url}.json" - --endpoint-url ${gw.endpoint}`)).stdout);
    expect((await sh(`aws s3 cp "${url}" - --endpoint-url ${gw.endpoint} | sha256sum`)).stdout.split(' ')[0]).toBe(meta.sha256);
    expect((await sh(`aws s3 cp "${url}" - --endpoint-url ${gw.endpoint} | age -d -i ${identity} | sha256sum`)).stdout.split(' ')[0]).toBe(meta.encryption.plaintext_sha256);
    // Not readable without the identity: another key gets nothing.
    const other = path.join(fleet.dir, 'stranger-identity.txt');
    await fleet.runner.run(['age-keygen', '-o', other]);
    await expect(sh(`aws s3 cp "${url}" - --endpoint-url ${gw.endpoint} | age -d -i ${other} > /dev/null`)).rejects.toThrow(/no identity matched/);
    await fleet.sql('acme', 'postgres', 'CREATE DATABASE acme_by_hand');
    await sh(`aws s3 cp "${url}" - --endpoint-url ${gw.endpoint} | age -d -i ${identity} | zstd -dc | podman exec -i ${c} pg_restore -U postgres --exit-on-error -d acme_by_hand`);
    expect(await dataDigest(fleet.sandbox, c, 'acme_by_hand')).toEqual(digest);
    await fleet.sql('acme', 'postgres', 'DROP DATABASE acme_by_hand');
  });
});

describe('disaster recovery from the bucket alone', () => {
  it('host side destroyed (backup_root and the database): projects.yml, the credentials and the identity bring the tenant back', async () => {
    const c = fleet.container('acme');
    const { ctx } = fleet.context({ env: env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const [schema, digest] = [await schemaDump(fleet.runner, c, 'acme_production'), await dataDigest(fleet.sandbox, c, 'acme_production')];
    // The host side is gone: every local backup, and the database.
    rmSync(fleet.backupRoot, { recursive: true, force: true });
    await fleet.sql('acme', 'postgres', 'DROP DATABASE acme_production WITH (FORCE)');
    // A new host: a config dir with projects.yml, the env file (the database password and the
    // bucket's credentials) and the age identity; nothing else. The process has no AWS_* of its own.
    const host = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-new-host-'));
    try {
      const config = path.join(host, 'projects.yml');
      writeFileSync(config, readFileSync(fleet.configFile, 'utf8').replace(fleet.backupRoot, path.join(host, 'backups')));
      mkdirSync(path.join(host, 'configs', 'acme'), { recursive: true });
      writeFileSync(path.join(host, 'configs', 'acme', '.env.production'), `PGPASSWORD=${PASSWORD}\nAWS_ACCESS_KEY_ID=${gw.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${gw.secretAccessKey}\n`, { mode: 0o600 });
      const key = path.join(host, 'identity.txt');
      writeFileSync(key, readFileSync(identity), { mode: 0o600 });
      const processEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [CLI, ...args], { env: { ...processEnv, PGFLEET_CONFIG: config, PGFLEET_AGE_IDENTITY_FILE: key }, stdio: ['ignore', 'pipe', 'pipe'] });
          let [stdout, stderr] = ['', ''];
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        });
      const listed = await run(['list', 'acme', 'production', '--offsite', '--json']);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)[0].id).toBe(b.meta.id);
      // Over a database that is gone, a restore refuses and says how: --into its own name.
      const over = await run(['restore', 'acme', 'production', '--latest', '--from-offsite', '--yes']);
      expect(over.code).toBe(1);
      expect(over.stderr).toContain('restore with --into acme_production');
      const r = await run(['restore', 'acme', 'production', '--latest', '--from-offsite', '--into', 'acme_production', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(b.meta.id);
      expect(await schemaDump(fleet.runner, c, 'acme_production')).toBe(schema);
      expect(await dataDigest(fleet.sandbox, c, 'acme_production')).toEqual(digest);
      // The restored database is the tenant's: its owner is the tenant role.
      expect((await fleet.sql('acme', 'postgres', "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'acme_production'")).trim()).toBe('acme');
      expect(await stagedLeft()).toEqual([]);
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });
});
