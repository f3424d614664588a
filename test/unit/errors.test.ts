/**
 * lib/core/errors.ts: the one table of kinds and exit codes is the README's exit-code table and
 * the help text's; EXIT is the table's; a bug is an InternalError (found even when wrapped);
 * CommandError carries program, role and via as the runner sets them from RunOptions.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../lib/core/package.js';
import { bugOf, CommandError, EXIT, exitCodeHelp, exitCodeOf, InternalError, KINDS, kindRows, LockBusyError, PgfleetError, UsageError, VerificationError } from '../../lib/core/errors.js';
import { Runner } from '../../lib/process/runner.js';

/** The rows of the first table under README's "## Exit codes" heading, as [code, kind, meaning]. */
function readmeExitTable(): string[][] {
  const lines = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8').split('\n');
  const start = lines.indexOf('## Exit codes');
  expect(start, 'README.md has a "## Exit codes" section').toBeGreaterThan(-1);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const section = lines.slice(start + 1, end < 0 ? undefined : end);
  const first = section.findIndex((l) => l.startsWith('|'));
  const table = section.slice(first, section.findIndex((l, i) => i > first && !l.startsWith('|')));
  const cells = (l: string) => l.replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  expect(cells(table[0])).toEqual(['code', 'kind', 'meaning']);
  expect(table[1]).toMatch(/^\|( --- \|)+$/);
  return table.slice(2).map(cells);
}

describe('the table of kinds and exit codes', () => {
  it("is README.md's exit-code table, row for row", () => {
    expect(readmeExitTable()).toEqual(kindRows().map(([code, kind, meaning]) => [String(code), kind, meaning]));
  });

  it('is what the help text prints, one line per kind', () => {
    const help = exitCodeHelp();
    expect(help[0]).toBe('exit codes:');
    expect(help.slice(1)).toEqual(kindRows().map(([code, , meaning]) => expect.stringMatching(new RegExp(`^  ${code} +${meaning.replace(/[()]/g, '\\$&')}$`))));
  });

  it('gives EXIT its codes: 0 ok, 1 failed and internal, 2 usage, 3 locked, 4 verify-failed, 130 interrupted', () => {
    expect(EXIT).toEqual({ OK: 0, FAILED: 1, INTERNAL: 1, USAGE: 2, LOCKED: 3, VERIFY_FAILED: 4, INTERRUPTED: 130 });
    expect(KINDS.internal.meaning).toBe('internal error (a bug in pgfleet; please report it)');
  });

  it('names the kind of each error class', () => {
    expect(new PgfleetError('x').kind).toBe('failed');
    expect(new UsageError('x').kind).toBe('usage');
    expect(new LockBusyError({ project: 'a', environment: 'b' }, 'pid 1').kind).toBe('locked');
    expect(new VerificationError('x').kind).toBe('verify-failed');
    expect(new InternalError('x').kind).toBe('internal');
  });
});

describe('InternalError: a bug', () => {
  it('exits 1, says "internal:", keeps its cause and target', () => {
    const cause = new Error('why');
    const e = new InternalError('metadata does not match its schema', { cause, target: { project: 'acme', environment: 'production' } });
    expect(e).toBeInstanceOf(PgfleetError);
    expect(e.message).toBe('internal: metadata does not match its schema');
    expect(exitCodeOf(e)).toBe(EXIT.INTERNAL);
    expect(e.cause).toBe(cause);
    expect(e.target).toEqual({ project: 'acme', environment: 'production' });
  });

  it('bugOf finds it, also wrapped by an expected error; anything not ours is a bug; an expected failure is none', () => {
    const bug = new InternalError('x');
    expect(bugOf(bug)).toBe(bug);
    expect(bugOf(new PgfleetError('rollback incomplete', EXIT.FAILED, {}, { cause: bug }))).toBe(bug);
    const typeError = new TypeError('undefined is not a function');
    expect(bugOf(typeError)).toBe(typeError);
    expect(exitCodeOf(typeError)).toBe(EXIT.INTERNAL);
    expect(bugOf(new PgfleetError('disk full', EXIT.FAILED, {}, { cause: Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }) }))).toBeNull();
    expect(bugOf(new UsageError('unknown command'))).toBeNull();
  });

  it('the runner throws it for a call that breaks its contract', async () => {
    await expect(new Runner().run([])).rejects.toBeInstanceOf(InternalError);
  });
});

describe('CommandError: program, role and via, as the runner sets them', () => {
  const runner = new Runner();
  const failure = (p: Promise<unknown>) => p.then(() => expect.unreachable('it should fail'), (e: unknown) => e as CommandError);

  it('program defaults to the executable run (its base name); role and via are what RunOptions said', async () => {
    const e = await failure(runner.run(['/bin/sh', '-c', 'echo nope >&2; exit 2'], { role: 'cleanup' }));
    expect(e).toBeInstanceOf(CommandError);
    expect(e).toMatchObject({ program: 'sh', role: 'cleanup', via: undefined, code: 2, stderrTail: 'nope\n' });
    expect(e.message).toMatch(/^sh failed \(exit code 2\)/);
  });

  it('a wrapper script names the program it runs; spawn carries them too', async () => {
    const e = await failure(runner.run(['sh', '-c', 'exit 1'], { program: 'pg_restore', role: 'restore', via: 'podman', what: 'pg_restore' }));
    expect(e).toMatchObject({ program: 'pg_restore', role: 'restore', via: 'podman' });
    const s = runner.spawn(['sh', '-c', 'exit 5'], { program: 'zstd', role: 'decompress' });
    expect(await failure(s.done)).toMatchObject({ program: 'zstd', role: 'decompress', code: 5 });
  });

  it('a program that cannot start is the same typed failure (exit 127), program still named', async () => {
    expect(await failure(runner.run(['pgfleet-no-such-program-e5'], { role: 'hook' }))).toMatchObject({ program: 'pgfleet-no-such-program-e5', role: 'hook', code: 127 });
  });
});
