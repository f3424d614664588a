/**
 * A runbook's steps as they are done: step(name) ends the step before it (✓ and its duration on a
 * terminal) and logs the new one as `{step: name}` "<prefix>: <name>", the JSON line cron and CI
 * read (unchanged: a contract); fail() marks the step under way ✗, done() ✓, skip() – with why.
 *
 * Promises: the log records are the same whatever the terminal shows (a skip writes no record);
 * every mark is written once; after done() or fail() nothing more is marked.
 */
import type { Logger } from 'pino';
import { Terminal } from './terminal.js';

export interface StepsOptions {
  /** Before each step's log message: "restore" → "restore: <step>". */
  prefix: string;
  /** The level of each step's record (default info). */
  level?: 'info' | 'debug';
  /** Told each step as it starts. */
  onStep?: (name: string) => void;
}

export class Steps {
  private current: { name: string; t0: number } | null = null;
  private ended = false;
  readonly t0: number;

  constructor(
    private readonly log: Logger,
    readonly term: Terminal,
    private readonly o: StepsOptions,
  ) {
    this.t0 = term.now();
  }

  /** The step now under way, or null. */
  get name(): string | null {
    return this.current?.name ?? null;
  }

  step(name: string, fields: Record<string, unknown> = {}): void {
    this.close('done');
    this.ended = false;
    this.current = { name, t0: this.term.now() };
    this.o.onStep?.(name);
    this.log[this.o.level ?? 'info']({ step: name, ...fields }, `${this.o.prefix}: ${name}`);
  }

  /** A step not done, with the reason (no log record: the records stay those of today). */
  skip(name: string, why: string): void {
    this.close('done');
    this.term.mark('skipped', name, undefined, why);
  }

  /** The step under way is done; `note` follows its duration. */
  done(note?: string): void {
    this.close('done', note);
    this.ended = true;
  }

  /** The step under way failed (its error is logged by whoever handles it). */
  fail(note?: string): void {
    this.close('failed', note);
    this.ended = true;
  }

  /** Milliseconds since these steps began. */
  elapsed(): number {
    return this.term.now() - this.t0;
  }

  private close(kind: 'done' | 'failed', note?: string): void {
    if (!this.current || this.ended) return;
    this.term.mark(kind, this.current.name, this.term.now() - this.current.t0, note);
    this.current = null;
  }
}
