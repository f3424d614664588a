/**
 * A fleet command's live table on a terminal (lib/core/terminal.ts): one row per target, waiting,
 * running (with its time so far) or finished (its mark, duration and a note), updated as each
 * finishes. Off a TTY, or quiet, nothing: the command's summary on stdout and its log lines are the
 * record. close() removes it; the command then prints its summary as it always has.
 *
 * Promises: rows stay in the order given; a key not given is ignored (never throws); idempotent
 * close(); a live table of more rows than the screen shows its first rows and a count of the rest.
 */
import { duration, type LiveSlot, type Mark, type Terminal } from './terminal.js';

interface Row {
  state: 'waiting' | 'running' | Mark;
  t0?: number;
  ms?: number;
  note?: string;
}

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const SYMBOL: Record<Mark, [string, string]> = { done: ['✓', '32'], failed: ['✗', '31'], skipped: ['–', '2'] };

export class Board {
  private readonly rows = new Map<string, Row>();
  private readonly slot: LiveSlot;
  private readonly tick: ReturnType<typeof setInterval> | null = null;
  private frame = 0;

  /** `title`: what the fleet is doing ("backing up", "verifying"). */
  constructor(
    private readonly term: Terminal,
    keys: readonly string[],
    private readonly title: string,
    private readonly maxRows = 30,
  ) {
    for (const k of keys) this.rows.set(k, { state: 'waiting' });
    this.slot = term.addLive(() => this.render());
    if (term.shows && keys.length) {
      this.tick = setInterval(() => (this.frame++, this.slot.update()), 250);
      this.tick.unref?.();
    }
  }

  start(key: string, note?: string): void {
    const r = this.rows.get(key);
    if (!r) return;
    Object.assign(r, { state: 'running', t0: this.term.now(), note });
    this.slot.update();
  }

  finish(key: string, mark: Mark, note?: string, ms?: number): void {
    const r = this.rows.get(key);
    if (!r) return;
    Object.assign(r, { state: mark, ms: ms ?? (r.t0 === undefined ? undefined : this.term.now() - r.t0), note });
    this.slot.update();
  }

  /** Run `work` as row `key`: running, then the mark and note `outcome` gives (a throw: ✗ and its message, rethrown). */
  async track<T>(key: string, work: () => Promise<T>, outcome: (r: T) => [Mark, string?]): Promise<T> {
    this.start(key);
    try {
      const r = await work();
      this.finish(key, ...outcome(r));
      return r;
    } catch (e) {
      this.finish(key, 'failed', (e as Error)?.message ?? String(e));
      throw e;
    }
  }

  close(): void {
    if (this.tick) clearInterval(this.tick);
    this.slot.remove();
  }

  render(): string[] {
    const all = [...this.rows];
    const finished = all.filter(([, r]) => r.state !== 'waiting' && r.state !== 'running').length;
    const width = Math.max(...all.map(([k]) => k.length), 6);
    const lines = [this.term.paint('1', `${this.title}: ${finished} of ${all.length} done`)];
    for (const [k, r] of all.slice(0, this.maxRows)) {
      const name = k.padEnd(width);
      if (r.state === 'waiting') lines.push(this.term.paint('2', `  · ${name}  waiting`));
      else if (r.state === 'running') lines.push(`  ${this.term.paint('36', SPIN[this.frame % SPIN.length])} ${name}  ${duration(this.term.now() - (r.t0 ?? 0))}${r.note ? '  ' + r.note : ''}`);
      else {
        const [sym, code] = SYMBOL[r.state];
        lines.push(`  ${this.term.paint(code, sym)} ${name}  ${r.ms === undefined ? '' : duration(r.ms)}${r.note ? '  ' + this.term.paint('2', r.note) : ''}`);
      }
    }
    if (all.length > this.maxRows) lines.push(this.term.paint('2', `  … and ${all.length - this.maxRows} more`));
    return lines;
  }
}
