#!/usr/bin/env node
/**
 * pgfleet's CLI: parse arguments, build the context, call lib/commands, map errors to exit codes
 * (lib/errors.ts). SIGINT/SIGTERM abort the work in progress, which cleans up and exits 130.
 */
import { parseArgs } from 'node:util';
import { configPath } from '../lib/config/load.js';
import { contextFor, defaultDeps } from '../lib/runtime/context.js';
import { ConfigError, EXIT, exitCodeOf, formatIssue, PgfleetError, UsageError } from '../lib/core/errors.js';
import { createLogger } from '../lib/core/log.js';
import { VERSION } from '../lib/core/package.js';
import { VERBS } from './commands/index.js';

function help(): string {
  return [
    `pgfleet ${VERSION}: backups, verification restores and rollbacks for a fleet of PostgreSQL databases`,
    '',
    'usage: pgfleet <command> [options]      (--config FILE, env PGFLEET_CONFIG, default ./projects.yml)',
    '',
    ...VERBS.map((v) => `  ${v.usage}\n      ${v.summary}`),
    '',
    'exit codes: 0 ok · 1 failed · 2 bad usage or config · 3 target locked · 4 verification failed · 130 interrupted',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(help() + '\n');
    return argv.length === 0 ? EXIT.USAGE : EXIT.OK;
  }
  if (argv[0] === '--version') {
    process.stdout.write(VERSION + '\n');
    return EXIT.OK;
  }
  const verb = VERBS.find((v) => {
    const words = v.name.split(' ');
    return words.every((w, i) => argv[i] === w);
  });
  if (!verb) throw new UsageError(`unknown command "${argv[0]}"; see pgfleet --help`);
  const rest = argv.slice(verb.name.split(' ').length);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...verb.options, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nusage: pgfleet ${verb.usage}`);
  }
  if (parsed.values.help) {
    process.stdout.write(`usage: pgfleet ${verb.usage}\n  ${verb.summary}\n`);
    return EXIT.OK;
  }
  const [min, max] = verb.positionals;
  if (parsed.positionals.length < min || parsed.positionals.length > max) throw new UsageError(`wrong number of arguments\nusage: pgfleet ${verb.usage}`);

  const ac = new AbortController();
  let signals = 0;
  // The first signal aborts the work, which cleans up (removes temp files, drops scratch
  // databases, swaps back, restarts app containers) and exits 130. A second one is told to wait:
  // cutting clean-up short could leave app containers stopped. A third exits at once.
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      ac.abort(sig);
      // Clean-up is bounded: a run that cannot finish it still ends (the next run removes its temp file).
      setTimeout(() => process.exit(EXIT.INTERRUPTED), 120_000).unref();
    } else if (signals === 2) {
      createLogger().warn(`${sig} again: still cleaning up after the interrupt; send it once more to exit at once (may leave work half undone)`);
    } else process.exit(EXIT.INTERRUPTED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const deps = defaultDeps({ signal: ac.signal });
  const file = configPath(parsed.values.config as string | undefined, deps.env);
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (verb.bare && verb.runBare) return (await verb.runBare(deps, values, parsed.positionals, file)) ?? EXIT.OK;
  const ctx = contextFor(file, deps);
  const code = (await verb.run(ctx, values, parsed.positionals)) ?? EXIT.OK;
  if (ac.signal.aborted) return EXIT.INTERRUPTED;
  return code;
}

let settled = false;
// A promise that never settles must not end as a silent exit 0.
process.on('beforeExit', () => {
  if (!settled) {
    createLogger().error('internal error (a bug in pgfleet; please report it): work ended without a result');
    process.exit(EXIT.FAILED);
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err: unknown) => {
    settled = true;
    if (err instanceof ConfigError) {
      for (const i of err.issues) process.stderr.write(`pgfleet: config: ${formatIssue(i)}\n`);
    } else if (err instanceof UsageError) {
      process.stderr.write(`pgfleet: ${err.message}\n`);
    } else {
      const logger = createLogger();
      if (err instanceof PgfleetError) logger.error({ project: err.target.project, environment: err.target.environment, exit_code: err.exitCode }, err.message);
      else logger.error({ err }, `internal error (a bug in pgfleet; please report it): ${(err as Error)?.message ?? err}`);
    }
    process.exitCode = exitCodeOf(err);
  },
);
