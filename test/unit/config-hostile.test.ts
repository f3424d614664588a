/**
 * A hostile projects.yml is a config error, never a bug: alias bombs, deep nesting, huge scalars
 * and keys, huge mappings, binary bytes, control characters, other encodings, endless inputs. Each
 * goes to loadConfig (a ConfigError naming the file, and the line where there is one) and to the
 * built CLI (dist/, as `npm run -s build` leaves it): exit 2 with file and line, no "internal error".
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config/load.js';
import { LIMITS } from '../../lib/config/read.js';
import { ConfigError, type ConfigIssue } from '../../lib/core/errors.js';
import { CLI } from '../helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A valid target first, so that nothing but the hostile part is wrong. */
const HEAD = 'acme:\n  database:\n    type: postgresql\n    container: acme-db\n    databases: { production: acme_production }\n';

function file(name: string, content: string | Buffer): string {
  const f = path.join(dir, name);
  writeFileSync(f, content);
  return f;
}

/** loadConfig's ConfigError issues for a file; fails the test on any other outcome. */
function issuesOf(f: string): ConfigIssue[] {
  try {
    loadConfig(f, {});
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw new Error(`not a ConfigError: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
  }
  throw new Error('loaded without an error');
}

const bomb = (levels: number) =>
  ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]', ...Array.from({ length: levels }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]`)].join('\n') + '\n';
const deepBlock = (levels: number) => HEAD + '  deploy:\n' + Array.from({ length: levels }, (_, i) => `${' '.repeat(2 * i + 4)}k${i}:\n`).join('') + `${' '.repeat(2 * levels + 4)}x\n`;

// name → content, the line expected (undefined: none applies), the message.
const HOSTILE: [string, string | Buffer, number | undefined, RegExp][] = [
  ['an alias bomb (nested &a/*a lists)', bomb(9), 2, /^YAML: the aliases expand too far/],
  ['an alias bomb inside a project', HEAD + '  deploy:\n' + bomb(9).replace(/^(?=.)/gm, '    '), 8, /^YAML: the aliases expand too far/],
  ['flow nesting 100000 deep', HEAD + '  deploy: ' + '['.repeat(100_000) + ']'.repeat(100_000) + '\n', 6, /^YAML: nested deeper than 64 levels$/],
  ['block nesting 100 deep', deepBlock(100), 69, /^YAML: nested deeper than 64 levels$/],
  ['a file over the size limit', HEAD + '  deploy: ' + 'x'.repeat(LIMITS.bytes) + '\n', undefined, /bytes, larger than 1048576 bytes: not a projects\.yml$/],
  ['random binary bytes', Buffer.concat([Buffer.from('acme:\n'), Buffer.from([0xff, 0xfe, 0x00, 0x9c, 0x80, 0x0a, 0xc3])]), 2, /^not UTF-8 text/],
  ['a NUL byte in UTF-8 text', HEAD + '  deploy: a\u0000b\n', 6, /^a control character \(U\+0000\) at column 12: YAML allows none/],
  ['an escape sequence (terminal control) in a key', HEAD + '  "\u001b[2J\u001b[31mred": 1\n', 6, /^a control character \(U\+001B\) at column 4/],
  ['Latin-1 text (not UTF-8)', Buffer.from(HEAD + '  deploy: caf\xe9\n', 'latin1'), 6, /^not UTF-8 text/],
  ['UTF-16 with a byte order mark', Buffer.from('\ufeff' + HEAD, 'utf16le'), 1, /^not UTF-8 text/],
  ['an alias to no anchor', HEAD + 'globex: *nowhere\n', 6, /^YAML: Unresolved alias/],
  ['a duplicate key', HEAD.replace('    type: postgresql\n', '    type: postgresql\n    type: postgresql\n'), 4, /^YAML: duplicate key type \(first at line 3\)$/],
];

describe('hostile config files are config errors with file and line', () => {
  it.each(HOSTILE)('%s', (name, content, line, message) => {
    const f = file(`${name.replace(/\W+/g, '-')}.yml`, content);
    const issues = issuesOf(f);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: f, line });
    expect(issues[0].message).toMatch(message);
  });

  it('nesting up to the limit and a byte order mark are fine', () => {
    expect(loadConfig(file('deep60.yml', deepBlock(60)), {}).targets).toHaveLength(1);
    expect(loadConfig(file('bom.yml', '\ufeff' + HEAD), {}).targets).toHaveLength(1);
    expect(loadConfig(file('anchors.yml', HEAD.replace('databases:', 'databases: &dbs') + 'globex:\n  database: { type: postgresql, container: g, databases: *dbs }\n'), {}).targets).toHaveLength(2);
  });

  it('a huge scalar or key under the size limit: its line, and a message that does not repeat it', () => {
    const scalar = issuesOf(file('huge-scalar.yml', HEAD.replace('container: acme-db', `container: ${'c'.repeat(900_000)}`)));
    expect(scalar).toEqual([expect.objectContaining({ line: 4, path: 'acme.database.container' })]);
    expect(scalar[0].message.length).toBeLessThan(200);
    const key = issuesOf(file('huge-key.yml', HEAD + `    ? ${'k'.repeat(900_000)}\n    : 1\n`));
    expect(key).toHaveLength(1);
    expect(key[0]).toMatchObject({ line: 6, message: 'unknown key' });
    expect(key[0].path).toBe(`acme.database."${'k'.repeat(48)}…(900000 characters)"`);
  });

  it('a mapping of 80000 keys: a duplicate and every problem found, each with its line, in linear time', () => {
    const keys = Array.from({ length: 80_000 }, (_, i) => `p${i}: 1\n`).join('');
    const t0 = performance.now();
    const dup = issuesOf(file('dup-big.yml', HEAD + keys + 'p7: 1\n'));
    expect(dup).toEqual([expect.objectContaining({ line: 80_006, message: 'YAML: duplicate key p7 (first at line 13)' })]);
    const all = issuesOf(file('many-bad.yml', HEAD + keys));
    expect(all).toHaveLength(80_000);
    expect(all[79_999]).toMatchObject({ line: 80_005, path: 'p79999' });
    // The yaml library's own duplicate check and a linear search per problem took minutes here.
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('an endless input and a directory: no hang, a config error naming them', () => {
    expect(issuesOf('/dev/zero')).toEqual([{ file: '/dev/zero', line: undefined, path: '', message: `larger than ${LIMITS.bytes} bytes: not a projects.yml` }]);
    const d = path.join(dir, 'a-directory.yml');
    mkdirSync(d);
    expect(issuesOf(d)).toEqual([{ file: d, line: undefined, path: '', message: 'cannot read: EISDIR' }]);
  });
});

/** The built CLI's exit status and stderr. */
function cli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, PGFLEET_CONFIG: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('the CLI on hostile config files', () => {
  it.concurrent.each(HOSTILE)('%s: exit 2 with file and line, never "internal error"', async (name, content, line) => {
    const f = file(`cli-${name.replace(/\W+/g, '-')}.yml`, content);
    const r = await cli(['config', 'check', '--config', f]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`pgfleet: config: ${f}${line ? `:${line}:` : ':'} `);
    expect(r.stderr).not.toMatch(/internal error|please report|\n\s+at /);
  });

  it('a command that needs the config fails the same way', async () => {
    const r = await cli(['list', '--config', file('cli-list-bomb.yml', bomb(9))]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('cli-list-bomb.yml:2: YAML: the aliases expand too far');
    expect(r.stderr).not.toMatch(/internal error|please report/);
  });
});
