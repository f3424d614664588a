/**
 * The one table of errors and exit codes. The README's exit-code table is this table.
 *
 *   0 success · 1 the operation failed · 2 bad usage or invalid configuration
 *   3 another run holds this target's lock · 4 a backup failed verification · 130 interrupted
 */
import { howEnded } from './text.js';

export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  LOCKED: 3,
  VERIFY_FAILED: 4,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

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

/** A process that failed: the command (secrets redacted), its exit code or signal, and the tail of its stderr. */
export class CommandError extends PgfleetError {
  readonly command: string;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderrTail: string;
  constructor(args: { command: string; code: number | null; signal: string | null; stderrTail: string; target?: TargetRef; what?: string }) {
    const where = args.target?.project ? `${args.target.project}/${args.target.environment}: ` : '';
    const how = howEnded(args.code, args.signal);
    const tail = args.stderrTail.trim() ? `: ${args.stderrTail.trim()}` : '';
    super(`${where}${args.what ?? 'command'} failed (${how}) [${args.command}]${tail}`, EXIT.FAILED, args.target ?? {});
    this.command = args.command;
    this.code = args.code;
    this.signal = args.signal;
    this.stderrTail = args.stderrTail;
  }
}

/** Exit code for anything thrown: ours carry one; anything else is a bug (1, "please report"). */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof PgfleetError ? err.exitCode : EXIT.FAILED;
}
