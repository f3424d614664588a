/**
 * The confirmation step of commands that replace a live database (restore, rollback):
 *
 *   --dry-run            → false: the caller has printed its plan and stops, changing nothing
 *   --yes                → true
 *   a TTY on stdin/stderr → ask; "y"/"yes" → true, anything else → PgfleetError (exit 1), nothing changed
 *   no TTY, no --yes     → UsageError (exit 2): cron and scripts must say --yes explicitly
 */
import { createInterface } from 'node:readline/promises';
import type { Deps } from './context.js';
import { EXIT, InterruptedError, PgfleetError, UsageError } from '../core/errors.js';

export interface ConfirmOptions {
  yes?: boolean;
  dryRun?: boolean;
  /** Tests: whether a person is there to ask (default: stdin and stderr are TTYs). */
  tty?: boolean;
  /** Tests: the answer the person gives (default: read a line from stdin). */
  ask?: (question: string) => Promise<string>;
}

async function askOnTty(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // On a terminal readline reads Ctrl-C as a key, not a signal: make it end the question.
  const ac = new AbortController();
  rl.on('SIGINT', () => ac.abort());
  try {
    return await rl.question(`${question} [y/N] `, { signal: ac.signal });
  } catch {
    // Ctrl-C (or the end of input) at the prompt: an interrupt, not a bug.
    throw new InterruptedError('SIGINT');
  } finally {
    rl.close();
  }
}

/** true: go ahead · false: dry run, stop here. Throws when there is no consent. */
export async function confirmOrExit(deps: Pick<Deps, 'logger'>, question: string, o: ConfirmOptions): Promise<boolean> {
  if (o.dryRun) return false;
  if (o.yes) return true;
  const tty = o.tty ?? (process.stdin.isTTY === true && process.stderr.isTTY === true);
  if (!tty) throw new UsageError(`${question} Refusing without --yes: there is no terminal to ask on (use --dry-run to see the plan, --yes to go ahead)`);
  const answer = (await (o.ask ?? askOnTty)(question)).trim().toLowerCase();
  if (answer === 'y' || answer === 'yes') return true;
  deps.logger.warn({ answer }, 'not confirmed; nothing changed');
  throw new PgfleetError('not confirmed; nothing changed', EXIT.FAILED);
}
