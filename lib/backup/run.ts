/**
 * The moving parts of one backup, stopped together (lib/backup/take.ts): its child processes,
 * its psql session, and the save into the store.
 *
 * Promises: the first failure wins: it is kept as THE error, every process and the session are
 * killed at once, and `signal` (given to the store's save) aborts, so a save can never complete
 * after any part failed. The caller's interrupt (ctx.signal) is such a failure (InterruptedError).
 * stop() is idempotent; settle() waits until every process has exited, whatever happened.
 */
import { InterruptedError } from '../core/errors.js';
import type { Spawned } from '../process/runner.js';
import type { Session } from '../postgres/pool.js';

type Part = Spawned | Session;
const isSession = (p: Part): p is Session => 'query' in p;

export class DumpRun {
  private readonly parts: Part[] = [];
  private readonly aborter = new AbortController();
  private first: { error: unknown } | null = null;
  private readonly onAbort = () => this.stop(new InterruptedError(String(this.interrupt?.reason ?? 'SIGINT')));

  /** Aborted at the first failure: the save's signal. */
  readonly signal = this.aborter.signal;

  constructor(private readonly interrupt?: AbortSignal) {
    interrupt?.addEventListener('abort', this.onAbort, { once: true });
    if (interrupt?.aborted) this.onAbort();
  }

  /** A process or session of this run: killed when the run stops. Killed at once when it already has. */
  track(p: Part): void {
    this.parts.push(p);
    if (this.first) kill(p);
  }

  /** Stop everything; the first error given is the run's error. Idempotent. */
  stop(e: unknown): void {
    if (!this.first) {
      this.first = { error: e };
      this.aborter.abort(e);
    }
    for (const p of this.parts) kill(p);
  }

  /** `p`, stopping the run when it rejects (with its error, unless an earlier failure won). */
  watch<T>(p: Promise<T>): Promise<T> {
    return p.catch((e) => {
      this.stop(e);
      throw e;
    });
  }

  get stopped(): boolean {
    return this.first !== null;
  }

  /** The failure that stopped the run (undefined while it runs). */
  get error(): unknown {
    return this.first?.error;
  }

  /** Throws the run's error if it has stopped. */
  throwIfStopped(): void {
    if (this.first) throw this.first.error;
  }

  /** Wait until every process of the run has exited (their failures are already the run's). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.parts.map((p) => (isSession(p) ? undefined : p.done)));
  }

  /** Stop listening to the caller's interrupt (call once, when the backup is over). */
  dispose(): void {
    this.interrupt?.removeEventListener('abort', this.onAbort);
  }
}

function kill(p: Part): void {
  if (isSession(p)) p.kill();
  else p.kill('SIGKILL');
}
