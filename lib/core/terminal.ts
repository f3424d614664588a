/**
 * What a person sees on a terminal (ARCHITECTURE.md "What a person sees"): one line per completed
 * step with its mark and duration, a progress bar with bytes, rate and ETA, a live area (a bar or a
 * fleet's table) kept at the bottom, and a last line saying what is live now and what is left to do.
 *
 * Promises: draws only when stderr is a TTY and the verbosity is not `quiet`; off a TTY every
 * method is a no-op, so cron and CI get the JSON log lines alone (lib/core/log.ts) and stdout stays
 * machine-readable. Colour only on a TTY and never with NO_COLOR set (https://no-color.org). What
 * it writes is what callers give it: never a secret (callers redact, as for logs).
 */
import { humanSize } from './text.js';

export type Verbosity = 'quiet' | 'normal' | 'verbose';
export type Mark = 'done' | 'failed' | 'skipped';

export interface TerminalOptions {
  stream?: { write(s: string): unknown; columns?: number };
  /** Default: the stream is a TTY. */
  tty?: boolean;
  verbosity?: Verbosity;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds, for rates and ETAs (tests). */
  now?: () => number;
}

const MARKS: Record<Mark, [string, string]> = { done: ['✓', '32'], failed: ['✗', '31'], skipped: ['–', '2'] };

/** "0.3 s", "12 s", "4 min 05 s". */
export function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const SGR = /\x1b\[[0-9;]*m/g;

/** A live line cut to `width` visible characters (a wrapped line would break the redraw); colour dropped when cut. */
function fit(line: string, width: number): string {
  const plain = line.replace(SGR, '');
  return [...plain].length <= width ? line : [...plain].slice(0, width - 1).join('') + '…';
}

export interface LiveSlot {
  update(): void;
  /** Idempotent. keep: its last lines stay on screen. */
  remove(keep?: boolean): void;
}

export class Terminal {
  /** Draws anything at all (a TTY, not quiet). */
  readonly shows: boolean;
  readonly tty: boolean;
  readonly color: boolean;
  readonly verbosity: Verbosity;
  readonly now: () => number;
  private readonly out: { write(s: string): unknown; columns?: number };
  /** The live area, shared with nested() views of the same screen. */
  private screen: { live: { render: () => string[] }[]; drawn: number } = { live: [], drawn: 0 };
  private marks = true;

  constructor(o: TerminalOptions = {}) {
    this.out = o.stream ?? process.stderr;
    this.tty = o.tty ?? (this.out as { isTTY?: boolean }).isTTY === true;
    this.verbosity = o.verbosity ?? 'normal';
    const env = o.env ?? process.env;
    this.color = this.tty && !env.NO_COLOR;
    this.shows = this.tty && this.verbosity !== 'quiet';
    this.now = o.now ?? (() => performance.now());
  }

  /** A terminal that shows nothing (tests, parallel work, off a TTY). */
  static off(): Terminal {
    return new Terminal({ tty: false, stream: { write: () => true } });
  }

  /**
   * The same screen for a runbook run inside another's step (a restore's safety backup): its bars
   * and warnings show, its step marks do not.
   */
  nested(): Terminal {
    const view = Object.assign(Object.create(Terminal.prototype) as Terminal, this);
    view.marks = false;
    return view;
  }

  /** `text` in an SGR colour (e.g. '32' green), or plain without colour. */
  paint(code: string, text: string): string {
    return this.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  get columns(): number {
    return this.out.columns ?? 100;
  }

  /** A whole line above the live area (which is drawn again under it). */
  line(text: string): void {
    if (!this.shows) return;
    this.redraw(text.split('\n'));
  }

  /** Writes a line whatever the verbosity, on a TTY (errors in quiet mode). */
  always(text: string): void {
    if (!this.tty) return;
    this.redraw(text.split('\n'));
  }

  /** `✓ name  0.3 s`: a step that ended, its mark, its duration, a note. */
  mark(kind: Mark, name: string, ms?: number, note?: string): void {
    if (!this.marks) return;
    const [sym, code] = MARKS[kind];
    const tail = [ms === undefined ? '' : duration(ms), note ?? ''].filter(Boolean).join('  ');
    this.line(`${this.paint(code, sym)} ${name}${tail ? '  ' + this.paint('2', tail) : ''}`);
  }

  /** The last line: what is live now, and what is left to do (if anything). */
  finish(live: string, todo?: string): void {
    this.line(this.paint('1', `→ ${live}`) + (todo ? `\n  left to do: ${todo}` : ''));
  }

  /**
   * Keep `render`'s lines at the bottom of the screen (under every line(), below earlier live
   * lines), drawn again by update(); remove(true) leaves its last state on screen as lines.
   */
  addLive(render: () => string[]): LiveSlot {
    const slot = { render };
    if (this.shows) {
      this.screen.live.push(slot);
      this.redraw([]);
    }
    return {
      update: () => this.update(),
      remove: (keep = false) => {
        if (!this.shows || !this.screen.live.includes(slot)) return;
        const last = keep ? slot.render() : [];
        this.screen.live = this.screen.live.filter((x) => x !== slot);
        this.redraw(last);
      },
    };
  }

  /**
   * A line of stdout (`out`), the machine-readable output. When stdout is this same terminal and
   * live lines are drawn on stderr, they are taken down first and drawn again under it, so the two
   * streams never overwrite each other; otherwise the line is written as it is.
   */
  printOut(line: string, out: { write(s: string): unknown; isTTY?: boolean } = process.stdout): void {
    if (!this.shows || !this.screen.live.length || !out.isTTY) {
      out.write(line + '\n');
      return;
    }
    const n = this.screen.drawn;
    if (n) this.write(`\x1b[${n}F` + '\x1b[K\n'.repeat(n) + `\x1b[${n}F`);
    this.screen.drawn = 0;
    out.write(line + '\n');
    this.redraw([]);
  }

  /** Remove every live line (a command that failed midway): what is printed next is not redrawn under. Idempotent. */
  reset(): void {
    if (!this.shows || !this.screen.live.length) return;
    this.screen.live = [];
    this.redraw([]);
  }

  /** Draw the live lines again (their content changed). */
  update(): void {
    if (this.shows && this.screen.live.length) this.redraw([]);
  }

  /**
   * Write `lines` where the live lines were, then the live lines under them. The old lines are
   * overwritten in place, each cleared to its end (ESC[K), and left-over ones blanked: never a
   * clear of the whole screen, which a terminal may scroll into its history (tmux does).
   */
  private redraw(lines: string[]): void {
    const old = this.screen.drawn;
    const live = this.screen.live.flatMap((s) => s.render()).map((l) => fit(l, Math.max(20, this.columns - 1)));
    const all = [...lines, ...live];
    let out = old ? `\x1b[${old}F` : '';
    out += all.map((l) => l + '\x1b[K\n').join('');
    const extra = old - all.length;
    if (extra > 0) out += '\x1b[K\n'.repeat(extra) + `\x1b[${extra}F`;
    this.screen.drawn = live.length;
    this.write(out);
  }

  private write(s: string): void {
    if (s) this.out.write(s);
  }

  /**
   * A bar for work measured only by time (pg_restore inside the container): elapsed against
   * `expectedMs` (from `basis`, e.g. the last verification restore), redrawn twice a second.
   */
  timer(label: string, o: { expectedMs?: number | null; basis: string; missing?: string }): { stop(): void } {
    if (!this.shows) return { stop() {} };
    const t0 = this.now();
    const render = () => {
      const ms = this.now() - t0;
      const exp = o.expectedMs ?? 0;
      if (exp <= 0) return `  ${label}  ${duration(ms)}  ${this.paint('2', `(no ETA: ${o.missing ?? 'nothing to estimate from'})`)}`;
      const share = Math.min(1, ms / exp);
      const full = Math.round(share * 24);
      const left = exp - ms;
      return `  ${label}  [${this.paint('36', '█'.repeat(full))}${'░'.repeat(24 - full)}] ${String(Math.floor(share * 100)).padStart(3)}%  ${duration(ms)} of ~${duration(exp)} (${o.basis})${left > 0 ? `  ETA ${duration(left)}` : '  taking longer'}`;
    };
    const slot = this.addLive(() => [render()]);
    const tick = setInterval(() => slot.update(), 500);
    tick.unref?.();
    let stopped = false;
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        clearInterval(tick);
        slot.remove();
      },
    };
  }

  /** A progress bar for work measured in bytes; see Progress. */
  progress(label: string, o: { total?: number | null; basis?: string } = {}): Progress {
    return new Progress(this, label, o.total ?? null, o.basis);
  }
}

/**
 * `label [█████░░░░░] 312 MiB of ~520 MiB  48.1 MiB/s  ETA 4 s`. The total is an estimate when
 * `basis` says where it comes from (the previous backup's size); without one the bar says so and
 * shows no ETA. Redrawn at most 5 times a second; stop() removes it.
 */
export class Progress {
  private bytes = 0;
  private readonly t0: number;
  private last = 0;
  private stopped = false;
  private readonly slot: LiveSlot;

  constructor(
    private readonly term: Terminal,
    private readonly label: string,
    private readonly total: number | null,
    private readonly basis?: string,
  ) {
    this.t0 = term.now();
    this.slot = term.addLive(() => [this.render()]);
  }

  /** The bytes done so far. */
  set(bytes: number): void {
    this.bytes = bytes;
    const t = this.term.now();
    if (t - this.last >= 150) {
      this.last = t;
      this.slot.update();
    }
  }

  add(n: number): void {
    this.set(this.bytes + n);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.slot.remove();
  }

  render(): string {
    const s = Math.max(0.001, (this.term.now() - this.t0) / 1000);
    const rate = this.bytes / s;
    const parts = [`  ${this.label}`];
    const est = this.basis ? '~' : '';
    if (this.total && this.total > 0) {
      const share = Math.min(1, this.bytes / this.total);
      const width = 24;
      const full = Math.round(share * width);
      parts.push(`[${this.term.paint('36', '█'.repeat(full))}${'░'.repeat(width - full)}] ${String(Math.floor(share * 100)).padStart(3)}%`);
      parts.push(`${humanSize(this.bytes)} of ${est}${humanSize(this.total)}`);
      parts.push(`${humanSize(rate)}/s`);
      if (this.bytes > this.total) parts.push(`past the ${this.basis ?? 'expected size'}`);
      else if (rate > 0 && this.bytes > 0) parts.push(`ETA ${duration(((this.total - this.bytes) / rate) * 1000)}`);
    } else {
      parts.push(humanSize(this.bytes), `${humanSize(rate)}/s`, `${duration(s * 1000)}`, this.term.paint('2', '(no earlier size to estimate from: no ETA)'));
    }
    return parts.join('  ');
  }
}
