// What a person sees (ARCHITECTURE.md "What a person sees"), on the built CLI against real
// PostgreSQL in a container: in a real pseudo-terminal (tmux) a backup's bar with its estimate, a
// restore in about ten lines (a mark and a duration per step, the last line saying what is live now
// and what to drop), -q, -v, NO_COLOR, and never the password; off a TTY, the JSON log lines of
// before, record for record (json-lines.golden.json, recorded from the CLI before the terminal layer).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestFleet } from '../helpers.js';
import { fillBigTable, jsonLines, runCli } from './support.js';
import { Tty } from './tty.js';

const PASSWORD = 'tty-secret-pw-7731';
const GOLDEN = JSON.parse(readFileSync(path.join(import.meta.dirname, 'json-lines.golden.json'), 'utf8')) as Record<string, [number, string, string[]][]>;

/** A record as the golden file has it: level, message (ids, stamps and temp dirs generalised), sorted keys. */
function shape(r: Record<string, unknown>): [number, string, string[]] {
  const msg = String(r.msg ?? '')
    .replace(/db_\d{8}_\d{6}Z(_\d+)?/g, '<id>')
    .replace(/\d{8}_\d{6}(_[0-9a-f]+)?/g, '<stamp>')
    .replace(/\/tmp\/pgfleet-restore-[0-9a-f]+/g, '<dir>');
  return [r.level as number, msg, Object.keys(r).sort()];
}

describe('what a person sees (real PostgreSQL, a real pseudo-terminal)', () => {
  let fleet: TestFleet;
  let tty: Tty;

  beforeAll(async () => {
    fleet = await TestFleet.create([{ project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: PASSWORD, database: { backup: { compression_level: 15 } } }]);
    tty = new Tty(fleet);
    await fleet.sql('acme', 'postgres', 'ALTER ROLE acme CREATEDB');
    await fillBigTable(fleet, 'acme', 'acme_production', 150_000);
  });
  afterAll(() => {
    tty?.close();
    fleet?.cleanup();
  });

  it('off a TTY: exactly the JSON lines of before, one per event, the same fields', async () => {
    for (const [command, expected] of Object.entries(GOLDEN)) {
      const r = await runCli(fleet, command.split(' '));
      expect(r.code, `${command}: ${r.stderr}`).toBe(0);
      expect(jsonLines(r.stderr).map(shape), command).toEqual(expected);
      expect(r.stderr).not.toContain(PASSWORD);
    }
  });

  it('backup on a terminal: the steps, a bar with bytes, rate and ETA from the previous backup, the path last', async () => {
    const bars: string[] = [];
    const r = await tty.run(['backup', 'acme', 'production'], { onScreen: (s) => bars.push(...s.split('\n').filter((l) => l.includes('dump acme_production'))) });
    expect(r.code, r.screen).toBe(0);
    // Seen while the dump ran: the bar, the estimate from the previous backup's size, its rate and ETA.
    expect(bars.join('\n')).toMatch(/dump acme_production {2}\[[█░]{24}\] +\d+% {2}[\d.]+ [KM]iB of ~[\d.]+ [KM]iB {2}[\d.]+ [KM]iB\/s {2}(ETA|past)/);
    const lines = r.screen.split('\n');
    expect(lines.slice(0, -1).every((l) => /^✓ .+ {2}\d+(\.\d)? s$/.test(l)), r.screen).toBe(true);
    expect(lines.at(-1)).toMatch(/\/acme\/production\/database\/db_\d{8}_\d{6}Z\.dump\.zst$/);
    expect(r.screen).not.toContain('{"level"');
  });

  it('restore on a terminal: about ten lines after the plan, each step with its mark and duration, what is live now and what to drop', async () => {
    const bars = new Set<string>();
    const r = await tty.run(['restore', 'acme', 'production', '--latest', '--yes'], { onScreen: (s) => s.split('\n').forEach((l) => /^ {2}(read|pg_restore into) /.test(l) && bars.add(l)) });
    expect(r.code, r.screen).toBe(0);
    // While it ran: the dump's bytes read of its size, or pg_restore's time against the last verification's.
    expect([...bars].join('\n')).toMatch(/^ {2}(read db_\d{8}_\d{6}Z\.dump\.zst {2}\[[█░]{24}\] +\d+% {2}[\d.]+ [KM]iB of [\d.]+ [KM]iB|pg_restore into acme_production__pgfleet_scratch_\S+ {2}[\d.]+ s {2}\(no ETA: this backup was never verified\))/m);
    const after = r.screen.split('\n').slice(r.screen.split('\n').findIndex((l) => l.startsWith('  6. start')) + 1);
    expect(after.length, r.screen).toBeLessThanOrEqual(12);
    const marks = after.filter((l) => l.startsWith('✓ '));
    expect(marks.map((l) => l.replace(/ {2}\d+(\.\d)? s$/, '').replace(/\d{8}_\d{6}(_[0-9a-f]+)?/g, '<stamp>'))).toEqual([
      '✓ check the dump against its metadata',
      '✓ safety backup of the live database',
      '✓ stop app containers',
      '✓ restore into scratch database acme_production__pgfleet_scratch_<stamp>',
      '✓ swap: acme_production → acme_production__before_<stamp>, acme_production__pgfleet_scratch_<stamp> → acme_production',
      '✓ check the live database (verify_on_restore)',
      '✓ start app containers',
    ]);
    expect(marks.every((l) => / {2}\d+(\.\d)? s$/.test(l))).toBe(true);
    const [live, todo] = after.slice(-2);
    expect(live).toMatch(/^→ live now: acme_production of acme\/production, restored from db_\d{8}_\d{6}Z/);
    expect(todo).toMatch(/^ {2}left to do: drop the kept acme_production__before_\d{8}_\d{6} when satisfied: .+ exec -it \S+ psql -U acme -d postgres -c 'DROP DATABASE "acme_production__before_\d{8}_\d{6}"'$/);
    expect(r.screen).not.toContain(PASSWORD);
    expect(r.screen).not.toContain('{"level"');
    // Colour on a terminal.
    expect(r.raw).toMatch(/\x1b\[3\dm✓/);
  });

  it('NO_COLOR: the same lines without colour', async () => {
    const r = await tty.run(['backup', 'acme', 'production'], { env: { NO_COLOR: '1' } });
    expect(r.code, r.screen).toBe(0);
    expect(r.screen).toMatch(/^✓ /m);
    expect(r.raw).not.toMatch(/\x1b\[[0-9;]*3\dm/);
  });

  it('scheduled-backup on a terminal: a live row per target while it runs, then the summary as today', async () => {
    const seen: string[] = [];
    const r = await tty.run(['scheduled-backup'], { onScreen: (s) => seen.push(s) });
    expect(r.code, r.screen).toBe(0);
    expect(seen.join('\n')).toMatch(/scheduled backup: 0 of 1 done\n {2}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] acme\/production {2}[\d.]+ s {2}backing up/);
    expect(r.screen).not.toContain('scheduled backup: ');
    expect(r.screen).toMatch(/^TARGET +RESULT +SIZE +DURATION +BACKUP \/ ERROR\nacme\/production +OK /m);
    expect(r.screen.split('\n').at(-1)).toBe('1 target(s): 1 ok');
  });

  it('verify-backups and prune on a terminal: the live table while they run, their stdout lines above it, then only the lines of today', async () => {
    const seen: string[] = [];
    const v = await tty.run(['verify-backups', 'acme', 'production'], { onScreen: (s) => seen.push(s) });
    expect(v.code, v.screen).toBe(0);
    expect(seen.join('\n')).toMatch(/verification restores: 0 of 1 done\n {2}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] acme\/production {2}[\d.]+ s {2}restoring db_/);
    expect(v.screen.split('\n')).toEqual([expect.stringMatching(/^passed {2}acme\/production db_\d{8}_\d{6}Z: 1 tables, 150000 rows \([\d.]+ s\)$/), '1 verified: 1 passed, 0 failed']);
    const p = await tty.run(['prune', '--dry-run']);
    expect(p.code, p.screen).toBe(0);
    expect(p.screen).toMatch(/^acme\/production: would remove \d+, would keep \d+ \(dry run\)$/m);
    expect(p.screen).not.toContain('retention (dry run):');
  });

  it('-q: only the machine-readable last line (and errors); -v: the detailed records', async () => {
    const q = await tty.run(['backup', 'acme', 'production', '-q']);
    expect(q.code, q.screen).toBe(0);
    expect(q.screen).toMatch(/^\/\S+\/acme\/production\/database\/db_\d{8}_\d{6}Z\.dump\.zst$/);
    const bad = await tty.run(['restore', 'acme', 'production', 'db_20000101_000000Z', '--yes', '-q']);
    expect(bad.code).not.toBe(0);
    expect(bad.screen).toMatch(/^pgfleet: acme\/production: no complete backup db_20000101_000000Z/);
    const v = await tty.run(['backup', 'acme', 'production', '-v']);
    expect(v.code, v.screen).toBe(0);
    expect(v.screen).toMatch(/INFO.*backup complete/);
    expect(v.screen).toMatch(/size_bytes: \d+/);
    for (const s of [q.screen, bad.screen, v.screen]) expect(s).not.toContain(PASSWORD);
  });
});
