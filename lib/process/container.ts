/**
 * How pgfleet reaches a target's PostgreSQL: through its container (`docker exec`, or podman in
 * tests), or directly with DATABASE_URL for a project without `container`. Passwords go to the
 * child's environment; on the exec line they appear only as `-e PGPASSWORD` with no value.
 */
import { createHash } from 'node:crypto';
import type { Credentials, Target } from '../config/load.js';
import { CommandError, EXIT, PgfleetError, type TargetRef } from '../core/errors.js';
import type { RunOptions, RunResult, Runner, Spawned } from './runner.js';
import { credentialSecrets } from '../core/redact.js';

/**
 * Where a container CLI call goes (platform.container_host / database.container_host): a Docker
 * context name, or an API URL (unix://, ssh://, tcp://…). For docker a name is `--context NAME`
 * and a URL is DOCKER_HOST in the child's environment (DOCKER_CONTEXT cleared); for podman a name
 * is `--connection NAME` and a URL is `--url URL` (both put podman in remote mode). Unset: the
 * CLI's own default (its environment, its current context).
 */
export function hostInvocation(cli: 'docker' | 'podman', host: string | undefined): { flags: string[]; env: Record<string, string | undefined> } {
  if (!host) return { flags: [], env: {} };
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(host);
  if (cli === 'docker') return url ? { flags: [], env: { DOCKER_HOST: host, DOCKER_CONTEXT: undefined } } : { flags: ['--context', host], env: {} };
  return { flags: url ? ['--url', host] : ['--connection', host], env: {} };
}

/** "on ssh://db-b" / "on context prod-b", for messages; '' for the default. */
export function hostText(host: string | undefined): string {
  return !host ? '' : /^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? ` on ${host}` : ` on context ${host}`;
}

/**
 * The container CLI: inspect, start, stop. Its failures are CommandErrors with `program` docker or
 * podman. Every call goes to the host of the target it is for (`hostOf(ref)`, else `platformHost`).
 */
export class ContainerCli {
  constructor(
    readonly runner: Runner,
    readonly cli: 'docker' | 'podman',
    private readonly hosts: { platform?: string; of?: (ref: TargetRef) => string | undefined } = {},
  ) {}

  /** The container host of a target (its project's, else the platform's), or the platform's for none. */
  hostOf(ref?: TargetRef): string | undefined {
    return (ref && this.hosts.of?.(ref)) ?? this.hosts.platform;
  }

  /** The platform's own container host (platform.verify.container is reached there). */
  get platformHost(): string | undefined {
    return this.hosts.platform;
  }

  /** argv and environment of `cli [host flags] ...args` for the target's host. */
  command(args: readonly string[], ref?: TargetRef, host = this.hostOf(ref)): { argv: string[]; env: Record<string, string | undefined> } {
    const h = hostInvocation(this.cli, host);
    return { argv: [this.cli, ...h.flags, ...args], env: h.env };
  }

  /** command() as a line for a person to run: `DOCKER_HOST=… docker …` or `docker --context … …`. */
  commandText(args: readonly string[], ref?: TargetRef): string {
    const { argv, env } = this.command(args, ref);
    const vars = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v} `);
    return vars.join('') + argv.join(' ');
  }

  private call(args: readonly string[], target: TargetRef | undefined, what: string, role: RunOptions['role']): Promise<RunResult> {
    const { argv, env } = this.command(args, target);
    return this.runner.run(argv, { target, what, role, env });
  }

  /**
   * true/false for an existing container; null when there is no such container.
   *
   * The CLI reports a missing container only as text on stderr, worded differently by docker and
   * podman and their versions, with the same exit code as a daemon it cannot reach. So that text
   * is never read: a failed inspect is followed by the CLI's listing of every container, whose
   * output answers whether this one exists. None there: null. Listed (it failed for another
   * reason), or the listing fails too: the inspect's error stands.
   */
  async isRunning(name: string, target?: TargetRef): Promise<boolean | null> {
    try {
      const r = await this.call(['container', 'inspect', '--format', '{{.State.Running}}', name], target, `${this.cli} inspect`, 'inspect');
      return r.stdout.trim() === 'true';
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      if (!(await this.exists(name, target).catch(() => true))) return null;
      throw e;
    }
  }

  /** Whether a container of this name, or whose id starts with it, exists (running or not). Throws CommandError when the CLI fails. */
  async exists(name: string, target?: TargetRef): Promise<boolean> {
    const r = await this.call(['container', 'ls', '--all', '--no-trunc', '--format', '{{.ID}}\t{{.Names}}'], target, `${this.cli} container ls`, 'inspect');
    return r.stdout.split('\n').some((line) => {
      const [id = '', names = ''] = line.trim().split('\t');
      return names.split(',').includes(name) || (id !== '' && id.startsWith(name));
    });
  }

  /**
   * Throws a PgfleetError (exit 1) naming the target when the container does not exist or is
   * not running: the one check every command makes before reaching a database through it.
   */
  async requireRunning(name: string, target: TargetRef): Promise<void> {
    const running = await this.isRunning(name, target);
    const where = `${target.project}/${target.environment}`;
    const on = hostText(this.hostOf(target));
    if (running === null) throw new PgfleetError(`${where}: container "${name}" does not exist${on} (${this.cli} lists none of that name)`, EXIT.FAILED, target);
    if (!running) throw new PgfleetError(`${where}: container "${name}" is not running${on}`, EXIT.FAILED, target);
  }

  async image(name: string, target?: TargetRef): Promise<string> {
    const r = await this.call(['container', 'inspect', '--format', '{{.Config.Image}}', name], target, `${this.cli} inspect`, 'inspect');
    return r.stdout.trim();
  }

  async start(name: string, target?: TargetRef): Promise<void> {
    await this.call(['start', name], target, `${this.cli} start`, 'start');
  }

  async stop(name: string, target?: TargetRef, timeoutSeconds = 10): Promise<void> {
    await this.call(['stop', '-t', String(timeoutSeconds), name], target, `${this.cli} stop`, 'stop');
  }
}

/**
 * A postgresql:// URL as libpq reads it. WHATWG URL rejects an empty host with credentials, which
 * libpq accepts (postgresql://user:pass@/db?host=/run/postgresql: a unix socket); such a URL is
 * parsed with a placeholder host that is never used. Throws without echoing the URL (it holds the password).
 */
function parsePgUrl(url: string): { u: URL; emptyHost: boolean } {
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new PgfleetError('DATABASE_URL is not a postgresql:// URL');
  try {
    return { u: new URL(url), emptyHost: false };
  } catch {
    const m = /^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/i.exec(url);
    try {
      if (m) return { u: new URL(m[1] + 'empty-host.invalid' + url.slice(m[1].length)), emptyHost: true };
    } catch {
      /* reported below */
    }
    throw new PgfleetError('DATABASE_URL is not a valid URL');
  }
}

/** libpq's connection variables, cleared for a client reached directly unless the URL sets them. */
const LIBPQ_ENV = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGPASSFILE', 'PGSERVICE', 'PGSERVICEFILE', 'PGOPTIONS', 'PGSSLMODE', 'PGREQUIRESSL', 'PGCONNECT_TIMEOUT', 'PGTARGETSESSIONATTRS'];

/** Environment for a client reached directly: the URL split into libpq variables. */
export function libpqEnvFromUrl(url: string): Record<string, string> {
  const { u, emptyHost } = parsePgUrl(url);
  const env: Record<string, string> = {};
  const host = u.searchParams.get('host') ?? (emptyHost ? '' : decodeURIComponent(u.hostname));
  if (host) env.PGHOST = host;
  if (u.port) env.PGPORT = u.port;
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  return env;
}

/**
 * Runs PostgreSQL client programs (pg_dump, psql, pg_restore) where the target's database lives.
 * `conn(db)` gives the connection arguments; callers add the rest. A failure's CommandError names
 * the program run inside the container (not docker), and the container CLI as `via`.
 */
export class TargetShell {
  readonly ref: TargetRef;
  private readonly secrets: readonly string[];
  private readonly env: Record<string, string | undefined>;

  constructor(
    readonly runner: Runner,
    readonly cli: ContainerCli,
    readonly target: Target,
    credentials: Credentials,
    /** Run in this container instead of the target's (verification restores). */
    readonly containerOverride?: string,
    /** What to redact: the target's set (ctx.secrets), else these credentials' own. */
    secrets: readonly string[] = credentialSecrets(credentials),
  ) {
    this.ref = { project: target.project, environment: target.environment };
    if (this.container) {
      this.env = credentials.password ? { PGPASSWORD: credentials.password } : {};
    } else {
      if (!credentials.databaseUrl) throw new PgfleetError(`${target.project}/${target.environment}: no container configured and no DATABASE_URL in ${target.envFile} or the environment`, EXIT.USAGE, this.ref);
      try {
        this.env = libpqEnvFromUrl(credentials.databaseUrl);
      } catch (e) {
        throw new PgfleetError(`${target.project}/${target.environment}: ${(e as Error).message} (from ${target.envFile} or the environment)`, EXIT.USAGE, this.ref);
      }
      if (credentials.password && !this.env.PGPASSWORD) this.env.PGPASSWORD = credentials.password;
      // Only the URL decides where to connect: the operator's own PG* variables (PGPORT,
      // PGSERVICE, PGHOSTADDR…) must not point the dump at another server.
      for (const k of LIBPQ_ENV) if (!(k in this.env)) this.env[k] = undefined;
    }
    this.secrets = secrets;
  }

  get container(): string | undefined {
    return this.containerOverride ?? this.target.container;
  }

  /** The container host this shell's calls go to: the target's, or the platform's for a container override (platform.verify.container). */
  get host(): string | undefined {
    return this.containerOverride ? this.cli.platformHost : this.cli.hostOf(this.ref);
  }

  /** Where the database is reached, for messages. */
  get where(): string {
    return this.container ? `container ${this.container}${hostText(this.host)}` : 'DATABASE_URL';
  }

  /**
   * Where this shell's programs run and what they reach: the container CLI, host and container, or
   * for DATABASE_URL this machine and the URL's server. Shells of one place reach one server.
   */
  get place(): string {
    return JSON.stringify(this.container ? [this.cli.cli, this.host ?? '', this.container] : ['direct', this.env.PGHOST ?? '', this.env.PGHOSTADDR ?? '', this.env.PGPORT ?? '']);
  }

  /**
   * The place, role and credentials of this shell's clients, as a digest (it holds no secret):
   * shells of one identity connect to the same server the same way, so a psql session of one
   * serves the other's databases (lib/postgres/pool.ts).
   */
  get identity(): string {
    return createHash('sha256').update(JSON.stringify([this.place, this.target.user ?? '', Object.entries(this.env).sort()])).digest('hex');
  }

  /** -U user -d db (the user from config; with DATABASE_URL its user unless config names one). */
  conn(database: string): string[] {
    return [...(this.target.user ? ['-U', this.target.user] : []), '-d', database];
  }

  argv(program: string, args: readonly string[], interactive: boolean): string[] {
    if (!this.container) return [program, ...args];
    const envFlags = Object.keys(this.env).flatMap((k) => ['-e', k]);
    return this.cli.command(['exec', ...(interactive ? ['-i'] : []), ...envFlags, this.container, program, ...args], this.ref, this.host).argv;
  }

  private opts(o: RunOptions, program: string): RunOptions {
    return {
      ...o,
      env: { ...this.env, ...(this.container ? this.cli.command([], this.ref, this.host).env : {}), ...o.env },
      secrets: [...this.secrets, ...(o.secrets ?? [])],
      target: this.ref,
      what: o.what ?? program,
      program: o.program ?? program,
      via: this.container ? this.cli.cli : undefined,
    };
  }

  run(program: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
    return this.runner.run(this.argv(program, args, o.input !== undefined), this.opts(o, program));
  }

  spawn(program: string, args: readonly string[], o: RunOptions & { interactive?: boolean } = {}): Spawned {
    return this.runner.spawn(this.argv(program, args, !!o.interactive || o.input !== undefined), this.opts(o, program));
  }
}
