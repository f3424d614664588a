/**
 * Offsite copies on the ~1 GB tenant, with a local RADOS Gateway on the same machine
 * (scripts/sandbox/objectstore.ts, its own port): `backup` with offsite (the local backup, then its
 * upload through age into the bucket) against `backup` without, and `restore --from-offsite --into`
 * (streamed from the bucket through age -d, checked while staged) against the local
 * `restore --into`, both with 2 jobs.
 * Targets (median of the paired ratios, each pgfleet run paired with its counterpart just before
 * it, as the restore section does: this machine's speed drifts over minutes): backup with offsite
 * ≤ 1.25× without; restore --from-offsite ≤ 1.25× the local restore; peak RSS ≤ 200 MB.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { S3Store } from '../../lib/storage/s3.js';
import { startObjectStore } from '../sandbox/objectstore.js';
import { median, settle as settleAll } from './measure.js';
import type { BenchSection } from './types.js';

const PORT = 7489;
const BUCKET = 'pgfleet-bench';

export const offsiteSection: BenchSection = {
  name: 'offsite',
  async run(env) {
    const big = await env.bigTenant();
    const gw = await startObjectStore(path.join(env.dir, 'objectstore'), PORT, env.runner);
    try {
      await new S3Store({ url: `s3://${BUCKET}`, endpoint: gw.endpoint, region: gw.region, pathStyle: true, env: gw.env() }).client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const identity = path.join(env.dir, 'age-identity.txt');
      await env.runner.run(['age-keygen', '-o', identity]);
      const recipient = (await env.runner.run(['age-keygen', '-y', identity])).stdout.trim();
      // The same tenant, with offsite: its own backup root, so the plain side's repository stays as it is.
      const doc = parse(readFileSync(big.configFile, 'utf8'));
      doc.platform = {
        ...doc.platform,
        backup_root: path.join(env.dir, 'offsite-backups'),
        offsite: { url: `s3://${BUCKET}/bench`, endpoint: gw.endpoint, region: gw.region, path_style: true },
        encryption: { age_recipients: [recipient] },
      };
      const offsiteConfig = path.join(path.dirname(big.configFile), 'projects-offsite.yml');
      writeFileSync(offsiteConfig, stringify(doc));
      const offsiteEnv = { ...gw.env(), PGFLEET_AGE_IDENTITY_FILE: identity };
      const sql = (q: string) => env.sandbox.sql(big.container, 'postgres', q);
      const settle = () => settleAll(env, [big.container]);

      const rss: number[] = [];
      const ratio = { backup: [] as number[], restore: [] as number[] };
      const wall = { plainBackup: [] as number[], offsiteBackup: [] as number[], localRestore: [] as number[], offsiteRestore: [] as number[] };
      for (let i = 0; i < env.rounds; i++) {
        await settle();
        const plain = await env.pgfleet(['backup', 'bench', 'production', '--config', big.configFile]);
        await settle();
        const off = await env.pgfleet(['backup', 'bench', 'production', '--config', offsiteConfig], offsiteEnv);
        const recorded = JSON.parse(readFileSync(`${off.stdout.trim().split('\n').pop()}.json`, 'utf8'));
        if (recorded.offsite?.status !== 'uploaded') throw new Error(`the backup with offsite did not upload its copy: ${JSON.stringify(recorded.offsite)}`);
        wall.plainBackup.push(plain.wallMs);
        wall.offsiteBackup.push(off.wallMs);
        ratio.backup.push(off.wallMs / plain.wallMs);
        rss.push(plain.peakRssMb, off.peakRssMb);

        await settle();
        const local = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--yes', '--into', 'bench_into', '--jobs', '2', '--config', offsiteConfig], offsiteEnv);
        await sql('DROP DATABASE bench_into');
        await settle();
        const remote = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--from-offsite', '--yes', '--into', 'bench_into', '--jobs', '2', '--config', offsiteConfig], offsiteEnv);
        await sql('DROP DATABASE bench_into');
        wall.localRestore.push(local.wallMs);
        wall.offsiteRestore.push(remote.wallMs);
        ratio.restore.push(remote.wallMs / local.wallMs);
        rss.push(local.peakRssMb, remote.peakRssMb);
        env.log(
          `round ${i + 1}: backup ${(off.wallMs / 1000).toFixed(1)} s / ${(plain.wallMs / 1000).toFixed(1)} s = ${(off.wallMs / plain.wallMs).toFixed(2)}x · restore --from-offsite ${(remote.wallMs / 1000).toFixed(1)} s / ${(local.wallMs / 1000).toFixed(1)} s = ${(remote.wallMs / local.wallMs).toFixed(2)}x`,
        );
      }
      env.record('offsite', 'backup without offsite (median)', median(wall.plainBackup) / 1000, 's');
      env.record('offsite', 'backup with offsite, encrypted (median)', median(wall.offsiteBackup) / 1000, 's');
      const b = median(ratio.backup);
      env.record('offsite', 'backup with / without offsite', b, 'x', '<= 1.25x', b <= 1.25);
      env.record('offsite', 'restore --into, local (median)', median(wall.localRestore) / 1000, 's');
      env.record('offsite', 'restore --into --from-offsite (median)', median(wall.offsiteRestore) / 1000, 's');
      const r = median(ratio.restore);
      env.record('offsite', 'restore --from-offsite / local', r, 'x', '<= 1.25x', r <= 1.25);
      const peak = Math.max(...rss);
      env.record('offsite', 'peak RSS of pgfleet', peak, 'MB', '<= 200 MB', peak <= 200);
    } finally {
      await gw.stop();
    }
  },
};
