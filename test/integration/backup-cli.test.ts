// The built CLI against real PostgreSQL in a real container: exit codes of bad usage and bad
// config, `config check`, JSON log lines without a TTY, names within one second, file modes under
// umask 000, the per-target lock (a second run exits 3 at once; a dead run's lock does not block),
// a retention failure after a backup (the backup kept, the run failed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEMP_PREFIX } from '../../lib/core/fsutil.js';
import { Repository } from '../../lib/storage/repository.js';
import { TEST_CONTAINER_CLI, TestFleet } from '../helpers.js';
import { fillBigTable, jsonLines, runCli, startCli, tempDump, waitFor, whileStreaming } from './support.js';

describe('pgfleet CLI (real PostgreSQL in a container)', () => {
  let fleet: TestFleet;
  let repo: Repository;

  beforeAll(async () => {
    fleet = await TestFleet.create([
      // production holds a table that takes zstd at level 11 a few seconds; staging is small and quick.
      { project: 'acme', databases: { production: 'acme_production', staging: 'acme_staging' }, user: 'acme', database: { backup: { compression_level: 11 } } },
    ]);
    repo = new Repository(fleet.backupRoot);
    await fillBigTable(fleet, 'acme', 'acme_production', 250_000);
    await fleet.sql('acme', 'acme_staging', `CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note SELECT g, 'note ' || g FROM generate_series(1, 100) g; ALTER TABLE note OWNER TO acme;`);
  });
  afterAll(() => fleet?.cleanup());

  describe('exit codes', () => {
    it.each([
      ['no command', [], /usage: pgfleet/],
      ['an unknown command', ['frobnicate'], /unknown command "frobnicate"/],
      ['an unknown flag', ['backup', 'acme', 'staging', '--bogus'], /Unknown option '--bogus'/],
      ['a missing argument', ['backup', 'acme'], /wrong number of arguments/],
      ['an unknown project', ['backup', 'nope', 'staging'], /unknown project "nope"/],
      ['an unknown environment', ['backup', 'acme', 'qa'], /no environment "qa" \(has: production, staging\)/],
      ['an unknown backup type', ['backup', 'acme', 'staging', '--type', 'weekly'], /--type must be one of/],
      ['a bad --lock-wait-timeout', ['backup', 'acme', 'staging', '--lock-wait-timeout', 'forever'], /not a duration/],
      ['list of an unknown project', ['list', 'nope'], /unknown project "nope"/],
    ])('%s: exit 2', async (_what, args, message) => {
      const r = await runCli(fleet, args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout + r.stderr).toMatch(message);
    });

    it('an invalid config: exit 2 for every command, each problem with file, line and key path', async () => {
      const bad = path.join(fleet.dir, 'bad.yml');
      writeFileSync(bad, `platform:\n  backup_root: ${fleet.backupRoot}\nacme:\n  database:\n    type: postgresql\n    container: "-rm"\n    databases: { production: acme_production }\n    backup: { retention_day: 3 }\n`);
      for (const args of [['backup', 'acme', 'production'], ['list'], ['config', 'check'], ['list', '--config', bad]]) {
        const r = await runCli(fleet, args, args.includes('--config') ? {} : { env: { PGFLEET_CONFIG: bad } });
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr).toContain(`pgfleet: config: ${bad}:6: acme.database.container: not a valid container name`);
        expect(r.stderr).toContain(`pgfleet: config: ${bad}:8: acme.database.backup.retention_day: unknown key (did you mean "retention_days"?)`);
      }
      // Nothing ran: no backup directory was created for the target.
      expect(existsSync(repo.targetDir('acme', 'production'))).toBe(false);
    });
  });

  describe('config check', () => {
    it('prints projects × environments and exits 0 on a valid config', async () => {
      const r = await runCli(fleet, ['config', 'check']);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^PROJECT\s+ENVIRONMENT\s+DATABASE\s+REACHED THROUGH\s+BACKUP$/);
      expect(lines.slice(1, 3).map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual(['acme production acme_production', 'acme staging acme_staging']);
      expect(lines[1]).toContain(`container ${fleet.container('acme')}`);
      expect(lines.at(-1)).toBe(`2 target(s); backup_root ${fleet.backupRoot}; container CLI ${TEST_CONTAINER_CLI}`);
    });

    it('exits 2 on an env file others can read, naming the file, never its values', async () => {
      const dir = path.join(fleet.dir, 'configs', 'acme');
      mkdirSync(dir, { recursive: true });
      const envFile = path.join(dir, '.env.staging');
      writeFileSync(envFile, 'PGPASSWORD=never-shown-Qz9\n');
      chmodSync(envFile, 0o644);
      try {
        const r = await runCli(fleet, ['config', 'check'], { env: { PGPASSWORD: '' } });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/configs\/acme\/\.env\.staging: readable by others \(mode 644\)/);
        expect(r.stdout + r.stderr).not.toContain('never-shown-Qz9');
      } finally {
        chmodSync(envFile, 0o600);
        writeFileSync(envFile, '');
      }
    });
  });

  it('logs JSON lines without a TTY; two backups in one second get distinct UTC names; list shows both, newest first', async () => {
    const env = { PGFLEET_NOW: '2025-03-01T12:00:00.250Z' };
    const first = await runCli(fleet, ['backup', 'acme', 'staging', '--type', 'pre-deploy', '--release', 'r41'], { env });
    const second = await runCli(fleet, ['backup', 'acme', 'staging'], { env });
    for (const r of [first, second]) expect(r.code, r.stderr).toBe(0);
    const dir = repo.databaseDir('acme', 'staging');
    expect(first.stdout.trim().split('\n').at(-1)).toBe(path.join(dir, 'db_20250301_120000Z.dump.zst'));
    expect(second.stdout.trim().split('\n').at(-1)).toBe(path.join(dir, 'db_20250301_120000Z_2.dump.zst'));

    const logs = jsonLines(second.stderr);
    const started = logs.find((l) => l.msg === 'backup started');
    expect(started).toMatchObject({ level: 30, project: 'acme', environment: 'staging', id: 'db_20250301_120000Z_2', type: 'manual', database: 'acme_staging' });
    const complete = logs.find((l) => l.msg === 'backup complete');
    expect(complete).toMatchObject({ project: 'acme', environment: 'staging', id: 'db_20250301_120000Z_2', path: path.join(dir, 'db_20250301_120000Z_2.dump.zst'), rows: 100 });
    expect(complete!.size_bytes).toBeGreaterThan(0);
    for (const l of logs) expect(typeof l.time).toBe('string');

    const list = await runCli(fleet, ['list', 'acme', 'staging', '--json']);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(listed.map((b: { id: string }) => b.id)).toEqual(['db_20250301_120000Z_2', 'db_20250301_120000Z']);
    expect(listed[1]).toMatchObject({ type: 'pre-deploy', release: 'r41', created_at: '2025-03-01T12:00:00.250Z', verification: null });
    const text = await runCli(fleet, ['list', 'acme', 'staging']);
    expect(text.stdout.split('\n')[0]).toMatch(/^TARGET\s+ID\s+TYPE\s+CREATED \(UTC\)\s+SIZE\s+VERIFIED\s+PATH$/);
    expect(text.stdout.split('\n')[1]).toMatch(/^acme\/staging\s+db_20250301_120000Z_2\s+manual\s+2025-03-01 12:00:00Z\s+.*unverified/);
  });

  it('a retention failure keeps the backup and fails the run: backup prints its path and exits 1, scheduled-backup marks the target failed', async () => {
    // Retention cannot read the target's deployment manifests: `deployments` is a file, not a directory
    // (root ignores permission bits, so an unreadable directory would not stop the tests' root user).
    const deployments = repo.deploymentsDir('acme', 'staging');
    rmSync(deployments, { recursive: true, force: true });
    writeFileSync(deployments, 'not a directory\n');
    try {
      const before = (await repo.list('acme', 'staging')).length;
      const r = await runCli(fleet, ['backup', 'acme', 'staging']);
      expect(r.code, r.stderr).toBe(1);
      const printed = r.stdout.trim().split('\n').at(-1)!;
      const listed = await repo.list('acme', 'staging');
      expect(listed).toHaveLength(before + 1);
      expect(printed).toBe(listed[0].path);
      expect(existsSync(printed)).toBe(true);
      const last = jsonLines(r.stderr).at(-1)!;
      expect(last).toMatchObject({ project: 'acme', environment: 'staging', exit_code: 1 });
      expect(last.msg).toMatch(new RegExp(`^acme/staging: backup ${listed[0].meta.id} kept, but retention failed: .*ENOTDIR`));

      const s = await runCli(fleet, ['scheduled-backup', '--project', 'acme', '--env', 'staging']);
      expect(s.code, s.stderr).toBe(1);
      const kept = (await repo.list('acme', 'staging'))[0];
      expect(kept.meta.id).not.toBe(listed[0].meta.id);
      expect(s.stdout).toMatch(new RegExp(`^acme/staging\\s+FAILED\\s+.*backup ${kept.meta.id} kept, but retention failed: .*ENOTDIR`, 'm'));
      expect(s.stdout).toContain('1 target(s): 0 ok, 1 failed (acme/staging)');
    } finally {
      rmSync(deployments, { force: true });
    }
  });

  it('under umask 000 still writes files 0600 and directories 0700', async () => {
    const root = path.join(fleet.dir, 'umask-root', 'backups');
    const r = await runCli(fleet, ['backup', 'acme', 'staging'], { umask: '000', env: { PGFLEET_BACKUP_ROOT: root } });
    expect(r.code, r.stderr).toBe(0);
    // The shell really ran under umask 000: a file it creates is world-writable.
    expect(spawnSync('sh', ['-c', `umask 000; touch ${path.join(fleet.dir, 'probe')}`]).status).toBe(0);
    expect(statSync(path.join(fleet.dir, 'probe')).mode & 0o777).toBe(0o666);
    const dump = r.stdout.trim().split('\n').at(-1)!;
    const modes: Record<string, string> = {};
    for (let d = path.dirname(dump); d.length >= path.join(fleet.dir, 'umask-root').length; d = path.dirname(d)) modes[d] = (statSync(d).mode & 0o777).toString(8);
    for (const f of [dump, dump + '.json']) modes[f] = (statSync(f).mode & 0o777).toString(8);
    expect(modes).toEqual({
      [path.join(fleet.dir, 'umask-root')]: '700',
      [root]: '700',
      [path.join(root, 'acme')]: '700',
      [path.join(root, 'acme', 'staging')]: '700',
      [path.join(root, 'acme', 'staging', 'database')]: '700',
      [dump]: '600',
      [dump + '.json']: '600',
    });
  });

  it('a second run while the first holds the lock exits 3 at once; another target is not blocked', async () => {
    const first = startCli(fleet, ['backup', 'acme', 'production']);
    let second!: Awaited<ReturnType<typeof runCli>>;
    await whileStreaming(fleet, first, 'acme', 'acme_production', async () => {
      second = await runCli(fleet, ['backup', 'acme', 'production']);
    });
    expect(second.code, second.stderr).toBe(3);
    expect(second.ms).toBeLessThan(5000);
    expect(jsonLines(second.stderr).at(-1)).toMatchObject({ project: 'acme', environment: 'production', exit_code: 3 });
    expect(second.stderr).toMatch(new RegExp(`another pgfleet run holds this target's lock \\(pid ${first.pid} since .*backup --type manual\\)`));
    const other = await runCli(fleet, ['backup', 'acme', 'staging']);
    expect(other.code, other.stderr).toBe(0);
    const r = await first.done;
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(repo.targetDir('acme', 'production'), '.lock'))).toBe(false);
  });

  it('a lock file left by a dead process does not block', async () => {
    const dead = spawnSync('true').pid!;
    const lock = path.join(repo.targetDir('acme', 'staging'), '.lock');
    writeFileSync(lock, JSON.stringify({ pid: dead, start: null, host: os.hostname(), since: '2025-01-01T00:00:00.000Z', command: 'backup --type manual' }), { mode: 0o600 });
    const r = await runCli(fleet, ['backup', 'acme', 'staging']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it('after a run killed with SIGKILL mid-dump, the next run takes over its lock and removes its temp file', async () => {
    const dbDir = repo.databaseDir('acme', 'production');
    const lock = path.join(repo.targetDir('acme', 'production'), '.lock');
    const before = (await runCli(fleet, ['list', 'acme', 'production', '--json'])).stdout;
    const killed = startCli(fleet, ['backup', 'acme', 'production']);
    let temp!: { file: string; size: number };
    await whileStreaming(fleet, killed, 'acme', 'acme_production', async () => {
      temp = await waitFor('the temp dump on disk', () => tempDump(dbDir));
      process.kill(killed.pid, 'SIGKILL');
    });
    expect((await killed.done).signal).toBe('SIGKILL');
    // What a killed run leaves: its lock and its temp file; neither is a backup.
    expect(existsSync(lock)).toBe(true);
    expect(existsSync(path.join(dbDir, temp.file))).toBe(true);
    expect((await runCli(fleet, ['list', 'acme', 'production', '--json'])).stdout).toBe(before);

    const next = await runCli(fleet, ['backup', 'acme', 'production']);
    expect(next.code, next.stderr).toBe(0);
    expect(jsonLines(next.stderr).find((l) => l.msg === 'removed temporary files left by a killed run')).toMatchObject({ files: [temp.file] });
    expect(readdirSync(dbDir).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
    expect(existsSync(lock)).toBe(false);
    const listed = JSON.parse((await runCli(fleet, ['list', 'acme', 'production', '--json'])).stdout);
    expect(listed.length).toBe(JSON.parse(before).length + 1);
  });
});
