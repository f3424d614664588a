// Every way a backup can fail mid-way, against real PostgreSQL 15 in a real container, through the
// built CLI: exit code, the error operators read, and afterwards no dump, no metadata, no temp
// file, no lock, the older backup byte-for-byte untouched and `list` unchanged. Plus: the tenant's
// password never appears in argv, logs, metadata or errors.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBackup } from '../../lib/commands/backup.js';
import { Repository } from '../../lib/storage/repository.js';
import { TestFleet } from '../helpers.js';
import {
  allCommandLines,
  dumpBackends,
  expectNothingChanged,
  fileDigests,
  fillBigTable,
  jsonLines,
  runCli,
  sha256Of,
  startCli,
  stateOf,
  tempDump,
  waitFor,
  whileStreaming,
} from './support.js';

const PASSWORD = 'Fail-pw-7Hq2-zzKx';
const DB = 'acme_production';
const TARGET = ['acme', 'production'];

describe('backup failures leave nothing behind (real PostgreSQL in a container)', () => {
  let fleet: TestFleet;
  let dbDir: string;
  let good: { path: string; sha256: string };

  beforeAll(async () => {
    fleet = await TestFleet.create([
      // compression_level 12 makes zstd, and so the dump it throttles, take a few seconds here.
      { project: 'acme', databases: { production: DB }, user: 'acme', password: PASSWORD, database: { backup: { compression_level: 12 } } },
    ]);
    await fillBigTable(fleet, 'acme', DB, 300_000);
    dbDir = new Repository(fleet.backupRoot).databaseDir('acme', 'production');

    // One good backup first, taken in-process with its JSON logs captured.
    const { ctx, logs, out } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    good = { path: b.path, sha256: b.meta.sha256 };
    expect(sha256Of(b.path)).toBe(b.meta.sha256);
    expect(b.meta.tables['public.big_payload']).toBe(300_000);
    const everything = [...logs, ...out, readFileSync(b.metaPath, 'utf8')].join('\n');
    expect(everything).toContain('backup complete');
    expect(everything).not.toContain(PASSWORD);
  });

  afterEach(() => {
    // The older backup is never touched by a failing run.
    expect(sha256Of(good.path)).toBe(good.sha256);
  });

  afterAll(async () => {
    await fleet?.cleanup();
  });

  it('keeps the password out of every process argv while a dump runs, and out of stderr and metadata', async () => {
    const run = startCli(fleet, ['backup', ...TARGET]);
    const seen = new Set<string>();
    let polls = 0;
    let finished = false;
    void run.done.then(() => (finished = true));
    while (!finished) {
      for (const c of allCommandLines()) seen.add(c);
      polls++;
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const lines = [...seen];
    // The poll did see the dump running: pg_dump inside the container, reached with -e PGPASSWORD (no value).
    expect(lines.some((l) => /(^|\/)pg_dump -Fc .*--snapshot=/.test(l)), `${polls} polls`).toBe(true);
    expect(lines.some((l) => /^podman exec (-i )?-e PGPASSWORD \S+ .*pg_dump/.test(l))).toBe(true);
    expect(lines.filter((l) => /PGPASSWORD=/.test(l))).toEqual([]);
    expect(lines.filter((l) => l.includes(PASSWORD))).toEqual([]);
    const dump = r.stdout.trim().split('\n').at(-1)!;
    expect(r.stderr).not.toContain(PASSWORD);
    expect(readFileSync(dump + '.json', 'utf8')).not.toContain(PASSWORD);
  });

  it('pg_dump backend terminated mid-stream: exit 1, names the target and pg_dump stderr, leaves nothing', async () => {
    const before = await stateOf(fleet);
    const run = startCli(fleet, ['backup', ...TARGET]);
    // While the run's zstd is paused, so the dump cannot finish first.
    await whileStreaming(fleet, run, 'acme', DB, async (pid) => {
      expect(tempDump(dbDir)).not.toBeNull(); // the stream to the temp file is open
      expect((await fleet.sql('acme', 'postgres', `SELECT pg_terminate_backend(${pid})`)).trim()).toBe('t');
    });
    const r = await run.done;
    expect(r.code, r.stderr).toBe(1);
    const logs = jsonLines(r.stderr);
    const failed = logs.find((l) => l.msg === 'backup failed, nothing kept');
    expect(failed).toMatchObject({ project: 'acme', environment: 'production' });
    const final = logs.at(-1)!;
    expect(final).toMatchObject({ level: 50, project: 'acme', environment: 'production', exit_code: 1 });
    expect(String(final.msg)).toMatch(/^acme\/production: pg_dump failed/);
    expect(String(final.msg)).toMatch(/terminating connection|server closed the connection/);
    expect(r.stderr).not.toContain(PASSWORD);
    await expectNothingChanged(fleet, before);
  });

  it('container stopped mid-way: exit 1, nothing left; the next backup works once it runs again', async () => {
    const before = await stateOf(fleet);
    const run = startCli(fleet, ['backup', ...TARGET]);
    await whileStreaming(fleet, run, 'acme', DB);
    expect(tempDump(dbDir)).not.toBeNull();
    await fleet.sandbox.stop(fleet.container('acme'));
    const r = await run.done;
    expect(r.code, r.stderr).toBe(1);
    const final = jsonLines(r.stderr).at(-1)!;
    expect(final).toMatchObject({ project: 'acme', environment: 'production', exit_code: 1 });
    expect(String(final.msg)).toMatch(/^acme\/production: /);
    await expectNothingChanged(fleet, before);

    // Stopped: preflight says so before any dump starts.
    const stopped = await runCli(fleet, ['backup', ...TARGET]);
    expect(stopped.code).toBe(1);
    expect(jsonLines(stopped.stderr).at(-1)!.msg).toBe(`acme/production: container "${fleet.container('acme')}" is not running`);
    await expectNothingChanged(fleet, before);
    await fleet.sandbox.start(fleet.container('acme'));
  });

  it('disk full (a 1 MiB tmpfs as backup_root): exit 1, says no space, leaves nothing on the volume', async () => {
    const before = await stateOf(fleet);
    const small = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-enospc-'));
    await fleet.runner.run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', small]);
    try {
      const r = await runCli(fleet, ['backup', ...TARGET], { env: { PGFLEET_BACKUP_ROOT: small } });
      expect(r.code, r.stderr).toBe(1);
      const final = jsonLines(r.stderr).at(-1)!;
      expect(final).toMatchObject({ project: 'acme', environment: 'production', exit_code: 1 });
      expect(String(final.msg)).toMatch(/^acme\/production: .*(no space|ENOSPC)/i);
      expect(fileDigests(small)).toEqual({});
      const df = await fleet.runner.run(['df', '--output=used', '-B1', small]);
      expect(Number(df.stdout.trim().split('\n').at(-1))).toBeLessThan(64 * 1024);
    } finally {
      await fleet.runner.run(['umount', small]);
      rmdirSync(small);
    }
    await expectNothingChanged(fleet, before);
  });

  it('wrong password: exit 1, names the target and the server message, shows no password', async () => {
    const before = await stateOf(fleet);
    const envFile = path.join(fleet.dir, 'configs', 'acme', '.env.production');
    const WRONG = 'Wrong-pw-Zq81-xx';
    writeFileSync(envFile, `PGPASSWORD=${WRONG}\n`, { mode: 0o600 });
    try {
      const r = await runCli(fleet, ['backup', ...TARGET]);
      expect(r.code, r.stderr).toBe(1);
      const final = jsonLines(r.stderr).at(-1)!;
      expect(final).toMatchObject({ project: 'acme', environment: 'production', exit_code: 1 });
      expect(String(final.msg)).toMatch(/^acme\/production: cannot connect to the database .*password authentication failed for user "acme"/);
      expect(r.stderr).not.toContain(WRONG);
      expect(r.stderr).not.toContain(PASSWORD);
      await expectNothingChanged(fleet, before);
    } finally {
      writeFileSync(envFile, `PGPASSWORD=${PASSWORD}\n`, { mode: 0o600 });
    }
  });

  it('a dump stuck behind a table lock fails after --lock-wait-timeout with a clear error, instead of hanging', async () => {
    const before = await stateOf(fleet);
    // Another session holds ACCESS EXCLUSIVE on the table, and keeps its transaction open.
    const holder = spawn('podman', ['exec', '-i', fleet.container('acme'), 'psql', '-X', '-q', '-A', '-t', '-U', 'postgres', '-d', DB], { stdio: ['pipe', 'pipe', 'inherit'] });
    let held = '';
    holder.stdout.on('data', (d) => (held += d));
    holder.stdin.write(`BEGIN; LOCK TABLE big_payload IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n`);
    try {
      await waitFor('the table lock', () => held.includes('locked'));
      const r = await runCli(fleet, ['backup', ...TARGET, '--lock-wait-timeout', '2s']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.ms).toBeLessThan(20_000);
      const final = jsonLines(r.stderr).at(-1)!;
      expect(final).toMatchObject({ project: 'acme', environment: 'production', exit_code: 1 });
      expect(String(final.msg)).toMatch(/^acme\/production: a table lock was not granted within 2s/);
      await expectNothingChanged(fleet, before);
    } finally {
      holder.stdin.end('ROLLBACK;\n\\q\n');
      await new Promise((r) => holder.on('close', r));
    }
  });

  it.each([
    ['SIGTERM to the CLI', 'SIGTERM', false],
    ['SIGINT to its process group (Ctrl-C)', 'SIGINT', true],
  ] as const)('%s mid-dump: exit 130, temp removed, lock released, no pg_dump left running', async (_what, signal, group) => {
    const before = await stateOf(fleet);
    const run = startCli(fleet, ['backup', ...TARGET], { group });
    await whileStreaming(fleet, run, 'acme', DB);
    expect(tempDump(dbDir)).not.toBeNull();
    process.kill(group ? -run.pid : run.pid, signal);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(jsonLines(r.stderr).at(-1)).toMatchObject({ msg: `interrupted by ${signal}`, exit_code: 130 });
    await expectNothingChanged(fleet, before);
    await waitFor('pg_dump gone from the server', async () => (await dumpBackends(fleet, 'acme', DB)) === 0, 15_000, 200);
  });
});
