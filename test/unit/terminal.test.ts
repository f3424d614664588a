// The terminal layer (lib/core/terminal.ts, steps.ts) and the log on a terminal (lib/core/log.ts):
// what a TTY shows, that nothing is drawn off a TTY or when quiet, colour rules, and that the step
// records are the JSON lines of before.
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createLogger } from '../../lib/core/log.js';
import { Steps } from '../../lib/core/steps.js';
import { Board } from '../../lib/core/board.js';
import { duration, Terminal, type Verbosity } from '../../lib/core/terminal.js';

/** A fake TTY stream and a clock the test moves. */
function screen(o: { tty?: boolean; verbosity?: Verbosity; env?: NodeJS.ProcessEnv; columns?: number } = {}) {
  let out = '';
  let t = 0;
  const term = new Terminal({ stream: { write: (s: string) => (out += s), columns: o.columns ?? 120 }, tty: o.tty ?? true, verbosity: o.verbosity, env: o.env ?? {}, now: () => t });
  return { term, raw: () => out, text: () => render(out), tick: (ms: number) => (t += ms) };
}

/** What a terminal would show: text, newlines, ESC[nF (up n lines), ESC[K (clear to the line's end) and ESC[J applied, colours removed. */
function render(raw: string): string[] {
  const rows: string[] = [''];
  let cur = 0;
  let col = 0;
  const re = /\x1b\[(\d+)F|\x1b\[K|\x1b\[J|\x1b\[[0-9;]*m|\n|[^\x1b\n]+/g;
  for (const m of raw.matchAll(re)) {
    const tok = m[0];
    if (m[1]) [cur, col] = [Math.max(0, cur - Number(m[1])), 0];
    else if (tok === '\x1b[K') rows[cur] = rows[cur].slice(0, col);
    else if (tok === '\x1b[J') rows.splice(cur + 1), (rows[cur] = rows[cur].slice(0, col));
    else if (tok === '\n') {
      cur++;
      col = 0;
      rows[cur] ??= '';
    } else if (!tok.startsWith('\x1b')) {
      rows[cur] = rows[cur].slice(0, col) + tok + rows[cur].slice(col + tok.length);
      col += tok.length;
    }
  }
  while (rows.length && rows[rows.length - 1] === '') rows.pop();
  return rows;
}

/** Whether the output ever cleared the whole screen (ESC[J at its top), which tmux scrolls into history. */
const clearsScreen = (raw: string) => /\x1b\[J/.test(raw);

const memoryLog = () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (c, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean).map((l) => JSON.parse(l))), cb()) });
  return { log: pino({ level: 'debug', base: undefined, timestamp: false }, sink), lines };
};

describe('duration', () => {
  it.each([
    [312, '0.3 s'],
    [9_940, '9.9 s'],
    [12_400, '12 s'],
    [245_000, '4 min 05 s'],
    [3_900_000, '1 h 05 min'],
  ])('%i ms → %s', (ms, s) => expect(duration(ms)).toBe(s));
});

describe('Steps on a terminal', () => {
  it('one line per step as it completes: mark, name, duration; the failed one ✗; a skip – with why', () => {
    const s = screen();
    const { log, lines } = memoryLog();
    const steps = new Steps(log, s.term, { prefix: 'restore' });
    steps.step('check the dump against its metadata');
    s.tick(300);
    expect(s.text()).toEqual([]); // a step shows once done
    steps.step('safety backup of the live database');
    s.tick(1_600);
    steps.skip('stop app containers', 'none configured');
    steps.step('restore into scratch database');
    s.tick(2_000);
    steps.fail();
    steps.done(); // nothing more after the end
    expect(s.text()).toEqual([
      '✓ check the dump against its metadata  0.3 s',
      '✓ safety backup of the live database  1.6 s',
      '– stop app containers  none configured',
      '✗ restore into scratch database  2.0 s',
    ]);
    // The records are today's: {step} "restore: <step>", at info; a skip writes none.
    expect(lines.map((l) => [l.level, l.step, l.msg])).toEqual([
      [30, 'check the dump against its metadata', 'restore: check the dump against its metadata'],
      [30, 'safety backup of the live database', 'restore: safety backup of the live database'],
      [30, 'restore into scratch database', 'restore: restore into scratch database'],
    ]);
  });

  it('off a TTY and when quiet: nothing drawn, the same records', () => {
    for (const s of [screen({ tty: false }), screen({ verbosity: 'quiet' })]) {
      const { log, lines } = memoryLog();
      const steps = new Steps(log, s.term, { prefix: 'backup', level: 'debug' });
      steps.step('a');
      steps.step('b');
      steps.done();
      s.term.finish('live now: x', 'drop y');
      s.term.progress('dump', { total: 10 }).set(5);
      expect(s.raw()).toBe('');
      expect(lines.map((l) => [l.level, l.msg])).toEqual([
        [20, 'backup: a'],
        [20, 'backup: b'],
      ]);
    }
  });

  it('a nested runbook (a safety backup inside a restore) shows its bar, not its marks', () => {
    const s = screen();
    const inner = new Steps(memoryLog().log, s.term.nested(), { prefix: 'backup' });
    inner.step('stream');
    const bar = s.term.nested().progress('dump app', { total: 100 });
    bar.set(50);
    expect(s.text().join('\n')).toContain('dump app');
    bar.stop();
    inner.done();
    expect(s.text()).toEqual([]);
  });
});

describe('progress bar', () => {
  it('bytes, rate and ETA against an estimate; said so when past it; removed when stopped', () => {
    const s = screen();
    s.term.line('before');
    const bar = s.term.progress('dump app', { total: 100 * 1048576, basis: "previous backup's size" });
    s.tick(2_000);
    bar.set(25 * 1048576);
    expect(s.text()).toEqual(['before', '  dump app  [██████░░░░░░░░░░░░░░░░░░]  25%  25.0 MiB of ~100.0 MiB  12.5 MiB/s  ETA 6.0 s']);
    s.term.line('a warning'); // a line goes above the bar, which is drawn again under it
    expect(s.text()).toEqual(['before', 'a warning', expect.stringContaining('dump app')]);
    s.tick(10_000);
    bar.set(120 * 1048576);
    expect(s.text()[2]).toContain("120.0 MiB of ~100.0 MiB  10.0 MiB/s  past the previous backup's size");
    bar.stop();
    bar.stop();
    expect(s.text()).toEqual(['before', 'a warning']);
  });

  it('honest without an earlier size: bytes and rate, no ETA', () => {
    const s = screen();
    const bar = s.term.progress('dump app', { total: null, basis: "previous backup's size" });
    s.tick(1_000);
    bar.set(3 * 1048576);
    expect(s.text()).toEqual(['  dump app  3.0 MiB  3.0 MiB/s  1.0 s  (no earlier size to estimate from: no ETA)']);
  });

  it('a timer against an expected duration', () => {
    const s = screen();
    const t = s.term.timer('pg_restore into x', { expectedMs: 4_000, basis: 'last verification' });
    s.tick(1_000);
    s.term.update();
    expect(s.text()).toEqual(['  pg_restore into x  [██████░░░░░░░░░░░░░░░░░░]  25%  1.0 s of ~4.0 s (last verification)  ETA 3.0 s']);
    t.stop();
    expect(s.text()).toEqual([]);
  });

  it('a live line never wraps (the redraw counts lines)', () => {
    const s = screen({ columns: 40 });
    s.term.progress('a very long label that goes on and on and on', { total: 10 }).set(1);
    expect(s.text()[0].length).toBeLessThanOrEqual(39);
  });
});

describe('colour', () => {
  it('on a TTY; never with NO_COLOR; never off a TTY', () => {
    expect(screen().term.paint('32', 'x')).toBe('\x1b[32mx\x1b[0m');
    expect(screen({ env: { NO_COLOR: '1' } }).term.paint('32', 'x')).toBe('x');
    expect(screen({ tty: false }).term.paint('32', 'x')).toBe('x');
  });
});

describe('the log on a terminal', () => {
  it('normal: warnings and errors one line each, a rollback step ↩, info and debug left to the steps', () => {
    const s = screen();
    const log = createLogger({ terminal: s.term, level: 'debug' }).child({ project: 'acme', environment: 'production' });
    log.debug('detail');
    log.info({ step: 'x' }, 'restore: x');
    log.info({ id: 'db_1' }, 'backup complete');
    log.warn('no metadata');
    log.info({ step: 'drop scratch database s' }, 'rolling back');
    log.error({ err: 'boom' }, 'restore failed; rolling back');
    expect(s.text()).toEqual(['! acme/production: no metadata', '  ↩ drop scratch database s', '✗ acme/production: restore failed; rolling back: boom']);
  });

  it('quiet: errors only', () => {
    const s = screen({ verbosity: 'quiet' });
    const log = createLogger({ terminal: s.term });
    log.warn('w');
    log.error('e');
    expect(s.text()).toEqual(['✗ e']);
  });

  it('off a TTY: the JSON lines of before, whatever the terminal', () => {
    let out = '';
    const dest = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
    const log = createLogger({ terminal: Terminal.off(), destination: dest });
    log.info({ step: 'x' }, 'restore: x');
    const rec = JSON.parse(out);
    expect(Object.keys(rec)).toEqual(['level', 'time', 'step', 'msg']);
    expect(rec).toMatchObject({ level: 30, step: 'x', msg: 'restore: x' });
  });
});

describe('a fleet command’s live table (lib/core/board.ts)', () => {
  it('a row per target, waiting → running → its mark, duration and note; removed at the end', async () => {
    const s = screen();
    const b = new Board(s.term, ['acme/production', 'globex/production'], 'scheduled backup');
    expect(s.text()).toEqual(['scheduled backup: 0 of 2 done', '  · acme/production    waiting', '  · globex/production  waiting']);
    b.start('acme/production', 'backing up');
    s.tick(1_200);
    s.term.update();
    expect(s.text()[1]).toMatch(/^ {2}⠋ acme\/production {4}1\.2 s {2}backing up$/);
    b.finish('acme/production', 'done', 'db_20260101_000000Z  10.9 MiB');
    await b.track('globex/production', async () => 1, () => ['failed', 'pg_dump: connection refused']);
    b.finish('nobody/x', 'done'); // not a row: ignored
    expect(s.text()).toEqual(['scheduled backup: 2 of 2 done', '  ✓ acme/production    1.2 s  db_20260101_000000Z  10.9 MiB', '  ✗ globex/production  0.0 s  pg_dump: connection refused']);
    b.close();
    b.close();
    expect(s.text()).toEqual([]);
    expect(clearsScreen(s.raw())).toBe(false);
  });

  it('off a TTY: nothing', async () => {
    const s = screen({ tty: false });
    const b = new Board(s.term, ['a/b'], 'status');
    await b.track('a/b', async () => 1, () => ['done']);
    b.close();
    expect(s.raw()).toBe('');
  });
});

describe('stdout on the same screen', () => {
  it('a stdout line while live lines are drawn goes above them, never over them', () => {
    const s = screen();
    const stdout = { isTTY: true, write: (x: string) => (s.term as unknown as { out: { write(x: string): void } }).out.write(x) };
    const b = new Board(s.term, ['acme/production', 'globex/production'], 'verification restores');
    b.start('acme/production');
    s.term.printOut('passed  acme/production db_1: 6 tables, 3601 rows (1.2 s)', stdout);
    b.finish('acme/production', 'done', '1 passed');
    s.term.printOut('passed  globex/production db_2: 1 tables, 10 rows (0.4 s)', stdout);
    expect(s.text()).toEqual([
      'passed  acme/production db_1: 6 tables, 3601 rows (1.2 s)',
      'passed  globex/production db_2: 1 tables, 10 rows (0.4 s)',
      'verification restores: 1 of 2 done',
      '  ✓ acme/production    0.0 s  1 passed',
      '  · globex/production  waiting',
    ]);
    b.close();
    s.term.printOut('2 verified: 2 passed, 0 failed', stdout);
    expect(s.text().at(-1)).toBe('2 verified: 2 passed, 0 failed');
    expect(s.text()).toHaveLength(3);
  });

  it('stdout not a terminal: written as it is', () => {
    const s = screen();
    let piped = '';
    s.term.progress('dump', { total: 10 });
    s.term.printOut('/backups/x.dump.zst', { isTTY: false, write: (x: string) => (piped += x) });
    expect(piped).toBe('/backups/x.dump.zst\n');
  });
});

describe('a timer without an estimate', () => {
  it('says so: elapsed time, no bar, no ETA, and why', () => {
    const s = screen();
    const t = s.term.timer('pg_restore into x', { expectedMs: null, basis: 'last verification', missing: 'this backup was never verified' });
    s.tick(2_500);
    s.term.update();
    expect(s.text()).toEqual(['  pg_restore into x  2.5 s  (no ETA: this backup was never verified)']);
    t.stop();
  });
});
