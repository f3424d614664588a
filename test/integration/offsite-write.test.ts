/**
 * The write side of offsite copies, against the project's own local RADOS Gateway
 * (scripts/sandbox/objectstore.ts, port 7492: its own) and a real tenant container: a backup lands
 * in the bucket encrypted, with its metadata last and both sha256s; stock `age -d` reads it and
 * nothing else does; a failed upload (gateway stopped, wrong credentials, missing bucket) leaves the
 * local backup complete, nothing complete-looking in the bucket and the target pending, in bounded
 * time; SIGTERM mid-upload aborts the multipart upload and exits 130.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { runBackup } from '../../lib/commands/backup.js';
import { findTarget } from '../../lib/config/load.js';
import { offsiteStore } from '../../lib/offsite/bucket.js';
import { pruneOffsite } from '../../lib/offsite/prune.js';
import { uploadBackup } from '../../lib/offsite/upload.js';
import { Repository } from '../../lib/storage/repository.js';
import type { S3Store } from '../../lib/storage/s3.js';
import { startObjectStore, type RunningObjectStore } from '../../scripts/sandbox/objectstore.js';
import { TestFleet } from '../helpers.js';
import { fileDigests, fillBigTable, jsonLines, runCli, startCli, waitFor } from './support.js';

const PORT = 7492;
const BUCKET = 'pgfleet-write';
const PASSWORD = 'Pw-offsite-write-7x4k-secret';

let gw: RunningObjectStore;
let fleet: TestFleet;
let identity: string;
let recipient: string;
let bucket: S3Store;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function offsiteConfig(over: Record<string, unknown> = {}) {
  fleet.platform = { metrics: { textfile: path.join(fleet.dir, 'pgfleet.prom') }, offsite: { url: `s3://${BUCKET}/base`, endpoint: gw.endpoint, region: gw.region, path_style: true, ...over }, encryption: { age_recipients: [recipient] } };
  fleet.writeConfig();
}

async function uploads(s: S3Store): Promise<number> {
  return ((await s.client.send(new ListMultipartUploadsCommand({ Bucket: s.bucket }))).Uploads ?? []).length;
}

beforeAll(async () => {
  const [g, f] = await Promise.all([
    startObjectStore(path.join(os.tmpdir(), `pgfleet-s3-test-${PORT}`), PORT),
    TestFleet.create([
      { project: 'acme', databases: { production: 'acme_production', staging: 'acme_staging' }, user: 'acme', password: PASSWORD },
    ]),
  ]);
  [gw, fleet] = [g, f];
  identity = path.join(fleet.dir, 'age-identity.txt');
  await fleet.runner.run(['age-keygen', '-o', identity]);
  recipient = (await fleet.runner.run(['age-keygen', '-y', identity])).stdout.trim();
  offsiteConfig();
  bucket = await offsiteStore(findTarget(fleet.context().ctx.config, 'acme', 'production'), {}, gw.env());
  await bucket.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await fleet.sql('acme', 'acme_production', `CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note SELECT g, 'note ' || g FROM generate_series(1, 500) g; ALTER TABLE note OWNER TO acme;`);
  // staging: ~12 MiB compressed, two parts and more: long enough to be interrupted mid-upload.
  await fillBigTable(fleet, 'acme', 'acme_staging', 350_000);
}, 240_000);

afterAll(async () => {
  await fleet?.cleanup();
  await gw?.stop();
});

describe('a backup lands offsite', () => {
  it('encrypted, its metadata last with both sha256s; stock age -d reads it with the identity and not without', async () => {
    const { ctx, logs } = fleet.context({ env: gw.env() });
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const key = `acme/production/database/${b.meta.id}.dump.zst.age`;
    expect(b.meta.offsite).toMatchObject({ status: 'uploaded', key });
    // The local metadata on disk says so too, and the local dump is plaintext (offsite-only encryption).
    const localMeta = JSON.parse(readFileSync(b.metaPath, 'utf8'));
    expect(localMeta.offsite).toMatchObject({ status: 'uploaded', key, uploaded_at: expect.any(String) });
    expect(localMeta.encryption).toBeNull();
    const local = readFileSync(b.path);

    const stored = await bucket.read(key);
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    const meta = JSON.parse((await bucket.read(key + '.json')).toString());
    expect(meta).toMatchObject({
      id: b.meta.id,
      file: `${b.meta.id}.dump.zst.age`,
      size_bytes: stored.length,
      sha256: sha(stored),
      encryption: { algorithm: 'age', recipients: [recipient], plaintext_sha256: sha(local), plaintext_size_bytes: local.length },
      tables: b.meta.tables,
    });
    expect(meta).not.toHaveProperty('offsite');
    // The bucket's metadata was written after the dump object.
    const [dumpInfo, metaInfo] = [await bucket.stat(key), await bucket.stat(key + '.json')];
    expect(metaInfo!.mtime.getTime()).toBeGreaterThanOrEqual(dumpInfo!.mtime.getTime());
    // new Repository(bucket) reads it with the local code.
    expect((await new Repository(bucket).find('acme', 'production', b.meta.id))?.meta.sha256).toBe(sha(stored));

    const enc = path.join(fleet.dir, 'copy.age');
    writeFileSync(enc, stored);
    const plain = await fleet.runner.run(['sh', '-c', 'age -d -i "$1" "$2" | sha256sum', 'sh', identity, enc]);
    expect(plain.stdout.split(' ')[0]).toBe(sha(local));
    const other = path.join(fleet.dir, 'other-identity.txt');
    await fleet.runner.run(['age-keygen', '-o', other]);
    await expect(fleet.runner.run(['age', '-d', '-i', other, enc])).rejects.toThrow();
    // Uploaded while the dump was taken, confirmed by the service's ETag (no second read).
    expect(jsonLines(logs.join('\n')).find((l) => l.msg === 'offsite copy uploaded')).toMatchObject({ streamed: true, verified_by: 'etag' });
    expect(logs.join('\n')).not.toContain(gw.secretAccessKey);
  });
});

describe('what else an upload does', () => {
  it('predeploy: the deployment manifest is copied to the bucket with the copy', async () => {
    const r = await runCli(fleet, ['predeploy', 'acme', 'production', '--release', 'r-offsite-1'], { env: gw.env() });
    expect(r.code, r.stderr).toBe(0);
    const key = 'acme/production/deployments/r-offsite-1.json';
    const manifest = readFileSync(r.stdout.trim().split('\n').at(-1)!);
    expect((await bucket.read(key)).equals(manifest)).toBe(true);
    const id = JSON.parse(manifest.toString()).backup;
    expect(await new Repository(bucket).find('acme', 'production', id)).toBeTruthy();
  });

  it("verify: 'read-back' reads the object back and hashes it instead of trusting the ETag", async () => {
    const { ctx } = fleet.context({ env: gw.env() });
    const t = findTarget(ctx.config, 'acme', 'production');
    const local = (await ctx.repo.list('acme', 'production'))[0]!;
    const up = await uploadBackup(ctx.runner, t, local, ctx.repo.store, bucket, { verify: 'read-back' });
    expect(up.verifiedBy).toBe('read-back');
    expect(up.stored.sha256).toBe(sha(await bucket.read(up.key)));
    expect(up.stored.encryption?.plaintext_sha256).toBe(local.meta.sha256);
  });
});

describe('a failed upload: the local backup complete, nothing complete-looking in the bucket, the target pending, bounded', () => {
  async function expectPending(env: NodeJS.ProcessEnv, reason: RegExp, boundMs: number) {
    const { ctx, logs } = fleet.context({ env });
    const t0 = performance.now();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(boundMs);
    const repo = new Repository(fleet.backupRoot);
    const local = await repo.find('acme', 'production', b.meta.id);
    expect(local, 'the local backup is complete').toBeTruthy();
    expect(sha(readFileSync(local!.path))).toBe(local!.meta.sha256);
    expect(local!.meta.offsite).toMatchObject({ status: 'pending', key: `acme/production/database/${b.meta.id}.dump.zst.age`, error: expect.stringMatching(reason) });
    expect(local!.meta.offsite!.error).not.toContain(gw.secretAccessKey);
    const warn = jsonLines(logs.join('\n')).find((l) => String(l.msg).includes('offsite pending'));
    expect(warn).toMatchObject({ level: 40 });
    return b;
  }

  it('gateway stopped: pending within the client bounds; the bucket has no copy once it is back', async () => {
    await gw.killGateway();
    let id: string;
    try {
      id = (await expectPending(gw.env(), /cannot reach|no answer/, 90_000)).meta.id;
    } finally {
      await gw.startGateway();
    }
    expect(await bucket.stat(`acme/production/database/${id}.dump.zst.age.json`)).toBeNull();
    expect(await new Repository(bucket).find('acme', 'production', id)).toBeUndefined();
  }, 180_000);

  it('wrong credentials: pending, the secret never shown', async () => {
    const b = await expectPending({ ...gw.env(), AWS_SECRET_ACCESS_KEY: 'wrong-secret-Zq81x' }, /refused the credentials|access denied|Signature/i, 30_000);
    expect(JSON.stringify(b.meta)).not.toContain('wrong-secret-Zq81x');
    expect(await bucket.stat(`acme/production/database/${b.meta.id}.dump.zst.age`)).toBeNull();
  });

  it('scheduled-backup: the target is ok, its row says offsite pending, exit 0', async () => {
    const r = await runCli(fleet, ['scheduled-backup', '--project', 'acme', '--env', 'production'], { env: { ...gw.env(), AWS_SECRET_ACCESS_KEY: 'wrong-secret-Zq81x' } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^acme\/production\s+OK\s+.*db_\S+ \(offsite pending\)$/m);
    expect(r.stdout).toContain('1 target(s): 1 ok');
    expect(r.stdout + r.stderr).not.toContain('wrong-secret-Zq81x');
  });

  it('missing bucket: pending, naming the bucket', async () => {
    offsiteConfig({ url: 's3://pgfleet-no-such-bucket/base' });
    try {
      await expectPending(gw.env(), /no such bucket pgfleet-no-such-bucket/, 30_000);
    } finally {
      offsiteConfig();
    }
  });
});

describe('SIGTERM mid-upload', () => {
  it('aborts the multipart upload and exits 130; nothing in the bucket; a local backup is kept only whole, pending', async () => {
    expect(await uploads(bucket)).toBe(0);
    const before = new Set((await new Repository(fleet.backupRoot).list('acme', 'staging')).map((b) => b.meta.id));
    const run = startCli(fleet, ['backup', 'acme', 'staging'], { env: gw.env() });
    await waitFor('a multipart upload in the bucket', async () => (await uploads(bucket)) > 0, 120_000, 20);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(await uploads(bucket)).toBe(0);
    // The upload runs while the dump is taken: the signal usually stops the dump too (nothing kept,
    // as for any interrupted backup); if it came after the dump was complete, that backup stays, pending.
    const kept = (await new Repository(fleet.backupRoot).list('acme', 'staging')).filter((b) => !before.has(b.meta.id));
    expect(kept.length).toBeLessThanOrEqual(1);
    for (const local of kept) {
      expect(local.meta.offsite?.status).toBe('pending');
      expect(sha(readFileSync(local.path))).toBe(local.meta.sha256);
    }
    expect((await bucket.list('acme/staging/database/')).filter((o) => !before.has(o.key.split('/').pop()!.split('.')[0]!))).toEqual([]);
  }, 180_000);
});

describe('endpoint killed mid-upload', () => {
  it('the backup completes locally, pending, in bounded time; the unfinished upload stays for sync', async () => {
    expect(await uploads(bucket)).toBe(0);
    const run = startCli(fleet, ['backup', 'acme', 'staging'], { env: gw.env() });
    await waitFor('a multipart upload in the bucket', async () => (await uploads(bucket)) > 0, 120_000, 20);
    await gw.killGateway();
    let r;
    try {
      r = await run.done;
    } finally {
      await gw.startGateway();
    }
    expect(r.code, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(120_000);
    const local = (await new Repository(fleet.backupRoot).list('acme', 'staging'))[0]!;
    expect(r.stdout.trim().split('\n').at(-1)).toBe(local.path);
    expect(local.meta.offsite).toMatchObject({ status: 'pending', error: expect.stringMatching(/cannot reach|no answer|ECONNRESET|socket/i) });
    expect(jsonLines(r.stderr).some((l) => l.level === 40 && String(l.msg).includes('offsite pending'))).toBe(true);
    expect(await bucket.stat(`acme/staging/database/${local.meta.id}.dump.zst.age.json`)).toBeNull();
    expect(await uploads(bucket)).toBeGreaterThan(0); // the abort could not reach the gateway either
  }, 240_000);
});

describe('offsite sync', () => {
  const pendingIds = async (env: string) => (await new Repository(fleet.backupRoot).list('acme', env)).filter((b) => b.meta.offsite?.status === 'pending').map((b) => b.meta.id);

  it('--dry-run lists what is pending and writes nothing; then sync uploads it all; a second run finds nothing; idempotent', async () => {
    const staging = await pendingIds('staging');
    const pending = [...(await pendingIds('production')), ...staging];
    // The four failed uploads; the endpoint killed; the SIGTERM one only if the signal came after its dump was complete.
    expect(pending.length - staging.length).toBe(4);
    expect(staging.length === 1 || staging.length === 2, String(staging.length)).toBe(true);
    const localBefore = fileDigests(fleet.backupRoot);
    const bucketBefore = (await bucket.list('acme/')).map((o) => `${o.key} ${o.size}`);

    const dry = await runCli(fleet, ['offsite', 'sync', '--dry-run'], { env: gw.env() });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^acme\/production: would upload 4, already there 0 \(dry run\) → s3:\/\/pgfleet-write\/base$/m);
    expect(dry.stdout).toMatch(new RegExp(`^acme/staging: would upload ${staging.length}, already there 0 \\(dry run\\)`, 'm'));
    for (const id of pending) expect(dry.stdout).toContain(`  ${id}  upload`);
    expect(fileDigests(fleet.backupRoot)).toEqual(localBefore);
    expect((await bucket.list('acme/')).map((o) => `${o.key} ${o.size}`)).toEqual(bucketBefore);

    const r = await runCli(fleet, ['offsite', 'sync'], { env: gw.env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^acme\/production: uploaded 4, already there 0 →/m);
    expect(r.stdout).toMatch(new RegExp(`^acme/staging: uploaded ${staging.length}, already there 0 →`, 'm'));
    expect(r.stdout).toMatch(/^  aborted  unfinished upload of acme\/staging\/database\/db_\S+\.dump\.zst\.age$/m);
    expect(await pendingIds('production')).toEqual([]);
    expect(await pendingIds('staging')).toEqual([]);
    const copies = new Repository(bucket);
    const inBucket = [...(await copies.list('acme', 'production')), ...(await copies.list('acme', 'staging'))].map((c) => c.meta.id);
    for (const id of pending) expect(inBucket).toContain(id);
    // The staging copy went multipart (> 8 MiB) and was confirmed by the gateway's multipart ETag, not read back.
    const big = jsonLines(r.stderr).find((l) => l.msg === 'offsite copy uploaded' && l.project === 'acme' && l.environment === 'staging');
    expect(big).toMatchObject({ verified_by: 'etag' });
    expect(Number(big!.bytes)).toBeGreaterThan(8 * 1024 * 1024);
    expect(await uploads(bucket)).toBe(0);

    const again = await runCli(fleet, ['offsite', 'sync'], { env: gw.env() });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^acme\/production: nothing pending →/m);
    expect(again.stdout).toMatch(/^acme\/staging: nothing pending →/m);
  }, 240_000);

  it('a pending backup whose copy is already complete in the bucket is marked uploaded, not uploaded again', async () => {
    const b = (await new Repository(fleet.backupRoot).list('acme', 'production'))[0]!;
    const key = `acme/production/database/${b.meta.id}.dump.zst.age`;
    const before = await bucket.stat(key);
    writeFileSync(b.metaPath, JSON.stringify({ ...b.meta, offsite: { status: 'pending', key, error: 'the record failed' } }));
    const r = await runCli(fleet, ['offsite', 'sync', 'acme', 'production'], { env: gw.env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`  ${b.meta.id}  already there, marked uploaded`);
    expect((await bucket.stat(key))!.mtime).toEqual(before!.mtime);
    expect(await pendingIds('production')).toEqual([]);
  });

  it('a backup whose upload fails is shown, stays pending and fails the run (exit 1); a bucket that refuses the credentials fails the target', async () => {
    const b = (await new Repository(fleet.backupRoot).list('acme', 'production'))[0]!;
    const key = `acme/production/database/${b.meta.id}.dump.zst.age`;
    writeFileSync(b.metaPath, JSON.stringify({ ...b.meta, offsite: { status: 'pending', key } }));
    await bucket.remove(key + '.json');
    // The local dump changed on disk (same size): its upload is refused, nothing left in the bucket.
    const dump = readFileSync(b.path);
    dump[dump.length >> 1] ^= 0xff;
    writeFileSync(b.path, dump);
    const r = await runCli(fleet, ['offsite', 'sync', 'acme', 'production'], { env: gw.env() });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^acme\/production: uploaded 0, already there 0, FAILED 1 \(still pending\)/m);
    expect(r.stdout).toContain(`  ${b.meta.id}  FAILED: ${b.path}: the local dump read for upload is not the backup`);
    expect(await pendingIds('production')).toEqual([b.meta.id]);
    expect(await bucket.stat(key)).toBeNull();
    expect(await bucket.stat(key + '.json')).toBeNull();

    const refused = await runCli(fleet, ['offsite', 'sync', 'acme', 'production'], { env: { ...gw.env(), AWS_SECRET_ACCESS_KEY: 'wrong-secret-Zq81x' } });
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stdout).toMatch(/^acme\/production: FAILED: s3:\/\/pgfleet-write\/base: .*refused the credentials/m);
    expect(refused.stdout + refused.stderr).not.toContain('wrong-secret-Zq81x');
  });
});

describe('status and metrics', () => {
  it('per target: the newest confirmed offsite copy and its age, the pending count; status fails past offsite.max_age', async () => {
    const r = await runCli(fleet, ['status', '--json'], { env: gw.env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const prod = report.targets.find((t: { environment: string }) => t.environment === 'production');
    const staging = report.targets.find((t: { environment: string }) => t.environment === 'staging');
    expect(prod.offsite).toMatchObject({ pending: 1, max_age_seconds: 26 * 3600, latest: { id: expect.stringMatching(/^db_/), key: expect.stringMatching(/\.dump\.zst\.age$/) } });
    expect(staging.offsite).toMatchObject({ pending: 0, latest: { uploaded_at: expect.any(String) } });
    const table = await runCli(fleet, ['status'], { env: gw.env() });
    expect(table.stdout.split('\n')[0]).toMatch(/\bVERIFIED\s+OFFSITE\s+PROBLEMS$/);
    expect(table.stdout).toMatch(/acme\/production .*old, 1 pending/);

    const prom = readFileSync(path.join(fleet.dir, 'pgfleet.prom'), 'utf8');
    expect(prom).toContain('pgfleet_offsite_enabled{project="acme",environment="production"} 1');
    expect(prom).toContain('pgfleet_offsite_pending_count{project="acme",environment="production"} 1');
    expect(prom).toContain('pgfleet_offsite_pending_count{project="acme",environment="staging"} 0');
    expect(prom).toMatch(/pgfleet_offsite_last_success_timestamp_seconds\{project="acme",environment="staging"\} [1-9]/);

    offsiteConfig({ max_age: '1s' });
    try {
      await new Promise((res) => setTimeout(res, 1500));
      const old = await runCli(fleet, ['status'], { env: gw.env() });
      expect(old.code).toBe(1);
      expect(old.stdout).toMatch(/acme\/production .*newest offsite copy is \d+[smh] old \(offsite\.max_age 1s\), 1 pending/);
      expect(old.stdout).toMatch(/acme\/staging .*newest offsite copy is \d+[smh] old/);
    } finally {
      offsiteConfig();
    }
  });
});

describe('offsite retention in prune, with object lock', () => {
  it('its own tiers; a copy whose lock has expired (or had none) is removed, one under lock is kept with the reason; every object written carries the lock', async () => {
    const LOCKED = 'pgfleet-write-locked';
    await bucket.client.send(new CreateBucketCommand({ Bucket: LOCKED, ObjectLockEnabledForBucket: true }));
    const tiers = { url: `s3://${LOCKED}/base`, keep_daily: 1, keep_weekly: 0, keep_monthly: 0 };
    const backupAt = async (now: string) => {
      const { ctx } = fleet.context({ env: gw.env(), now });
      return runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    };
    try {
      offsiteConfig(tiers);
      const a = await backupAt('2025-01-01T02:00:00Z'); // no lock
      offsiteConfig({ ...tiers, object_lock: { mode: 'GOVERNANCE', days: 1 } });
      const locked = await offsiteStore(findTarget(fleet.context().ctx.config, 'acme', 'production'), {}, gw.env());
      const copies = new Repository(locked);
      const b = await backupAt('2025-01-02T02:00:00Z');
      expect(a.meta.offsite?.status).toBe('uploaded');
      const c = await backupAt('2025-01-03T02:00:00Z');
      // The cycles' offsite retention (at PGFLEET_NOW, so all within retention_days) kept them all.
      expect((await copies.list('acme', 'production')).map((x) => x.meta.id)).toEqual([c.meta.id, b.meta.id, a.meta.id]);
      for (const key of [`acme/production/database/${c.meta.id}.dump.zst.age`, `acme/production/database/${c.meta.id}.dump.zst.age.json`]) {
        const h = await locked.client.send(new HeadObjectCommand({ Bucket: LOCKED, Key: `base/${key}` }));
        expect(h.ObjectLockMode, key).toBe('GOVERNANCE');
        expect(h.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
      }

      const dry = await runCli(fleet, ['prune', 'acme', 'production', '--dry-run'], { env: gw.env() });
      expect(dry.code, dry.stderr).toBe(0);
      // Now (past retention_days): keep_daily 1 keeps c; a (no lock) goes; b (locked) stays.
      expect(dry.stdout).toContain(`  offsite s3://${LOCKED}/base: would remove 1, would keep 2 (1 under lock)`);
      expect(dry.stdout).toMatch(new RegExp(`    remove  ${a.meta.id}  `));
      expect((await copies.list('acme', 'production')).map((x) => x.meta.id)).toEqual([c.meta.id, b.meta.id, a.meta.id]);
      expect(dry.stdout).toMatch(new RegExp(`    keep    ${b.meta.id}  .*but kept: under object lock GOVERNANCE until \\d{4}-`));
      const r = await runCli(fleet, ['prune', 'acme', 'production'], { env: gw.env() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`  offsite s3://${LOCKED}/base: removed 1, kept 2 (1 under lock)`);
      expect(r.stdout).toMatch(new RegExp(`    removed  ${a.meta.id}  `));
      expect(r.stdout).toMatch(new RegExp(`    keep    ${b.meta.id}  .*but kept: under object lock GOVERNANCE until`));
      expect((await copies.list('acme', 'production')).map((x) => x.meta.id)).toEqual([c.meta.id, b.meta.id]);
      // The lock is the bucket's, not pgfleet's politeness: a delete is refused.
      await expect(locked.remove(`acme/production/database/${b.meta.id}.dump.zst.age.json`)).rejects.toThrow(/access denied|AccessDenied/i);
    } finally {
      offsiteConfig();
    }
  }, 180_000);
});

describe('what interrupted uploads left in the bucket', () => {
  it('an object without metadata is listed as damaged once a day old and then removed by offsite prune; a day-old unfinished multipart upload is aborted; nothing younger is touched', async () => {
    const dir = 'acme/production/database';
    const orphan = `${dir}/db_20240101_000000Z.dump.zst.age`;
    const unfinished = `${dir}/db_20240102_000000Z.dump.zst.age`;
    await bucket.save(orphan, Buffer.from('age-encryption.org/v1\ncut short'));
    await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.bucket, Key: `${bucket.prefix}/${unfinished}` }));
    const target = findTarget(fleet.context().ctx.config, 'acme', 'production');
    const later = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const listed = async (now?: string) => {
      const r = await runCli(fleet, ['list', 'acme', 'production', '--offsite', '--json'], { env: { ...gw.env(), ...(now ? { PGFLEET_NOW: now } : {}) } });
      return (JSON.parse(r.stdout) as { id: string; state: string; problem?: string }[]).find((b) => b.id === 'db_20240101_000000Z');
    };

    // Young (a live upload's, as far as anyone can tell): neither listed nor touched.
    expect(await listed()).toBeUndefined();
    const young = await pruneOffsite(fleet.context({ env: gw.env() }).ctx, target);
    expect(young.orphans).toEqual([]);
    expect(young.abandoned).not.toContain(unfinished);
    expect(await bucket.stat(orphan)).not.toBeNull();

    // A day later: listed as damaged, never as a copy; prune removes it and aborts the upload.
    expect(await listed(later)).toMatchObject({ state: 'damaged', problem: expect.stringMatching(/^dump without metadata/) });
    const copiesBefore = (await new Repository(bucket).list('acme', 'production')).map((c) => c.meta.id);
    const swept = await pruneOffsite(fleet.context({ env: gw.env(), now: later }).ctx, target);
    expect(swept.orphans).toEqual([{ key: orphan, removed: true, reason: expect.stringMatching(/^dump without metadata/) }]);
    expect(swept.abandoned).toContain(unfinished);
    expect(await bucket.stat(orphan)).toBeNull();
    const left = (await bucket.client.send(new ListMultipartUploadsCommand({ Bucket: bucket.bucket, Prefix: `${bucket.prefix}/${dir}/` }))).Uploads ?? [];
    expect(left).toEqual([]);
    // Only retention removed copies (by its tiers), never the sweep: every complete copy it kept is still whole.
    const after = (await new Repository(bucket).list('acme', 'production')).map((c) => c.meta.id);
    expect(after).toEqual(copiesBefore.filter((id) => !swept.remove.some((r) => r.id === id)));
  }, 180_000);
});
