/**
 * lib/process/runner.ts, the one door to processes, with real processes: failures as
 * CommandError (exit code, signal, redacted command and stderr tail), arguments never seen by a
 * shell, env and cwd, kernel pipes between spawned processes, EPIPE absorbed, kill, interrupts;
 * and the zx bend: a streamed process's stdout is never kept in memory.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Writable } from 'node:stream';
import { CommandError, InterruptedError } from '../../lib/core/errors.js';
import { displayCommand, Runner } from '../../lib/process/runner.js';

const runner = new Runner();
/** The stderr tail kept for errors: 4 KiB, and the mark of a cut. */
const TAIL_MAX = 4096 + 8;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a promise rejected with (fails the test when it resolved). */
async function rejection(p: Promise<unknown>): Promise<CommandError> {
  const r = await p.then(
    (v) => ({ ok: true as const, v }),
    (e) => ({ ok: false as const, e }),
  );
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.v)}`);
  return r.e as CommandError;
}

describe('run', () => {
  it('returns stdout, stderr and exit code 0', async () => {
    const r = await runner.run(['sh', '-c', 'echo out; echo err >&2']);
    expect(r).toMatchObject({ stdout: 'out\n', stderr: 'err\n', code: 0 });
    expect(r.durationMs).toBeGreaterThan(0);
  });

  it('passes each argument as it is: nothing reaches a shell as code', async () => {
    const hostile = `$(touch ${dir}/pwned); \`id\` | & > "q'uote" * \n`;
    const r = await runner.run(['printf', '%s', hostile]);
    expect(r.stdout).toBe(hostile);
    expect(() => readFileSync(path.join(dir, 'pwned'))).toThrow(/ENOENT/);
  });

  it('a non-zero exit is a CommandError: exit code, what and whom, redacted command and stderr tail', async () => {
    const secret = 'Sup3r-s3cret-pw';
    const e = await rejection(
      runner.run(['sh', '-c', 'echo "password was $0" >&2; echo "postgresql://u:other-pw@h/db" >&2; exit 3', secret], { secrets: [secret], target: { project: 'acme', environment: 'production' }, what: 'pg_dump' }),
    );
    expect(e).toBeInstanceOf(CommandError);
    expect(e.code).toBe(3);
    expect(e.signal).toBeNull();
    expect(e.stderrTail).toBe('password was ***\npostgresql://u:***@h/db\n');
    expect(e.command).toContain('***');
    expect(e.message).toMatch(/^acme\/production: pg_dump failed \(exit code 3\)/);
    for (const text of [e.message, e.command, e.stderrTail, String(e.stack)]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain('other-pw');
    }
    expect(e.target).toEqual({ project: 'acme', environment: 'production' });
  });

  it('keeps only the tail of a long stderr', async () => {
    const e = await rejection(runner.run(['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; echo LAST >&2; exit 1']));
    expect(e.stderrTail.length).toBeLessThanOrEqual(TAIL_MAX);
    expect(e.stderrTail).toMatch(/line 1999 of noise\nLAST\n$/);
    expect(e.stderrTail).not.toContain('line 0 of');
  });

  it('a process killed by a signal: signal set, no exit code', async () => {
    const e = await rejection(runner.run(['sh', '-c', 'kill -KILL $$']));
    expect(e).toBeInstanceOf(CommandError);
    expect(e.signal).toBe('SIGKILL');
    expect(e.code).toBeNull();
    expect(e.message).toMatch(/killed by SIGKILL/);
  });

  it('a program that does not exist fails like any other (exit 127, what the shell said)', async () => {
    const e = await rejection(runner.run(['pgfleet-no-such-program-x1']));
    expect(e).toBeInstanceOf(CommandError);
    expect(e.code).toBe(127);
    expect(e.stderrTail).toMatch(/pgfleet-no-such-program-x1: command not found/);
  });

  it('adds env (undefined removes a variable) and runs in cwd', async () => {
    process.env.PGFLEET_TEST_INHERITED = 'inherited';
    process.env.PGFLEET_TEST_REMOVED = 'should be gone';
    try {
      const r = await runner.run(['sh', '-c', 'echo "$A|$PGFLEET_TEST_INHERITED|${PGFLEET_TEST_REMOVED-unset}"; pwd'], { env: { A: 'a1', PGFLEET_TEST_REMOVED: undefined }, cwd: dir });
      expect(r.stdout).toBe(`a1|inherited|unset\n${realpathSync(dir)}\n`);
    } finally {
      delete process.env.PGFLEET_TEST_INHERITED;
      delete process.env.PGFLEET_TEST_REMOVED;
    }
  });

  it('feeds input (a string, a Buffer)', async () => {
    expect((await runner.run(['cat'], { input: 'hello\n' })).stdout).toBe('hello\n');
    expect((await runner.run(['wc', '-c'], { input: Buffer.alloc(100_000) })).stdout.trim()).toBe('100000');
  });

  it('an aborted signal stops the process and rejects with InterruptedError', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = runner.run(['sleep', '30'], { signal: ac.signal });
    setTimeout(() => ac.abort('SIGTERM'), 100);
    const e = await rejection(p);
    expect(e).toBeInstanceOf(InterruptedError);
    expect(e.message).toMatch(/SIGTERM/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses an empty command', async () => {
    await expect(runner.run([])).rejects.toThrow(/empty command/);
  });
});

describe('spawn', () => {
  it('streams stdout; done resolves on exit 0', async () => {
    const p = runner.spawn(['sh', '-c', 'printf one; printf two']);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    expect(p.pid).toBeGreaterThan(0);
    expect((await p.done).code).toBe(0);
    expect(out).toBe('onetwo');
  });

  it('a failure rejects done with a CommandError and a bounded, redacted stderr tail', async () => {
    const p = runner.spawn(['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x >&2; echo " END pw-Secret9" >&2; exit 2'], { secrets: ['pw-Secret9'], what: 'zstd' });
    p.stdout.resume();
    const e = await rejection(p.done);
    expect(e.code).toBe(2);
    expect(e.stderrTail.length).toBeLessThanOrEqual(TAIL_MAX);
    expect(e.stderrTail).toMatch(/x END \*\*\*\n$/);
    expect(p.stderrTail()).toBe(e.stderrTail);
    expect(e.message).toMatch(/zstd failed \(exit code 2\)/);
  });

  it('stdoutTo connects one process to another through a kernel pipe: the bytes never pass through Node', async () => {
    const reader = runner.spawn(['wc', '-c']);
    const writer = runner.spawn(['head', '-c', '10485760', '/dev/zero'], { stdoutTo: reader });
    let seenByNode = 0;
    (writer.stdout as typeof writer.stdout | null)?.on('data', (d: Buffer) => (seenByNode += d.length));
    let out = '';
    reader.stdout.on('data', (d) => (out += d));
    await writer.done;
    await reader.done; // EOF reached the reader when the writer exited
    expect(out.trim()).toBe('10485760');
    expect(seenByNode).toBe(0);
    expect(() => reader.takeStdinPipe()).toThrow(/not available/);
  });

  it('stdoutTo a file descriptor writes straight to that file', async () => {
    const file = path.join(dir, 'out.txt');
    const fd = openSync(file, 'w', 0o600);
    const p = runner.spawn(['printf', 'to the file'], { stdoutTo: fd });
    closeSync(fd);
    await p.done;
    expect(readFileSync(file, 'utf8')).toBe('to the file');
  });

  it('a child that exits before reading its input: the EPIPE is absorbed, its exit status is the result', async () => {
    const uncaught: unknown[] = [];
    const record = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', record);
    try {
      const p = runner.spawn(['head', '-c', '1']);
      p.stdout.resume();
      for (let i = 0; i < 256; i++) p.stdin.write(Buffer.alloc(65536));
      expect((await p.done).code).toBe(0);
      // The same through run's input, and through a kernel pipe whose reader stops early.
      expect((await runner.run(['true'], { input: Buffer.alloc(16 << 20) })).code).toBe(0);
      const early = runner.spawn(['head', '-c', '10']);
      const writer = runner.spawn(['head', '-c', '1073741824', '/dev/zero'], { stdoutTo: early });
      early.stdout.resume();
      expect((await early.done).code).toBe(0);
      const w = await rejection(writer.done); // the writer's own failure, reported as such
      expect(w).toBeInstanceOf(CommandError);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('uncaughtException', record);
    }
    expect(uncaught).toEqual([]);
  });

  it('kill stops the process (SIGTERM by default, or the signal given) and done rejects naming it', async () => {
    const p = runner.spawn(['sleep', '30']);
    p.stdout.resume();
    setTimeout(() => p.kill(), 50);
    const e = await rejection(p.done);
    expect(e.signal).toBe('SIGTERM');

    const q = runner.spawn(['sleep', '30']);
    q.stdout.resume();
    setTimeout(() => q.kill('SIGKILL'), 50);
    expect((await rejection(q.done)).signal).toBe('SIGKILL');
    q.kill(); // already gone: a no-op
  });

  it('kill settles done even when stdout is stuck behind a consumer that stopped reading', async () => {
    const p = runner.spawn(['head', '-c', '1073741824', '/dev/zero']);
    const stuck = new Writable({ highWaterMark: 1024, write: () => undefined }); // never calls back
    p.stdout.pipe(stuck);
    await new Promise((r) => setTimeout(r, 200));
    p.kill();
    const settled = await Promise.race([p.done.then(() => 'resolved', () => 'rejected'), new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(settled).toBe('rejected');
  });
});

describe('the zx bend (runner.ts swaps Sink/Tail into zx output store)', () => {
  /** A full GC, then heap + external memory (Buffers): what is still kept. */
  function kept(): number {
    v8.setFlagsFromString('--expose_gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  }

  it('streaming 1 GiB through spawn() keeps none of it: memory grows by less than 64 MB', async () => {
    // zx stores every chunk of a process's output for its ProcessOutput; runner.ts replaces that
    // store for streamed processes. If a zx upgrade stops using the replacement, this keeps 1 GiB.
    const before = kept();
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
    const p = runner.spawn(['head', '-c', '1073741824', '/dev/zero']);
    let n = 0;
    try {
      for await (const chunk of p.stdout) n += (chunk as Buffer).length;
      await p.done;
    } finally {
      clearInterval(sample);
    }
    const grown = kept() - before;
    expect(n).toBe(1073741824);
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    // Nor held for a while and dropped: the process at most this much bigger at any moment.
    expect(peakRss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    expect(p.stderrTail()).toBe(''); // p stays reachable until here: what it holds was measured
  });

  it('a streamed process writing 256 MiB to stderr keeps only its tail', async () => {
    const before = kept();
    const p = runner.spawn(['sh', '-c', 'head -c 268435456 /dev/zero | tr "\\0" e >&2; echo " the end" >&2']);
    p.stdout.resume();
    p.stderr.resume();
    await p.done;
    expect(kept() - before).toBeLessThan(64 * 1024 * 1024);
    expect(p.stderrTail()).toMatch(/eeee the end\n$/);
    expect(p.stderrTail().length).toBeLessThanOrEqual(TAIL_MAX);
  });
});

describe('displayCommand', () => {
  it('quotes what a shell would read differently, and redacts', () => {
    expect(displayCommand(['pg_dump', '-Fc', '-d', 'acme db', 'a"b'])).toBe('pg_dump -Fc -d "acme db" "a\\"b"');
    expect(displayCommand(['psql', 'postgresql://u:pw123@h/d', '--x=Secret-1'], ['Secret-1'])).toBe('psql postgresql://u:***@h/d --x=***');
  });
});
