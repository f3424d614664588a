/**
 * What every command receives instead of globals: the config, the clock, the logger, the process
 * runner, the repository (over the local store at backup_root: the one way to its files), and how
 * to reach a target. Built once per CLI call (or per test). A dry run works on dryRunContext(ctx),
 * whose repository refuses every write (lib/storage/dryrun.ts).
 */
import type { Logger } from 'pino';
import { clockFromEnv, type Clock } from '../core/clock.js';
import { loadConfig, loadCredentials, type LoadedConfig, type Target } from '../config/load.js';
import { ContainerCli, TargetShell } from '../process/container.js';
import { createLogger } from '../core/log.js';
import { Terminal } from '../core/terminal.js';
import { readOnly } from '../storage/dryrun.js';
import { LocalStore } from '../storage/local.js';
import { Repository } from '../storage/repository.js';
import { Runner } from '../process/runner.js';
import { Secrets } from './secrets.js';

export interface Deps {
  runner: Runner;
  logger: Logger;
  clock: Clock;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM: work stops, cleans up, and throws InterruptedError. */
  signal?: AbortSignal;
  /** Machine-readable output (stdout). */
  out: (line: string) => void;
  /** Show progress of long work (a TTY). */
  progress: boolean;
  /** What a person sees on stderr (lib/core/terminal.ts): step lines, bars, the last line; a no-op off a TTY. */
  term: Terminal;
}

export interface Context extends Deps {
  config: LoadedConfig;
  repo: Repository;
  containers: ContainerCli;
  /** What to redact, one set per target built once (lib/runtime/secrets.ts). */
  secrets: Secrets;
  shellFor(target: Target, containerOverride?: string): TargetShell;
}

export function defaultDeps(over: Partial<Deps> = {}): Deps {
  const env = over.env ?? process.env;
  const term = over.term ?? (over.progress === false ? Terminal.off() : new Terminal({ env }));
  return {
    runner: over.runner ?? new Runner(),
    logger: over.logger ?? createLogger({ terminal: term }),
    clock: over.clock ?? clockFromEnv(env),
    env,
    signal: over.signal,
    out: over.out ?? ((line) => term.printOut(line)),
    progress: over.progress ?? term.shows,
    term,
  };
}

export function contextFor(configFile: string, deps: Deps): Context {
  const config = loadConfig(configFile, deps.env);
  const hostOf = new Map(config.targets.map((t) => [`${t.project}/${t.environment}`, t.containerHost]));
  const containers = new ContainerCli(deps.runner, config.platform.containerCli, { platform: config.platform.containerHost, of: (r) => hostOf.get(`${r.project}/${r.environment}`) });
  const secrets = new Secrets(config, deps.env);
  return {
    ...deps,
    config,
    repo: new Repository(new LocalStore(config.platform.backupRoot)),
    containers,
    secrets,
    shellFor: (target, containerOverride) => new TargetShell(deps.runner, containers, target, loadCredentials(target, deps.env), containerOverride, secrets.for(target)),
  };
}

/** The same context over a read-only repository: reads answer as before, any write is refused as a bug. */
export function dryRunContext(ctx: Context): Context {
  return { ...ctx, repo: new Repository(readOnly(ctx.repo.store)) };
}
