#!/usr/bin/env node
/**
 * `npm run demo`: a demo platform of real tenant containers (podman, PostgreSQL 15 with sample
 * data), its projects.yml, then pgfleet's nightly job over all of it, the resulting list, the
 * weekly verification restores and the monitoring status.
 * Everything lives in .demo/ and in containers named pgfleet-demo-*; `npm run demo -- --clean`
 * removes them.
 */
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { Runner } from '../lib/process/runner.js';
import { sampleSql } from './sandbox/sample.js';
import { Sandbox } from './sandbox/tenants.js';
import { PACKAGE_ROOT } from '../lib/core/package.js';
import { EXIT } from '../lib/core/errors.js';
import { VERBS } from './commands/index.js';

const DIR = path.join(PACKAGE_ROOT, '.demo');
const CLI = path.join(PACKAGE_ROOT, 'dist', 'scripts', 'pgfleet.js');
const TENANTS = [
  { project: 'acme', container: 'pgfleet-demo-acme', user: 'acme', password: 'demo-acme-password', databases: { production: 'acme_production', staging: 'acme_staging' }, scale: 5 },
  { project: 'globex', container: 'pgfleet-demo-globex', user: 'globex', databases: { production: 'globex_production' }, scale: 2 },
  { project: 'initech', container: 'pgfleet-demo-initech', user: 'initech', databases: { production: 'initech_production' }, scale: 1 },
];
const APPS = ['pgfleet-demo-acme-app'];

const say = (s: string) => process.stdout.write(s + '\n');

async function clean(runner: Runner) {
  const names = [...TENANTS.map((t) => t.container), ...APPS];
  await runner.run(['podman', 'rm', '-f', '-t', '0', ...names], {}).catch(() => undefined);
  rmSync(DIR, { recursive: true, force: true });
}

async function pgfleet(runner: Runner, args: string[]): Promise<void> {
  say(`\n$ pgfleet ${args.join(' ')}`);
  const r = await runner.run([process.execPath, CLI, ...args], { env: { PGFLEET_CONFIG: path.join(DIR, 'projects.yml'), PGFLEET_LOG_LEVEL: 'warn' }, what: 'pgfleet' });
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

  const doc: Record<string, unknown> = {
    platform: { backup_root: path.join(DIR, 'backups'), container_cli: 'podman', concurrency: 2, max_backup_age: '26h' },
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

  const conf = path.relative(process.cwd(), path.join(PACKAGE_ROOT, 'scripts', 'sandbox', 'containers.conf'));
  say(`
Try more against the demo platform:
  export PGFLEET_CONFIG=${path.relative(process.cwd(), path.join(DIR, 'projects.yml'))} CONTAINERS_CONF=${conf}
  npx pgfleet list acme production --json
  npx pgfleet backup acme production
  npx pgfleet restore acme production --latest --dry-run
  npx pgfleet predeploy acme production --release v2
Clean up (containers pgfleet-demo-*, and .demo/):
  npm run demo -- --clean`);
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : e}\n`);
  process.exit(EXIT.FAILED);
});
