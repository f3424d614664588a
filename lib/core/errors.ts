/**
 * The one table of errors and exit codes (KINDS). EXIT is derived from it, `pgfleet --help` prints
 * it, and the README's exit-code table is this table (test/unit/errors.test.ts fails when they
 * differ). Imports only lib/core/text.ts.
 *
 * Callers decide on an error's class and fields (its kind, a CommandError's program and role),
 * never on its message text: messages are for people and may change.
 */
import { howEnded } from './text.js';

/** Every kind of outcome, its exit code and the one line the README and the help text give it. */
export const KINDS = {
  ok: { exit: 0, meaning: 'success' },
  failed: { exit: 1, meaning: 'the operation failed (a fleet command: at least one target failed); nothing half-done is left' },
  internal: { exit: 1, meaning: 'internal error (a bug in pgfleet; please report it)' },
  usage: { exit: 2, meaning: 'bad usage (unknown command, flag, project or environment) or invalid configuration' },
  locked: { exit: 3, meaning: "another run holds this target's lock (never waited on)" },
  'verify-failed': { exit: 4, meaning: 'a backup failed verification' },
  interrupted: { exit: 130, meaning: 'interrupted (SIGINT/SIGTERM); cleaned up' },
} as const satisfies Record<string, { exit: number; meaning: string }>;

export type ErrorKind = keyof typeof KINDS;

/** The table's rows in order: [code, kind, meaning]. */
export function kindRows(): [number, ErrorKind, string][] {
  return (Object.keys(KINDS) as ErrorKind[]).map((k) => [KINDS[k].exit, k, KINDS[k].meaning]);
}

/** The table as `pgfleet --help` prints it: a heading, then one indented line per kind. */
export function exitCodeHelp(): string[] {
  return ['exit codes:', ...kindRows().map(([code, , meaning]) => `  ${String(code).padEnd(4)}${meaning}`)];
}

/** Exit codes by name (EXIT.VERIFY_FAILED is KINDS['verify-failed'].exit). */
export const EXIT = {
  OK: KINDS.ok.exit,
  FAILED: KINDS.failed.exit,
  INTERNAL: KINDS.internal.exit,
  USAGE: KINDS.usage.exit,
  LOCKED: KINDS.locked.exit,
  VERIFY_FAILED: KINDS['verify-failed'].exit,
  INTERRUPTED: KINDS.interrupted.exit,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The kind an exit code stands for; 1 is `failed` (an InternalError says `internal` itself). */
export function kindOfExit(code: ExitCode): ErrorKind {
  return (Object.keys(KINDS) as ErrorKind[]).find((k) => k !== 'internal' && KINDS[k].exit === code) ?? 'failed';
}

export interface TargetRef {
  project?: string;
  environment?: string;
}

/** An expected failure with a documented exit code. */
export class PgfleetError extends Error {
  readonly exitCode: ExitCode;
  readonly target: TargetRef;
  constructor(message: string, exitCode: ExitCode = EXIT.FAILED, target: TargetRef = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.target = target;
  }

  /** Its row in KINDS. */
  get kind(): ErrorKind {
    return kindOfExit(this.exitCode);
  }
}

/**
 * A bug in pgfleet: a state its own code should never reach (a file it wrote failing its own
 * schema, a call that breaks a function's contract). Exit 1; the CLI prints it with its stack and
 * asks for a report. Never thrown for anything an operator or the environment can cause.
 */
export class InternalError extends PgfleetError {
  constructor(message: string, options?: { cause?: unknown; target?: TargetRef }) {
    super(`internal: ${message}`, EXIT.INTERNAL, options?.target ?? {}, options);
  }

  override get kind(): ErrorKind {
    return 'internal';
  }
}

/**
 * The bug behind `err`, if it is one: an InternalError (also as the cause of ours that wrap it),
 * or anything thrown that is not a PgfleetError (a TypeError, an unexpected rejection). null for
 * an expected failure.
 */
export function bugOf(err: unknown): unknown {
  for (let e: unknown = err, depth = 0; depth < 8; depth++) {
    if (e instanceof InternalError) return e;
    if (!(e instanceof PgfleetError)) return depth === 0 ? e : null;
    e = e.cause;
  }
  return null;
}

export class UsageError extends PgfleetError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

/** One problem in a configuration or input file, with where it is. */
export interface ConfigIssue {
  file: string;
  line?: number;
  path: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}${i.line ? `:${i.line}` : ''}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** Every problem found in a config, reported at once. */
export class ConfigError extends PgfleetError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(
      `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` + issues.map((i) => '  ' + formatIssue(i)).join('\n'),
      EXIT.USAGE,
    );
    this.issues = issues;
  }
}

export class LockBusyError extends PgfleetError {
  constructor(target: TargetRef, holder: string) {
    super(`${target.project}/${target.environment}: another pgfleet run holds this target's lock (${holder})`, EXIT.LOCKED, target);
  }
}

export class VerificationError extends PgfleetError {
  constructor(message: string, target: TargetRef = {}) {
    super(message, EXIT.VERIFY_FAILED, target);
  }
}

export class InterruptedError extends PgfleetError {
  constructor(signal = 'SIGINT') {
    super(`interrupted by ${signal}`, EXIT.INTERRUPTED);
  }
}

/**
 * What a process was run for, so that callers can tell which step failed without reading its
 * message or command line. The runner copies it from RunOptions.role into the CommandError.
 */
export const COMMAND_ROLES = [
  'dump', // pg_dump writing the archive
  'compress', // zstd compressing a dump
  'decompress', // zstd reading a dump back
  'snapshot', // the session that opens and exports a dump's snapshot (and counts its rows)
  'count', // counting rows (of a restored copy)
  'admin', // database administration: create, drop, rename, settings
  'query', // any other SQL
  'stage', // copying a dump into the container before pg_restore reads it
  'restore', // pg_restore
  'inspect', // the container CLI asked about a container
  'start', // the container CLI starting a container
  'stop', // the container CLI stopping a container
  'hook', // a project's hook
  'cleanup', // removing what a run left (a staged dump, a pipe)
  'setup', // preparing what a step needs (a pipe, a directory)
] as const;

export type CommandRole = (typeof COMMAND_ROLES)[number];

/**
 * A process that failed: the command (secrets redacted), its exit code or signal, and the tail of
 * its stderr; which program it was (`pg_dump`, `psql`, `pg_restore`, `zstd`, `docker`, `podman`,
 * a hook's executable: the program inside `docker exec`, never `docker` for it), through which
 * container CLI (`via`, none when run directly), and what it was for (`role`).
 */
export class CommandError extends PgfleetError {
  readonly command: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderrTail: string;
  readonly program: string;
  readonly role: CommandRole | undefined;
  readonly via: 'docker' | 'podman' | undefined;
  constructor(args: {
    command: string;
    code: number | null;
    signal: string | null;
    stderrTail: string;
    program: string;
    role?: CommandRole;
    via?: 'docker' | 'podman';
    target?: TargetRef;
    what?: string;
  }) {
    const where = args.target?.project ? `${args.target.project}/${args.target.environment}: ` : '';
    const how = howEnded(args.code, args.signal);
    const tail = args.stderrTail.trim() ? `: ${args.stderrTail.trim()}` : '';
    super(`${where}${args.what ?? args.program} failed (${how}) [${args.command}]${tail}`, EXIT.FAILED, args.target ?? {});
    this.command = args.command;
    this.code = args.code;
    this.signal = args.signal;
    this.stderrTail = args.stderrTail;
    this.program = args.program;
    this.role = args.role;
    this.via = args.via;
  }
}

/** Exit code for anything thrown: ours carry one; anything else is a bug (EXIT.INTERNAL). */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof PgfleetError ? err.exitCode : EXIT.INTERNAL;
}
