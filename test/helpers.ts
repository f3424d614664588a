/**
 * The integration-test harness: a fleet of real tenant containers (scripts/sandbox), its projects.yml
 * and env files in a temp dir, a Context for calling runVerb directly, the built CLI for exit
 * codes and signals, and the fidelity checks (schema dump, per-table digests, large objects,
 * sequences) used to prove a restore is faithful.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { stringify } from 'yaml';
import { contextFor, defaultDeps, type Context } from '../lib/runtime/context.js';
import { LOG_REDACT_PATHS } from '../lib/core/redact.js';
import { Runner } from '../lib/process/runner.js';
import { Sandbox, useSandboxContainersConf, type TenantSpec } from '../scripts/sandbox/tenants.js';
import { PACKAGE_ROOT } from '../lib/core/package.js';

useSandboxContainersConf();
export const CLI = path.join(PACKAGE_ROOT, 'dist', 'bin', 'pgfleet.js');
export const FIXTURES = path.resolve(PACKAGE_ROOT, '..', 'shared', 'fixtures');

export interface ProjectSpec {
  project: string;
  /** environment → database name */
  databases: Record<string, string>;
  user?: string;
  password?: string;
  /** Extra keys under database: (app_containers, hooks, backup…). */
  database?: Record<string, unknown>;
  /** Keys beside database: (the deploy system's). */
  extra?: Record<string, unknown>;
}

/**
 * The container CLI written into the tests' projects.yml: podman, or docker with
 * PGF_TEST_CONTAINER_CLI=docker (DOCKER_HOST then points the Docker CLI at podman's Docker API
 * service, scripts/ci/with-docker-api.sh). Only pgfleet's own calls change: the sandbox starts and inspects its
 * containers with podman either way. Any other value fails the run rather than testing podman again.
 * (Not a PGFLEET_ name: hooks get the run's PGFLEET_* variables, and the deploy test lists them.)
 */
export const TEST_CONTAINER_CLI = ((v = process.env.PGF_TEST_CONTAINER_CLI || 'podman') => {
  if (v !== 'podman' && v !== 'docker') throw new Error(`PGF_TEST_CONTAINER_CLI must be podman or docker, not ${JSON.stringify(v)}`);
  return v;
})();

export function uniquePrefix(): string {
  return `pgf${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export class TestFleet {
  readonly runner = new Runner();
  readonly sandbox = new Sandbox(this.runner);
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-test-'));
  readonly configFile = path.join(this.dir, 'projects.yml');
  backupRoot = path.join(this.dir, 'backups');
  readonly prefix = uniquePrefix();
  /** project → container */
  readonly containerOf = new Map<string, string>();
  platform: Record<string, unknown> = {};
  projects: ProjectSpec[] = [];

  /** Start one tenant container per project (databases and owner created) and write the config. */
  static async create(projects: ProjectSpec[], platform: Record<string, unknown> = {}): Promise<TestFleet> {
    const f = new TestFleet();
    f.platform = platform;
    f.projects = projects;
    await Promise.all(
      projects.map(async (p) => {
        const name = `${f.prefix}-${p.project}`;
        const spec: TenantSpec = { name, databases: Object.values(p.databases), user: p.user, password: p.password };
        await f.sandbox.startTenant(spec);
        f.containerOf.set(p.project, name);
      }),
    );
    f.writeConfig();
    return f;
  }

  container(project: string): string {
    const c = this.containerOf.get(project);
    if (!c) throw new Error(`no container for ${project}`);
    return c;
  }

  /** (Re)write projects.yml and configs/<project>/.env.<env> from the specs. */
  writeConfig(): void {
    const doc: Record<string, unknown> = { platform: { backup_root: this.backupRoot, container_cli: TEST_CONTAINER_CLI, ...this.platform } };
    for (const p of this.projects) {
      doc[p.project] = {
        ...p.extra,
        database: { type: 'postgresql', container: this.containerOf.get(p.project), databases: p.databases, ...(p.user ? { user: p.user } : {}), ...p.database },
      };
      if (p.password) {
        for (const env of Object.keys(p.databases)) {
          const d = path.join(this.dir, 'configs', p.project);
          mkdirSync(d, { recursive: true });
          writeFileSync(path.join(d, `.env.${env}`), `PGPASSWORD=${p.password}\n`, { mode: 0o600 });
          chmodSync(path.join(d, `.env.${env}`), 0o600);
        }
      }
    }
    writeFileSync(this.configFile, stringify(doc));
  }

  /** A Context as the CLI builds it, with stdout lines and JSON log lines captured. */
  context(over: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; now?: string } = {}): { ctx: Context; out: string[]; logs: string[] } {
    const out: string[] = [];
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk, _e, cb) {
        logs.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    const logger = pino({ level: 'debug', redact: { paths: LOG_REDACT_PATHS, censor: '***' } }, sink);
    const env = { ...process.env, ...(over.now ? { PGFLEET_NOW: over.now } : {}), ...over.env };
    const ctx = contextFor(this.configFile, defaultDeps({ runner: this.runner, logger, env, signal: over.signal, out: (l) => out.push(l), progress: false }));
    return { ctx, out, logs };
  }

  /** Run the built CLI; resolves with its exit code and output (never throws on non-zero). */
  cli(args: string[], o: { env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void } = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, PGFLEET_CONFIG: this.configFile, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      if (child.pid) o.onSpawn?.(child.pid);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  }

  /** Superuser SQL inside a project's container. */
  sql(project: string, database: string, sql: string): Promise<string> {
    return this.sandbox.sql(this.container(project), database, sql);
  }

  async cleanup(): Promise<void> {
    await this.sandbox.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Restore a pgfleet dump with stock tools only: zstd -dc | pg_restore, into a fresh database. */
export async function stockRestore(runner: Runner, container: string, dumpFile: string, database: string): Promise<void> {
  await runner.run(['podman', 'exec', container, 'createdb', '-U', 'postgres', database]);
  const z = runner.spawn(['zstd', '-dc', dumpFile]);
  await runner.run(['podman', 'exec', '-i', container, 'pg_restore', '-U', 'postgres', '--exit-on-error', '-d', database], { input: z.stdout });
  await z.done;
}

/** pg_dump --schema-only of a database, for comparing two copies. */
export async function schemaDump(runner: Runner, container: string, database: string): Promise<string> {
  const r = await runner.run(['podman', 'exec', container, 'pg_dump', '-U', 'postgres', '--schema-only', '--no-owner', '-d', database]);
  // pg_dump 15.14+ brackets its output with \restrict <random key>; the key differs per run.
  return r.stdout.replace(/^\\(un)?restrict .*$/gm, '');
}

/**
 * A digest of every table's rows, every large object, and every sequence's position: two
 * databases with equal digests hold the same data.
 */
export async function dataDigest(sandbox: Sandbox, container: string, database: string): Promise<Record<string, string>> {
  const tables = await sandbox.sql(
    container,
    database,
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const t of tables.split('\n').filter(Boolean)) {
    out[t] = (await sandbox.sql(container, database, `SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '-') FROM ONLY ${t} x`)).trim();
  }
  out['<large objects>'] = (await sandbox.sql(container, database, `SELECT count(*) || ':' || coalesce(md5(string_agg(md5(lo_get(oid)), ',' ORDER BY md5(lo_get(oid)))), '-') FROM pg_largeobject_metadata`)).trim();
  const seqs = await sandbox.sql(container, database, `SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences ORDER BY 1`);
  for (const s of seqs.split('\n').filter(Boolean)) out[`<sequence ${s}>`] = (await sandbox.sql(container, database, `SELECT last_value || ':' || is_called FROM ${s}`)).trim();
  return out;
}
