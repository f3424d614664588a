// lib/core/undo.ts: rollback steps of multi-step operations, and the error that says what is left.
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Undo, withLeftovers } from '../../lib/core/undo.js';
import { EXIT, LockBusyError, PgfleetError, VerificationError } from '../../lib/core/errors.js';

function logged() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('Undo', () => {
  it('runs the registered steps newest first', async () => {
    const ran: string[] = [];
    const undo = new Undo(logged().log);
    for (const s of ['first', 'second', 'third']) undo.push(s, async () => void ran.push(s));
    expect(await undo.run()).toEqual([]);
    expect(ran).toEqual(['third', 'second', 'first']);
  });

  it('runs once: a second run (the error path, then the exit hook) does nothing', async () => {
    let n = 0;
    const undo = new Undo(logged().log);
    undo.push('count', async () => void n++);
    await undo.run();
    expect(await undo.run()).toEqual([]);
    expect(n).toBe(1);
  });

  it('two runs at once still run each step once', async () => {
    let n = 0;
    const undo = new Undo(logged().log);
    undo.push('slow', async () => {
      n++;
      await new Promise((r) => setTimeout(r, 20));
    });
    await Promise.all([undo.run(), undo.run()]);
    expect(n).toBe(1);
  });

  it('keeps going after a failing step, and returns what could not be undone, with the reason', async () => {
    const ran: string[] = [];
    const { log, lines } = logged();
    const undo = new Undo(log);
    undo.push('drop scratch database', async () => void ran.push('drop'));
    undo.push('start app containers', async () => {
      throw new Error('container app-1 is gone');
    });
    undo.push('remove temp file', async () => {
      ran.push('rm');
      throw 'not an Error';
    });
    const left = await undo.run('cleaning up');
    expect(ran).toEqual(['rm', 'drop']);
    expect(left).toEqual(['remove temp file: not an Error', 'start app containers: container app-1 is gone']);
    expect(lines.filter((l) => l.msg === 'cleaning up').map((l) => l.step)).toEqual(['remove temp file', 'start app containers', 'drop scratch database']);
    expect(lines.filter((l) => l.msg === 'rollback step failed').map((l) => l.step)).toEqual(['remove temp file', 'start app containers']);
  });

  it('a forgotten step (its effect is now wanted) and a cleared list do not run', async () => {
    const ran: string[] = [];
    const undo = new Undo(logged().log);
    undo.push('a', async () => void ran.push('a'));
    const forget = undo.push('b', async () => void ran.push('b'));
    undo.push('c', async () => void ran.push('c'));
    forget();
    await undo.run();
    expect(ran).toEqual(['c', 'a']);

    const cleared = new Undo(logged().log);
    cleared.push('x', async () => void ran.push('x'));
    cleared.clear();
    expect(await cleared.run()).toEqual([]);
    expect(ran).toEqual(['c', 'a']);
  });
});

describe('withLeftovers', () => {
  const ref = { project: 'acme', environment: 'production' };

  it('is the error itself when everything was undone', () => {
    const e = new VerificationError('row counts differ', ref);
    expect(withLeftovers(e, [], ref)).toBe(e);
  });

  it('adds what is left to fix by hand, keeping the exit code, the target and the cause', () => {
    const e = new LockBusyError(ref, 'pid 7');
    const out = withLeftovers(e, ['drop scratch database: permission denied', 'start app: gone'], ref) as PgfleetError;
    expect(out).toBeInstanceOf(PgfleetError);
    expect(out.message).toBe(`${e.message}\nrollback incomplete, fix by hand: drop scratch database: permission denied; start app: gone`);
    expect(out.exitCode).toBe(EXIT.LOCKED);
    expect(out.target).toEqual(ref);
    expect(out.cause).toBe(e);
  });

  it('an error that is not ours keeps exit 1', () => {
    const out = withLeftovers(new TypeError('boom'), ['x: y'], ref) as PgfleetError;
    expect(out.exitCode).toBe(EXIT.FAILED);
    expect(out.message).toMatch(/^boom\nrollback incomplete/);
  });
});
