import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runDeploymentStatus } from '../../lib/commands/deployment-status.js';
import { runPredeploy } from '../../lib/commands/predeploy.js';
import { runRollback } from '../../lib/commands/rollback.js';
import { manifestPath, readManifest, type DeploymentManifest } from '../../lib/storage/manifests.js';
import { EXIT } from '../../lib/core/errors.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { dataDigest, schemaDump, TestFleet } from '../helpers.js';

/** Breaks schema and data the way a bad migration would, run as the app's owner role. */
const BAD_MIGRATION = `
SET ROLE acme;
ALTER TABLE "Customer" DROP COLUMN city;
DELETE FROM orders WHERE id % 2 = 0;
UPDATE "Customer" SET "FullName" = 'oops';
CREATE TABLE release_v2_only (id int);
SELECT setval('invoice_no', 99999);
`;

describe('deployments: predeploy, deployment-status, rollback (real PostgreSQL 15 in containers)', () => {
  let fleet: TestFleet;
  let acmeApp: string;
  let globexApp: string;
  const PASSWORD = 'Pw-for-deploy-7Qx2';
  const hookLog = () => path.join(fleet.dir, 'hooks', 'calls.log');
  const readAcme = (release: string) => readManifest(fleet.context().ctx.repo, 'acme', 'production', manifestPath(fleet.context().ctx.repo, 'acme', 'production', release));

  beforeAll(async () => {
    fleet = await TestFleet.create([
      { project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: PASSWORD },
      { project: 'globex', databases: { production: 'globex_production' } },
    ]);
    acmeApp = `${fleet.prefix}-acme-app`;
    globexApp = `${fleet.prefix}-globex-app`;
    await Promise.all([fleet.sandbox.startApp(acmeApp), fleet.sandbox.startApp(globexApp), fleet.sql('acme', 'acme_production', sampleSql('acme'))]);
    // A safe restore renames databases: the owner role needs CREATEDB.
    await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
    await fleet.sql('globex', 'globex_production', 'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g;');

    // Hook scripts, named relative to projects.yml's directory (the hooks' working directory).
    mkdirSync(path.join(fleet.dir, 'hooks'));
    writeFileSync(
      path.join(fleet.dir, 'hooks', 'rollback.sh'),
      '#!/bin/sh\n{ echo "args $*"; echo "cwd $(pwd)"; env | grep "^PGFLEET_" | grep -v "^PGFLEET_CONFIG=" | sort; echo ---; } >> hooks/calls.log\necho "switched containers back to $PGFLEET_PREVIOUS_RELEASE"\n',
    );
    writeFileSync(path.join(fleet.dir, 'hooks', 'failing.sh'), '#!/bin/sh\necho "pulling images"\necho "deploy tool exploded: registry unreachable" >&2\nexit 3\n');
    for (const f of ['rollback.sh', 'failing.sh']) chmodSync(path.join(fleet.dir, 'hooks', f), 0o755);
    fleet.projects[0].database = { app_containers: { production: [acmeApp] }, hooks: { rollback: ['./hooks/rollback.sh', 'rollback', 'acme'] } };
    fleet.projects[1].database = { app_containers: { production: [globexApp] }, hooks: { rollback: ['./hooks/failing.sh'] } };
    fleet.writeConfig();
  });
  afterAll(() => fleet?.cleanup());

  it('a bad deploy, end to end: predeploy, a breaking migration, rollback → as before the deploy', async () => {
    // Release v1 is deployed first; then v2's deploy hook calls predeploy.
    const first = fleet.context({ now: '2025-03-01T10:00:00Z' });
    const r1 = await runPredeploy(first.ctx, { project: 'acme', environment: 'production', release: 'v1' });
    expect(first.out.at(-1)).toBe(r1.file);
    expect(r1.manifest.previous_release).toBeNull();

    const c = fleet.container('acme');
    const schemaBefore = await schemaDump(fleet.runner, c, 'acme_production');
    const dataBefore = await dataDigest(fleet.sandbox, c, 'acme_production');

    const cli = await fleet.cli(['predeploy', 'acme', 'production', '--release', 'v2'], { env: { PGFLEET_NOW: '2025-03-02T10:00:00Z' } });
    expect(cli.code, cli.stderr).toBe(0);
    const file = manifestPath(first.ctx.repo, 'acme', 'production', 'v2');
    expect(cli.stdout.trim().split('\n').at(-1)).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const m = JSON.parse(readFileSync(file, 'utf8')) as DeploymentManifest;
    expect(m).toMatchObject({ project: 'acme', environment: 'production', release: 'v2', previous_release: 'v1', created_at: '2025-03-02T10:00:00.000Z', status: 'deployed', rollback: null });
    expect(m.app_containers).toEqual([{ name: acmeApp, image: expect.any(String) }]);
    const backups = await first.ctx.repo.list('acme', 'production');
    const pre = backups.find((b) => b.meta.id === m.backup)!;
    expect(pre.meta).toMatchObject({ type: 'pre-deploy', release: 'v2' });
    expect(m.database_backup).toBe(pre.path);

    // The same release again is refused (its backup is the state to go back to).
    const again = await fleet.cli(['predeploy', 'acme', 'production', '--release', 'v2']);
    expect(again.code).toBe(EXIT.USAGE);
    expect(again.stderr).toMatch(/already has a deployment manifest/);

    // deployment-status: human and --json.
    const st = await fleet.cli(['deployment-status', 'acme', 'production']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/latest release v2/);
    expect(st.stdout).toMatch(/v1\s+2025-03-01T10:00:00.000Z\s+db_\S+\s+deployed/);
    const js = await fleet.cli(['deployment-status', 'acme', 'production', '--json']);
    expect(JSON.parse(js.stdout)).toEqual(m);

    // The deploy runs a migration that breaks schema and data.
    await fleet.sql('acme', 'acme_production', BAD_MIGRATION);
    expect(await schemaDump(fleet.runner, c, 'acme_production')).not.toBe(schemaBefore);

    // Dry run: a plan, nothing changed. Without --yes and without a TTY: exit 2.
    const dry = await fleet.cli(['rollback', 'acme', 'production', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/release\s+v2/);
    expect(dry.stdout).toContain(pre.path);
    expect(dry.stdout).toMatch(/dry run: nothing changed/);
    const noYes = await fleet.cli(['rollback', 'acme', 'production']);
    expect(noYes.code).toBe(EXIT.USAGE);
    expect(noYes.stderr).toMatch(/--yes/);
    expect((await readAcme('v2'))!.status).toBe('deployed');
    expect(existsSync(hookLog())).toBe(false);

    // The rollback.
    const { ctx, out, logs } = fleet.context({ now: '2025-03-02T10:30:00Z' });
    const res = await runRollback(ctx, { project: 'acme', environment: 'production', yes: true });
    expect(await schemaDump(fleet.runner, c, 'acme_production')).toBe(schemaBefore);
    expect(await dataDigest(fleet.sandbox, c, 'acme_production')).toEqual(dataBefore);
    expect(await fleet.sandbox.isRunning(acmeApp)).toBe(true);

    const calls = readFileSync(hookLog(), 'utf8').split('---\n').filter(Boolean);
    expect(calls).toHaveLength(1);
    expect(calls[0].trim().split('\n')).toEqual([
      'args rollback acme',
      `cwd ${fleet.dir}`,
      'PGFLEET_ENVIRONMENT=production',
      `PGFLEET_MANIFEST=${file}`,
      'PGFLEET_PREVIOUS_RELEASE=v1',
      'PGFLEET_PROJECT=acme',
      'PGFLEET_RELEASE=v2',
    ]);
    expect(out.join('\n')).toMatch(/rollback hook .*rollback.sh rollback acme: exit code 0\n\s+\| stdout: switched containers back to v1/);

    const after = (await readAcme('v2'))!;
    expect(after).toEqual(res.manifest);
    expect(after.status).toBe('rolled-back');
    expect(after.rollback).toMatchObject({ started_at: '2025-03-02T10:30:00.000Z', finished_at: '2025-03-02T10:30:00.000Z', outcome: 'succeeded', hook: { exit_code: 0, signal: null } });
    expect(after.rollback!.hook!.output_tail).toContain('switched containers back to v1');
    expect([...logs, ...out, JSON.stringify(after)].join('\n')).not.toContain(PASSWORD);

    // A second rollback of the same release refuses and changes nothing (no older state by surprise).
    await fleet.sql('acme', 'acme_production', `INSERT INTO "Customer" ("FullName") VALUES ('written after the rollback')`);
    const second = await fleet.cli(['rollback', 'acme', 'production', '--yes']);
    expect(second.code).toBe(EXIT.USAGE);
    expect(second.stderr).toMatch(/release v2 was already rolled back/);
    expect(await fleet.sql('acme', 'acme_production', `SELECT count(*) FROM "Customer" WHERE "FullName" = 'written after the rollback'`)).toBe('1\n');
    expect(readFileSync(hookLog(), 'utf8').split('---\n').filter(Boolean)).toHaveLength(1);

    // The next deploy's previous release skips the rolled-back one.
    const v3 = await runPredeploy(fleet.context({ now: '2025-03-03T10:00:00Z' }).ctx, { project: 'acme', environment: 'production', release: 'v3' });
    expect(v3.manifest.previous_release).toBe('v1');
  });

  it('rejects hostile release ids with exit 2 and writes nothing', async () => {
    const repo = fleet.context().ctx.repo;
    const before = readdirSync(repo.deploymentsDir('acme', 'production')).sort();
    const backupsBefore = (await repo.list('acme', 'production')).length;
    for (const id of ['../x', 'a/b', '-rm', 'x\ny', '..', '']) {
      for (const args of [
        ['predeploy', 'acme', 'production', `--release=${id}`],
        ['rollback', 'acme', 'production', `--release=${id}`, '--yes'],
        ['deployment-status', 'acme', 'production', `--release=${id}`],
      ]) {
        const r = await fleet.cli(args);
        expect(r.code, `${JSON.stringify(args)}: ${r.stderr}`).toBe(EXIT.USAGE);
        expect(r.stderr).toMatch(/release id|--release <id> is required/);
      }
    }
    await expect(runPredeploy(fleet.context().ctx, { project: 'acme', environment: 'production', release: '../../etc/x' })).rejects.toMatchObject({ exitCode: EXIT.USAGE });
    expect(readdirSync(repo.deploymentsDir('acme', 'production')).sort()).toEqual(before);
    expect((await repo.list('acme', 'production')).length).toBe(backupsBefore);
    expect(existsSync(path.join(fleet.backupRoot, 'acme', 'x'))).toBe(false);
  });

  it('rejects hand-broken manifests clearly, naming the file, and restores nothing', async () => {
    const { ctx } = fleet.context();
    const dir = ctx.repo.deploymentsDir('acme', 'production');
    const v3 = JSON.parse(readFileSync(path.join(dir, 'v3.json'), 'utf8')) as DeploymentManifest;
    const cases: [string, string, RegExp][] = [
      ['broken', '{"release": "broken", ', /not valid JSON/],
      ['schema', JSON.stringify({ ...v3, release: 'schema', status: 'great', extra: true }), /schema: /],
      ['evil', JSON.stringify({ ...v3, release: 'evil', database_backup: '/etc/passwd' }), /outside the backup root/],
      ['other', JSON.stringify({ ...v3, release: 'other', backup: 'db_20200101_000000Z' }), /is not the dump of backup db_20200101_000000Z/],
    ];
    const marker = await fleet.sql('acme', 'acme_production', 'SELECT count(*) FROM "Customer"');
    for (const [release, text, why] of cases) {
      const f = path.join(dir, `${release}.json`);
      writeFileSync(f, text, { mode: 0o600 });
      const named = await fleet.cli(['rollback', 'acme', 'production', '--release', release, '--yes']);
      expect(named.code, named.stderr).toBe(EXIT.USAGE);
      expect(named.stderr).toContain(f);
      expect(named.stderr).toMatch(why);
      // The latest cannot be known while a manifest is unreadable: refuse rather than guess.
      const latest = await fleet.cli(['rollback', 'acme', 'production', '--yes']);
      expect(latest.code).toBe(EXIT.USAGE);
      expect(latest.stderr).toContain(f);
      const st = await fleet.cli(['deployment-status', 'acme', 'production']);
      expect(st.code).toBe(EXIT.USAGE);
      expect(st.stdout).toMatch(/latest release v3/);
      expect(st.stdout).toContain(`UNUSABLE ${f}`);
      rmSync(f);
    }
    expect(await fleet.sql('acme', 'acme_production', 'SELECT count(*) FROM "Customer"')).toBe(marker);
    expect((await readAcme('v3'))!.status).toBe('deployed');
    expect(await runDeploymentStatus(fleet.context().ctx, { project: 'acme', environment: 'production' })).toBe(EXIT.OK);
  });

  it('a rollback hook that fails: the database is restored, exit 1 with the failure reported', async () => {
    const c = fleet.container('globex');
    const pre = await runPredeploy(fleet.context({ now: '2025-04-01T00:00:00Z' }).ctx, { project: 'globex', environment: 'production', release: 'g1' });
    const before = await dataDigest(fleet.sandbox, c, 'globex_production');
    await fleet.sql('globex', 'globex_production', 'DELETE FROM t WHERE id > 10; ALTER TABLE t ADD COLUMN broken int;');

    // On a terminal, an answer other than yes changes nothing (exit 1).
    const declined = runRollback(fleet.context().ctx, { project: 'globex', environment: 'production', confirm: { tty: true, ask: async () => 'no' } });
    await expect(declined).rejects.toMatchObject({ exitCode: EXIT.FAILED, message: expect.stringMatching(/not confirmed/) });
    expect((await readManifest(fleet.context().ctx.repo, 'globex', 'production', pre.file))!.status).toBe('deployed');

    const r = await fleet.cli(['rollback', 'globex', 'production', '--yes']);
    expect(r.code, r.stderr).toBe(EXIT.FAILED);
    expect(r.stderr).toMatch(/database is restored to before release g1, but the rollback hook \.\/hooks\/failing\.sh failed \(exit code 3\)/);
    expect(r.stderr).toContain('deploy tool exploded: registry unreachable');
    expect(await dataDigest(fleet.sandbox, c, 'globex_production')).toEqual(before);
    expect(await fleet.sandbox.isRunning(globexApp)).toBe(true);
    const m = (await readManifest(fleet.context().ctx.repo, 'globex', 'production', pre.file))!;
    expect(m.status).toBe('rolled-back');
    expect(m.rollback).toMatchObject({ outcome: 'hook-failed', hook: { argv: ['./hooks/failing.sh'], exit_code: 3 } });
    expect(m.rollback!.hook!.output_tail).toMatch(/stdout: pulling images\nstderr: deploy tool exploded/);
  });

  it('predeploy when the backup fails (container stopped): non-zero exit, no manifest', async () => {
    const repo = fleet.context().ctx.repo;
    const dir = repo.deploymentsDir('globex', 'production');
    const before = readdirSync(dir).sort();
    await fleet.sandbox.stop(fleet.container('globex'));
    try {
      const r = await fleet.cli(['predeploy', 'globex', 'production', '--release', 'g2']);
      expect(r.code).toBe(EXIT.FAILED);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/globex\/production.*not running/);
      expect(readdirSync(dir).sort()).toEqual(before);
      expect(existsSync(manifestPath(repo, 'globex', 'production', 'g2'))).toBe(false);
    } finally {
      await fleet.sandbox.start(fleet.container('globex'));
    }
  });
});
