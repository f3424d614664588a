#!/usr/bin/env node
/**
 * pgfleet's CLI: parse arguments, build the context, call lib/commands, map errors to exit codes
 * (the table in lib/core/errors.ts). SIGINT/SIGTERM abort the work in progress, which cleans up and
 * exits 130. A bug (an InternalError, or anything thrown that is not a PgfleetError) is reported as
 * one: "internal error (a bug in pgfleet; please report it)", with its stack.
 */
import { parseArgs } from 'node:util';
import { configPath } from '../lib/config/load.js';
import { contextFor, defaultDeps } from '../lib/runtime/context.js';
import { bugOf, ConfigError, EXIT, exitCodeHelp, exitCodeOf, formatIssue, KINDS, PgfleetError, UsageError } from '../lib/core/errors.js';
import { redact } from '../lib/core/redact.js';
import { createLogger } from '../lib/core/log.js';
import { Terminal } from '../lib/core/terminal.js';
import { VERSION } from '../lib/core/package.js';
import { VERBS } from './commands/index.js';

function help(): string {
  return [
    `pgfleet ${VERSION}: backups, verification restores and rollbacks for a fleet of PostgreSQL databases`,
    '',
    'usage: pgfleet <command> [options]      (--config FILE, env PGFLEET_CONFIG, default ./projects.yml)',
    '       -v, --verbose: every log record on a terminal; -q, --quiet: only errors and stdout; NO_COLOR: no colour',
    '',
    ...VERBS.map((v) => `  ${v.usage}\n      ${v.summary}`),
    '',
    ...exitCodeHelp(),
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
    parsed = parseArgs({
      args: rest,
      options: { ...verb.options, config: { type: 'string' }, help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean', short: 'v' }, quiet: { type: 'boolean', short: 'q' } },
      allowPositionals: true,
      strict: true,
    });
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

  if (parsed.values.verbose && parsed.values.quiet) throw new UsageError('--verbose and --quiet: give one');
  term = new Terminal({ verbosity: parsed.values.verbose ? 'verbose' : parsed.values.quiet ? 'quiet' : 'normal' });
  const deps = defaultDeps({ signal: ac.signal, term });
  const file = configPath(parsed.values.config as string | undefined, deps.env);
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (verb.bare && verb.runBare) return (await verb.runBare(deps, values, parsed.positionals, file)) ?? EXIT.OK;
  const ctx = contextFor(file, deps);
  const code = (await verb.run(ctx, values, parsed.positionals)) ?? EXIT.OK;
  if (ac.signal.aborted) return EXIT.INTERRUPTED;
  return code;
}

/** The terminal of this run (its verbosity), once the arguments are read; its logger reports the failure. */
let term: Terminal | undefined;

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * The bug as the log shows it (pino's `err`: type, message, stack, causes), its message and stack
 * redacted: a bug may carry anything. A copy of the same class, so its type is the bug's own.
 */
function bugReport(bug: unknown, depth = 0): Error {
  const e = bug instanceof Error ? bug : new Error(messageOf(bug));
  const copy = Object.create(Object.getPrototypeOf(e) as object) as Error;
  Object.defineProperty(copy, 'message', { value: redact(e.message) });
  Object.defineProperty(copy, 'stack', { value: e.stack ? redact(e.stack) : undefined });
  if (e.cause !== undefined && depth < 4) Object.defineProperty(copy, 'cause', { value: bugReport(e.cause, depth + 1) });
  return copy;
}

let settled = false;
// A promise that never settles must not end as a silent exit 0.
process.on('beforeExit', () => {
  if (!settled) {
    createLogger().error({ kind: 'internal', exit_code: EXIT.INTERNAL }, `${KINDS.internal.meaning}: work ended without a result`);
    process.exit(EXIT.INTERNAL);
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err: unknown) => {
    settled = true;
    term?.reset(); // a bar or a live table left by the failed work
    if (err instanceof ConfigError) {
      for (const i of err.issues) process.stderr.write(`pgfleet: config: ${formatIssue(i)}\n`);
    } else if (err instanceof UsageError) {
      process.stderr.write(`pgfleet: ${err.message}\n`);
    } else {
      const logger = createLogger({ terminal: term });
      const bug = bugOf(err);
      const target = err instanceof PgfleetError ? { project: err.target.project, environment: err.target.environment } : {};
      if (bug) logger.error({ ...target, kind: 'internal', exit_code: exitCodeOf(err), err: bugReport(bug) }, `${KINDS.internal.meaning}: ${redact(messageOf(err))}`);
      else logger.error({ ...target, exit_code: exitCodeOf(err) }, (err as PgfleetError).message);
    }
    process.exitCode = exitCodeOf(err);
  },
);
