/**
 * The built CLI in a real pseudo-terminal: a tmux server of the test's own (its own socket, so
 * nothing else's sessions are touched), one detached window of a fixed size, and its screen as
 * text (capture-pane), with or without the escape sequences of colour.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, type TestFleet } from '../helpers.js';
import { sleep } from './support.js';

export class Tty {
  private readonly socket: string;
  private n = 0;

  constructor(private readonly fleet: TestFleet) {
    this.socket = `${fleet.prefix}-tty`;
  }

  private tmux(args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Run `pgfleet <args>` in a new 120×40 window; resolves once it exited, with its screen (the
   * scrollback too) and exit code. `onScreen` is called with the screen as it runs (every 50 ms).
   */
  async run(args: string[], o: { env?: Record<string, string>; onScreen?: (screen: string) => void; timeoutMs?: number } = {}): Promise<{ code: number; screen: string; raw: string }> {
    const name = `w${++this.n}`;
    const script = path.join(this.fleet.dir, `${name}.sh`);
    const env = { PGFLEET_CONFIG: this.fleet.configFile, ...o.env };
    const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`);
    // Exit code written after the CLI ends; the window stays (the shell waits) until killed.
    writeFileSync(script, ['#!/bin/sh', 'unset NO_COLOR', ...exports, `'${process.execPath}' '${CLI}' ${args.map((a) => `'${a}'`).join(' ')}`, 'echo "__exit $?"', 'sleep 600', ''].join('\n'), { mode: 0o700 });
    // A session that outlives each run: a server whose last session ended exits, and racing its exit fails the next start.
    if (this.n === 1) this.tmux(['new-session', '-d', '-s', 'keep', 'sleep 3600']);
    this.tmux(['new-session', '-d', '-s', name, '-x', '120', '-y', '40', script]);
    const t0 = Date.now();
    try {
      for (;;) {
        const screen = this.capture(name, false);
        const m = /__exit (\d+)/.exec(screen);
        if (m) return { code: Number(m[1]), screen: screen.replace(/__exit \d+\n?/, '').trimEnd(), raw: this.capture(name, true) };
        o.onScreen?.(screen);
        if (Date.now() - t0 > (o.timeoutMs ?? 120_000)) throw new Error(`pgfleet ${args.join(' ')} did not end; its screen:\n${screen}`);
        await sleep(50);
      }
    } finally {
      this.tmux(['kill-session', '-t', name]);
    }
  }

  private capture(name: string, escapes: boolean): string {
    return this.tmux(['capture-pane', '-p', '-J', '-S', '-2000', ...(escapes ? ['-e'] : []), '-t', name]);
  }

  /** Stop this test's tmux server (only its own socket). */
  close(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}
