/**
 * The read side of offsite copies, against the project's own local RADOS Gateway
 * (scripts/sandbox/objectstore.ts, port 7494: its own) and real tenant containers: list --offsite
 * from the bucket alone.
 * Copies reach the bucket the real way: every backup of a target with offsite configured uploads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { runBackup } from '../../lib/commands/backup.js';
import { findTarget } from '../../lib/config/load.js';
import { offsiteStore } from '../../lib/offsite/bucket.js';
import { Repository } from '../../lib/storage/repository.js';
import { startObjectStore, type RunningObjectStore } from '../../scripts/sandbox/objectstore.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { TestFleet } from '../helpers.js';

const PORT = 7494;
const BUCKET = 'pgfleet-read';
const PASSWORD = 'Pw-offsite-read-9q2z-secret';

let gw: RunningObjectStore;
let fleet: TestFleet;
let identity: string;
let recipient: string;

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
  await offsiteStore(findTarget(fleet.context().ctx.config, 'acme', 'production'), {}, gw.env()).client.send(new CreateBucketCommand({ Bucket: BUCKET }));
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
    const meta = (await new Repository(offsiteStore(findTarget(ctx.config, 'acme', 'production'), {}, gw.env())).find('acme', 'production', b.meta.id))!.meta;
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
    const bucket = offsiteStore(findTarget(ctx.config, 'acme', 'production'), {}, gw.env());
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

