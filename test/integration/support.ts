/**
 * Shared checks of the backup failure, CLI and direct-mode tests: a table big enough that a dump
 * takes a few seconds, the CLI started in the background (for signals, locks and /proc), the
 * pg_dump backend found in pg_stat_activity, and "nothing was left behind, nothing was touched".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { TEMP_PREFIX } from '../../lib/core/fsutil.js';
import { safeArchiveCommand } from '../../lib/pitr/settings.js';
import { CLI, type TestFleet } from '../helpers.js';

/**
 * A table of random text, ~100 bytes a row. Random md5 text compresses about 2:1, so the dump is
 * large whatever the compression; with the target's compression_level raised, zstd (and so pg_dump,
 * which it throttles) takes a few seconds over it.
 */
export async function fillBigTable(fleet: TestFleet, project: string, database: string, rows: number): Promise<void> {
  await fleet.sql(
    project,
    database,
    `CREATE TABLE big_payload AS SELECT g AS id, md5(g::text) || md5(random()::text) || md5(random()::text) AS body FROM generate_series(1, ${rows}) g;
     ALTER TABLE big_payload OWNER TO ${fleet.projects.find((p) => p.project === project)?.user ?? 'postgres'};`,
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until `f` returns a truthy value; fails the test with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, f: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 50): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  done: Promise<CliResult>;
}

/**
 * Start the built CLI in the background. `umask` runs it under that umask (through sh, in the test
 * only); `group` makes it a process group leader, so a signal can go to the whole group as a
 * terminal's Ctrl-C does.
 */
export function startCli(fleet: TestFleet, args: string[], o: { env?: NodeJS.ProcessEnv; umask?: string; group?: boolean } = {}): RunningCli {
  const argv = o.umask ? ['sh', '-c', `umask ${o.umask}; exec "$0" "$@"`, process.execPath, CLI, ...args] : [process.execPath, CLI, ...args];
  const t0 = performance.now();
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, PGFLEET_CONFIG: fleet.configFile, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: !!o.group,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 })));
  return { child, pid: child.pid!, done };
}

export function runCli(fleet: TestFleet, args: string[], o: { env?: NodeJS.ProcessEnv; umask?: string } = {}): Promise<CliResult> {
  return startCli(fleet, args, o).done;
}

/** The CLI's stderr as JSON log lines; every line must be JSON (no TTY). */
export function jsonLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`not a JSON log line: ${JSON.stringify(l)}`);
      }
    });
}

/** The pid of the pg_dump backend once it is streaming table data (COPY … TO stdout). */
export async function dumpBackendStreaming(fleet: TestFleet, project: string, database: string): Promise<number> {
  const out = await fleet.sql(
    project,
    'postgres',
    `SELECT pid FROM pg_stat_activity WHERE datname = '${database}' AND application_name = 'pg_dump' AND state = 'active' AND query ILIKE 'COPY %big_payload%'`,
  );
  return Number(out.trim().split('\n')[0] || 0);
}

/** Child processes of `pid` (from /proc), as [pid, command name]. */
function childrenOf(pid: number): [number, string][] {
  const out: [number, string][] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push([Number(d), comm]);
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Wait until a backgrounded CLI's pg_dump streams table data; fails at once, with the CLI's
 * stderr, if that run ends first. While it looks, the run's zstd is paused (SIGSTOP), so pg_dump
 * blocks mid-stream however loaded the machine is and the COPY cannot finish before it is seen;
 * `during` runs while it is still paused; zstd resumes before this returns, and the dump goes on
 * streaming for the caller to disturb.
 */
export async function whileStreaming(fleet: TestFleet, run: RunningCli, project: string, database: string, during?: (backend: number) => Promise<void>): Promise<number> {
  let ended: CliResult | undefined;
  void run.done.then((r) => (ended = r));
  const paused = new Set<number>();
  try {
    const backend = await waitFor('the pg_dump backend streaming', async () => {
      if (ended) throw new Error(`the run ended before its dump streamed (exit ${ended.code}): ${ended.stderr}`);
      for (const [pid, comm] of childrenOf(run.pid))
        if (comm === 'zstd' && !paused.has(pid)) {
          process.kill(pid, 'SIGSTOP');
          paused.add(pid);
        }
      return dumpBackendStreaming(fleet, project, database);
    });
    await during?.(backend); // still paused: the run cannot finish meanwhile
    return backend;
  } finally {
    for (const pid of paused) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
  }
}

/** Number of pg_dump backends still connected to a database. */
export async function dumpBackends(fleet: TestFleet, project: string, database: string): Promise<number> {
  return Number((await fleet.sql(project, 'postgres', `SELECT count(*) FROM pg_stat_activity WHERE datname = '${database}' AND application_name IN ('pg_dump')`)).trim());
}

/** The temporary dump being written in a target's database dir, with its size (or null). */
export function tempDump(dir: string): { file: string; size: number } | null {
  if (!existsSync(dir)) return null;
  const f = readdirSync(dir).find((n) => n.startsWith(TEMP_PREFIX));
  if (!f) return null;
  try {
    return { file: f, size: statSync(path.join(dir, f)).size };
  } catch {
    return null;
  }
}

/** Every file under a directory (relative path → sha256), hidden ones included. */
export function fileDigests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(root)) return out;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

/**
 * After a failed run: the backup root holds exactly what it held before (same files, same bytes;
 * so no new dump, no metadata, no temp file, no lock), and `list --json` says the same.
 */
export async function expectNothingChanged(fleet: TestFleet, before: { files: Record<string, string>; list: string }, root = fleet.backupRoot): Promise<void> {
  const after = fileDigests(root);
  expect(Object.keys(after).filter((f) => path.basename(f).startsWith(TEMP_PREFIX))).toEqual([]);
  expect(after).toEqual(before.files);
  const list = await runCli(fleet, ['list', '--json']);
  expect(list.code).toBe(0);
  expect(list.stdout).toBe(before.list);
}

export async function stateOf(fleet: TestFleet, root = fleet.backupRoot): Promise<{ files: Record<string, string>; list: string }> {
  const list = await runCli(fleet, ['list', '--json']);
  expect(list.code).toBe(0);
  return { files: fileDigests(root), list: list.stdout };
}

/** sha256 of a file, as recorded in metadata. */
export function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Every process's command line on this machine (containers' processes included), NUL → space. */
export function allCommandLines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const c = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (c) out.push(c.split('\0').join(' ').trim());
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** A WAL landing directory (0700) that the containers' postgres user writes into. */
export async function landingDir(fleet: TestFleet, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o700);
  await fleet.runner.run(['chown', 'postgres:postgres', dir]);
  return dir;
}

/**
 * A tenant container whose cluster archives its WAL (the README's safe archive_command) into a
 * landing directory of the fleet (`<fleet dir>/wal` unless `landing` says), mounted as
 * /wal-archive. `archiveTimeout` '0': segments switch only when a test forces it (the default
 * here, so the window moves only then). Returns the container, the landing directory and the
 * cluster's data directory on the host.
 */
export async function archivingCluster(fleet: TestFleet, o: { databases: string[]; name?: string; landing?: string; archiveTimeout?: string }): Promise<{ pg: string; landing: string; dataDir: string }> {
  const pg = o.name ?? `${fleet.prefix}-pg`;
  const landing = await landingDir(fleet, o.landing ?? path.join(fleet.dir, 'wal'));
  const t = await fleet.sandbox.startTenant({
    name: pg,
    databases: o.databases,
    mounts: { [landing]: '/wal-archive' },
    settings: { wal_level: 'replica', archive_mode: 'on', archive_timeout: o.archiveTimeout ?? '0', archive_command: safeArchiveCommand() },
  });
  return { pg, landing, dataDir: t.dataDir };
}

/** A project's database.pitr block on that landing directory. */
export const pitrOn = (landing: string, extra: Record<string, unknown> = {}) => ({ pitr: { enabled: true, archive_dir: landing, max_wal_age: '5m', ...extra } });
