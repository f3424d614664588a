#!/usr/bin/env node
/**
 * `npm run demo`: a demo platform of real tenant containers (podman, PostgreSQL 15 with sample
 * data), its projects.yml, then pgfleet's nightly job over all of it, the resulting list, the
 * weekly verification restores and the monitoring status; then offsite copies: a local object store
 * (scripts/sandbox/objectstore.ts, a real S3 API) receives every backup encrypted with age, and a
 * tenant whose backups and database are gone comes back from the bucket alone; last, a simulated
 * year of the same tenants' history drawn by `pgfleet report` (.demo/report.html).
 * Everything lives in .demo/ (the object store's daemons too) and in containers named
 * pgfleet-demo-*; `npm run demo -- --clean` removes them, the object store included.
 */
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { Runner } from '../lib/process/runner.js';
import { sampleSql } from './sandbox/sample.js';
import { Sandbox } from './sandbox/tenants.js';
import { demoHistory } from './sandbox/history.js';
import { startObjectStore, stopObjectStore } from './sandbox/objectstore.js';
import { S3Store } from '../lib/storage/s3.js';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { PACKAGE_ROOT } from '../lib/core/package.js';
import { EXIT } from '../lib/core/errors.js';
import { VERBS } from './commands/index.js';

const DIR = path.join(PACKAGE_ROOT, '.demo');
const CLI = path.join(PACKAGE_ROOT, 'dist', 'bin', 'pgfleet.js');
const TENANTS = [
  { project: 'acme', container: 'pgfleet-demo-acme', user: 'acme', password: 'demo-acme-password', databases: { production: 'acme_production', staging: 'acme_staging' }, scale: 5 },
  { project: 'globex', container: 'pgfleet-demo-globex', user: 'globex', databases: { production: 'globex_production' }, scale: 2 },
  { project: 'initech', container: 'pgfleet-demo-initech', user: 'initech', databases: { production: 'initech_production' }, scale: 1 },
];
const APPS = ['pgfleet-demo-acme-app'];
/** The demo's object store: its own port (the tests use 7491 and up). */
const OBJECTSTORE_PORT = 7479;
const BUCKET = 'pgfleet-demo';
/** What the demo's pgfleet runs get beyond the config: the bucket's credentials and the identity (set once the store runs). */
const offsiteEnv: Record<string, string> = {};

const say = (s: string) => process.stdout.write(s + '\n');

async function clean(runner: Runner) {
  const names = [...TENANTS.map((t) => t.container), ...APPS];
  await runner.run(['podman', 'rm', '-f', '-t', '0', ...names], {}).catch(() => undefined);
  await stopObjectStore(path.join(DIR, 'objectstore'));
  rmSync(DIR, { recursive: true, force: true });
}

async function pgfleet(runner: Runner, args: string[], env: Record<string, string> = {}): Promise<void> {
  say(`\n$ pgfleet ${args.join(' ')}`);
  const r = await runner.run([process.execPath, CLI, ...args], { env: { PGFLEET_CONFIG: path.join(DIR, 'projects.yml'), PGFLEET_LOG_LEVEL: 'warn', ...offsiteEnv, ...env }, what: 'pgfleet' });
  process.stdout.write(r.stdout);
}

async function main() {
  const runner = new Runner();
  if (process.argv.includes('--clean')) {
    await clean(runner);
    say('demo containers and .demo/ removed');
    return;
  }
  if (existsSync(DIR)) await clean(runner);
  mkdirSync(DIR, { recursive: true });
  const sandbox = new Sandbox(runner, 'podman', path.join(DIR, 'data'));

  say('starting the demo platform: one PostgreSQL 15 container per tenant, sample data in each…');
  for (const t of TENANTS) {
    await sandbox.startTenant({ name: t.container, databases: Object.values(t.databases), user: t.user, password: t.password });
    for (const db of Object.values(t.databases)) await sandbox.sql(t.container, db, sampleSql(t.user, t.scale));
    // Verification and safe restores create (and rename) databases as the tenant's role.
    await sandbox.sql(t.container, 'postgres', `ALTER ROLE ${t.user} CREATEDB`);
    say(`  ${t.container}: ${Object.values(t.databases).join(', ')}${t.password ? ' (password authentication)' : ''}`);
  }
  for (const a of APPS) await sandbox.startApp(a);

  say('\nstarting a local S3-compatible object store (Ceph RADOS Gateway) for the offsite copies…');
  const gw = await startObjectStore(path.join(DIR, 'objectstore'), OBJECTSTORE_PORT, runner);
  await new S3Store({ url: `s3://${BUCKET}`, endpoint: gw.endpoint, region: gw.region, pathStyle: true, env: gw.env() }).client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const identity = path.join(DIR, 'age-identity.txt');
  await runner.run(['age-keygen', '-o', identity], { what: 'age-keygen' });
  const recipient = (await runner.run(['age-keygen', '-y', identity], { what: 'age-keygen -y' })).stdout.trim();
  Object.assign(offsiteEnv, gw.env(), { PGFLEET_AGE_IDENTITY_FILE: identity });
  writeFileSync(path.join(DIR, 'offsite.env'), Object.entries(offsiteEnv).map(([k, v]) => `export ${k}=${v}\n`).join(''), { mode: 0o600 });
  say(`  ${gw.endpoint}, bucket ${BUCKET}; backups encrypted to ${recipient} (identity in .demo/age-identity.txt, kept off a real backup host)`);

  const doc: Record<string, unknown> = {
    platform: {
      backup_root: path.join(DIR, 'backups'),
      container_cli: 'podman',
      concurrency: 2,
      max_backup_age: '26h',
      offsite: { url: `s3://${BUCKET}/fleet`, endpoint: `http://127.0.0.1:${OBJECTSTORE_PORT}`, region: 'us-east-1', path_style: true },
      encryption: { age_recipients: [recipient] },
    },
  };
  for (const t of TENANTS) {
    doc[t.project] = {
      image: `registry.example/${t.project}:latest`, // the deploy system's own keys: pgfleet ignores them
      database: {
        type: 'postgresql',
        container: t.container,
        databases: t.databases,
        user: t.user,
        ...(t.project === 'acme' ? { app_containers: { production: APPS } } : {}),
        backup: { enabled: true, retention_days: 30 },
      },
    };
    if (t.password)
      for (const env of Object.keys(t.databases)) {
        mkdirSync(path.join(DIR, 'configs', t.project), { recursive: true, mode: 0o700 });
        writeFileSync(path.join(DIR, 'configs', t.project, `.env.${env}`), `PGPASSWORD=${t.password}\n`, { mode: 0o600 });
      }
  }
  writeFileSync(path.join(DIR, 'projects.yml'), stringify(doc));
  say(`\nwrote ${path.relative(process.cwd(), path.join(DIR, 'projects.yml'))} (credentials in .demo/configs/<project>/.env.<environment>)`);

  await pgfleet(runner, ['config', 'check']);
  if (VERBS.some((v) => v.name === 'scheduled-backup')) {
    await pgfleet(runner, ['scheduled-backup']);
  } else {
    for (const t of TENANTS) for (const env of Object.keys(t.databases)) await pgfleet(runner, ['backup', t.project, env, '--type', 'scheduled']);
  }
  await pgfleet(runner, ['list']);
  await pgfleet(runner, ['verify-backups']);
  await pgfleet(runner, ['status']);

  say('\nevery backup also landed offsite, encrypted to the age recipient; the bucket alone says so:');
  await pgfleet(runner, ['list', 'initech', '--offsite']);
  say('\ndisaster: initech\'s local backups are deleted and its database dropped…');
  rmSync(path.join(DIR, 'backups', 'initech'), { recursive: true, force: true });
  await sandbox.sql('pgfleet-demo-initech', 'postgres', 'DROP DATABASE initech_production WITH (FORCE)');
  say('…and it comes back from the bucket (streamed, decrypted, sha256 and every row count checked):');
  await pgfleet(runner, ['restore', 'initech', 'production', '--latest', '--from-offsite', '--into', 'initech_production', '--yes']);

  // The report draws history: a simulated year of the same tenants, in a backup root of its own
  // (its dumps are sparse files holding no data, never to be restored), up to today at noon.
  const now = `${new Date().toISOString().slice(0, 10)}T12:00:00Z`;
  say(`\na year of nightly backups of the same tenants, simulated up to ${now} (PGFLEET_NOW; .demo/history), as pgfleet report sees it:`);
  const history = { PGFLEET_CONFIG: await demoHistory(path.join(DIR, 'history'), new Date(now)), PGFLEET_NOW: now };
  await pgfleet(runner, ['report'], history);
  await pgfleet(runner, ['report', '--html', path.join(DIR, 'report.html')], history);
  say('  open it in a browser: dump size and backup time over the year, restore proofs, offsite lag; globex flagged for its shrunk dump');

  const conf = path.relative(process.cwd(), path.join(PACKAGE_ROOT, 'scripts', 'sandbox', 'containers.conf'));
  say(`
Try more against the demo platform:
  export PGFLEET_CONFIG=${path.relative(process.cwd(), path.join(DIR, 'projects.yml'))} CONTAINERS_CONF=${conf}
  . .demo/offsite.env           # the local object store's keys and the age identity
  npx pgfleet list --offsite
  npx pgfleet verify-backups acme production --offsite
  npx pgfleet list acme production --json
  npx pgfleet backup acme production
  npx pgfleet restore acme production --latest --dry-run
  npx pgfleet predeploy acme production --release v2
Clean up (containers pgfleet-demo-*, the object store, and .demo/):
  npm run demo -- --clean`);
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : e}\n`);
  process.exit(EXIT.FAILED);
});
