/**
 * Rollback steps for multi-step operations (STYLE.md item 7): each is registered BEFORE the risky
 * step it undoes, and checks the actual state before acting (so it is safe to run when the step
 * never happened or half happened). `run()` runs the registered steps once, newest first, each to
 * the end even when an earlier one failed, and never under the interrupt signal: cleanup is not
 * cut short by the Ctrl-C that caused it.
 */
import type { Logger } from 'pino';
import { exitCodeOf, PgfleetError, type TargetRef } from './errors.js';

interface Step {
  label: string;
  fn: () => Promise<void>;
}

export class Undo {
  private steps: Step[] = [];
  private ran = false;

  constructor(private readonly log: Logger) {}

  /** Register an undo step; the returned function forgets it (the step's effect is now wanted). */
  push(label: string, fn: () => Promise<void>): () => void {
    const step = { label, fn };
    this.steps.push(step);
    return () => {
      this.steps = this.steps.filter((s) => s !== step);
    };
  }

  /** Forget every step: the operation succeeded. */
  clear(): void {
    this.steps = [];
  }

  /** Run every registered step once, newest first. Returns what could not be undone. */
  async run(why = 'rolling back'): Promise<string[]> {
    if (this.ran) return [];
    this.ran = true;
    const failed: string[] = [];
    for (const s of this.steps.reverse()) {
      try {
        this.log.info({ step: s.label }, why);
        await s.fn();
      } catch (e) {
        const msg = `${s.label}: ${(e as Error)?.message ?? String(e)}`;
        this.log.error({ step: s.label, err: (e as Error)?.message ?? String(e) }, 'rollback step failed');
        failed.push(msg);
      }
    }
    this.steps = [];
    return failed;
  }
}

/** The error to throw after undo steps ran: `e` itself, or `e` plus what is left to fix by hand. */
export function withLeftovers(e: unknown, left: string[], ref: TargetRef): unknown {
  if (!left.length) return e;
  const msg = (e as Error)?.message ?? String(e);
  return new PgfleetError(`${msg}\nrollback incomplete, fix by hand: ${left.join('; ')}`, exitCodeOf(e), ref, { cause: e });
}
