/**
 * Throwaway tenant PostgreSQL containers for the demo, the benchmark and the integration tests:
 * podman with the host's root filesystem as image (no registry here), PostgreSQL 15 from the host,
 * reached only through `podman exec`, exactly as users reach theirs with `docker exec`.
 *
 * Each tenant: its own data directory (copied from one initdb template), its own container, the
 * databases and an owner role; with `password`, that role must authenticate with scram-sha-256.
 */
import { existsSync, readdirSync, mkdtempSync, mkdirSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../lib/core/package.js';
import type { Runner } from '../../lib/process/runner.js';
import { ident, literal } from '../../lib/postgres/psql.js';

export const CONTAINER_CLI = 'podman';

/** podman here needs runc and no default ulimits: the project's own containers.conf says so. */
export function useSandboxContainersConf(env: NodeJS.ProcessEnv = process.env): void {
  env.CONTAINERS_CONF ??= path.join(PACKAGE_ROOT, 'scripts', 'sandbox', 'containers.conf');
}

export function pgBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'postgres'))) : [];
  const v = versions.includes('15') ? '15' : versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!v) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql-15)');
  return path.join(base, v, 'bin');
}

export interface TenantSpec {
  /** Container name. */
  name: string;
  databases: string[];
  /** Owner role of the databases (created when it is not postgres). */
  user?: string;
  /** With a password, the owner role must authenticate (scram-sha-256); without, trust. */
  password?: string;
  /** Share the socket directory with the host (for DATABASE_URL access over a unix socket). */
  hostSocket?: boolean;
  /** Extra postgres -c settings. */
  settings?: Record<string, string>;
  /** Extra bind mounts, host directory → path in the container (a WAL landing directory). */
  mounts?: Record<string, string>;
}

export interface Tenant extends TenantSpec {
  dataDir: string;
  socketDir?: string;
}

export class Sandbox {
  private readonly root: string;
  private template?: Promise<string>;
  readonly containers = new Set<string>();

  /** `root`: where data directories go (default: a new temp dir); it must be reachable by the postgres user. */
  constructor(
    readonly runner: Runner,
    readonly cli = CONTAINER_CLI,
    root?: string,
  ) {
    useSandboxContainersConf();
    this.root = root ?? mkdtempSync(path.join(os.tmpdir(), 'pgfleet-sandbox-'));
    mkdirSync(this.root, { recursive: true });
    chmodSync(this.root, 0o755);
  }

  /** One initdb per sandbox, shared by every tenant (started at most once, even concurrently). */
  private initTemplate(): Promise<string> {
    this.template ??= this.makeTemplate();
    return this.template;
  }

  private async makeTemplate(): Promise<string> {
    const dir = path.join(this.root, 'template');
    await this.runner.run(['mkdir', '-p', dir]);
    await this.runner.run(['chown', 'postgres:postgres', dir]);
    await this.runner.run(['runuser', '-u', 'postgres', '--', path.join(pgBinDir(), 'initdb'), '-D', dir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], { what: 'initdb' });
    return dir;
  }

  /** Start a tenant container and create its role and databases. Ready when it returns. */
  async startTenant(spec: TenantSpec): Promise<Tenant> {
    const template = await this.initTemplate();
    const dataDir = path.join(this.root, spec.name);
    await this.runner.run(['cp', '-a', template, dataDir]);
    if (spec.password) {
      // The tenant role must give its password; the harness's own postgres superuser stays trusted.
      writeFileSync(path.join(dataDir, 'pg_hba.conf'), 'local all postgres trust\nlocal all all scram-sha-256\n');
      await this.runner.run(['chown', 'postgres:postgres', path.join(dataDir, 'pg_hba.conf')]);
    }
    let socketDir: string | undefined;
    const volumes = ['-v', `${dataDir}:/var/lib/postgresql/data`];
    if (spec.hostSocket) {
      socketDir = path.join(this.root, `${spec.name}-socket`);
      await this.runner.run(['mkdir', '-p', socketDir]);
      await this.runner.run(['chown', 'postgres:postgres', socketDir]);
      volumes.push('-v', `${socketDir}:/var/run/postgresql`);
    }
    for (const [host, inside] of Object.entries(spec.mounts ?? {})) volumes.push('-v', `${host}:${inside}`);
    const settings = Object.entries({ listen_addresses: '', fsync: 'off', ...spec.settings }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    await this.runner.run(['podman', 'rm', '-f', '-t', '0', spec.name], {}).catch(() => undefined);
    await this.runner.run(
      [this.cli, 'run', '-d', '--name', spec.name, '--network=none', '--user', 'postgres', '--shm-size=1g', ...volumes, '--rootfs', '/:O', path.join(pgBinDir(), 'postgres'), '-D', '/var/lib/postgresql/data', ...settings],
      { what: `${this.cli} run` },
    );
    this.containers.add(spec.name);
    await this.waitReady(spec.name);
    const owner = spec.user ?? 'postgres';
    if (owner !== 'postgres') {
      await this.sql(spec.name, 'postgres', `CREATE ROLE ${ident(owner)} LOGIN${spec.password ? ` PASSWORD ${literal(spec.password)}` : ''}`, { quietSecrets: spec.password ? [spec.password] : [] });
    }
    for (const db of spec.databases) await this.sql(spec.name, 'postgres', `CREATE DATABASE ${ident(db)} OWNER ${ident(owner)}`);
    return { ...spec, dataDir, socketDir };
  }

  async waitReady(name: string, timeoutMs = 30000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.runner.run([this.cli, 'exec', name, 'pg_isready', '-q']);
        await this.runner.run([this.cli, 'exec', name, 'psql', '-X', '-q', '-U', 'postgres', '-c', 'select 1']);
        return;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 150));
      }
    }
  }

  /** An app container to be stopped and started around a restore. */
  async startApp(name: string): Promise<void> {
    await this.runner.run(['podman', 'rm', '-f', '-t', '0', name]).catch(() => undefined);
    await this.runner.run([this.cli, 'run', '-d', '--name', name, '--network=none', '--init', '--rootfs', '/:O', '/bin/sleep', 'infinity'], { what: `${this.cli} run` });
    this.containers.add(name);
  }

  /** Run SQL as the superuser inside a container; returns unaligned tuples. */
  async sql(container: string, database: string, sql: string, o: { quietSecrets?: string[] } = {}): Promise<string> {
    const r = await this.runner.run([this.cli, 'exec', '-i', container, 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', database], {
      input: sql,
      secrets: o.quietSecrets,
      what: 'psql',
    });
    return r.stdout;
  }

  async isRunning(name: string): Promise<boolean> {
    const r = await this.runner.run([this.cli, 'inspect', '--format', '{{.State.Running}}', name]);
    return r.stdout.trim() === 'true';
  }

  async stop(name: string): Promise<void> {
    await this.runner.run([this.cli, 'stop', '-t', '1', name]);
  }

  async start(name: string): Promise<void> {
    await this.runner.run([this.cli, 'start', name]);
    if (existsSync(path.join(this.root, name))) await this.waitReady(name);
  }

  /** Remove every container this sandbox started and its data directories. */
  async cleanup(): Promise<void> {
    if (this.containers.size) await this.runner.run([this.cli, 'rm', '-f', '-t', '0', ...this.containers]).catch(() => undefined);
    this.containers.clear();
    rmSync(this.root, { recursive: true, force: true });
  }
}
