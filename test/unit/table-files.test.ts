/**
 * A table restore's small files (restore lists, SQL) reach the container on the stdin of its one
 * script, ahead of the archive's head (lib/restore/tables.ts bundled, READ_FILES_SH): each file
 * comes out byte for byte, and not one byte of what follows is taken. Run with the machine's `sh`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundled, READ_FILES_SH } from '../../lib/restore/tables.js';

let dir: string;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

/** READ_FILES_SH, then the rest of stdin into "$dir/rest". */
const run = (input: Buffer) => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'table-files-'));
  const r = spawnSync('sh', ['-c', `set -eu\ndir=$1\n${READ_FILES_SH}\ncat > "$dir/rest"`, 'test', dir], { input });
  return { code: r.status, stderr: r.stderr.toString(), file: (name: string) => readFileSync(path.join(dir, name)), names: () => readdirSync(dir).sort() };
};

describe('the files ahead of the archive head on the script\'s stdin', () => {
  it('writes each file exactly and leaves the binary head after them untouched', () => {
    const list = '12; 0 0 TABLE public orders shop\n13; 0 0 TABLE DATA public orders shop\n';
    // What SQL may hold: leading and trailing blanks, backslashes, a lone `.`, an empty line, a quote, a line like a header.
    const sql = '  CREATE SCHEMA "a\\b";  \n.\n\nALTER TABLE "x" SET SCHEMA "it\'s";\nwork.list 3\n\t-- tab\n';
    const head = Buffer.from([0x50, 0x47, 0x44, 0x4d, 0x50, 0x0a, 0x2e, 0x0a, 0x00, 0xff, 0x0a, 0x20, 0x0a]);
    const r = run(Buffer.concat([Buffer.from(bundled('work.list', list) + bundled('move.sql', sql) + '.\n'), head]));
    expect(r.code, r.stderr).toBe(0);
    expect(r.names()).toEqual(['move.sql', 'rest', 'work.list']);
    expect(r.file('work.list').toString()).toBe(list);
    expect(r.file('move.sql').toString()).toBe(sql);
    expect(r.file('rest').equals(head)).toBe(true);
  });

  it('a file without a last newline gets one; no head leaves nothing after the files', () => {
    const r = run(Buffer.from(bundled('work.list', '1; 0 0 TABLE public t shop') + '.\n'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.file('work.list').toString()).toBe('1; 0 0 TABLE public t shop\n');
    expect(r.file('rest').length).toBe(0);
  });

  it('input cut short (no closing line) is an error, not a short list', () => {
    const whole = bundled('work.list', '1; 0 0 TABLE public t shop\n2; 0 0 INDEX public t_pkey shop\n');
    expect(run(Buffer.from(whole)).code).not.toBe(0);
    const r = run(Buffer.from(whole.slice(0, whole.lastIndexOf('2;'))));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cut short');
  });
});
