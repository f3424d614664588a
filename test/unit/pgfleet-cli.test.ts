/**
 * scripts/pgfleet.ts, the built CLI (dist/, as `npm run -s build` leaves it): a bug (an
 * InternalError, or anything thrown that is not a PgfleetError) is reported as one, with
 * "please report it", its stack and exit 1, secrets redacted; an expected failure is not. The bug
 * is planted by a module preloaded with --import that breaks Repository.prototype.survey, so that
 * `pgfleet list` meets it; no container is needed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../../lib/core/package.js';
import { KINDS } from '../../lib/core/errors.js';

// The unbundled CLI: the bug is planted in dist/lib's modules, which the bundle (dist/bin) does not import.
const CLI = path.join(PACKAGE_ROOT, 'dist', 'scripts', 'pgfleet.js');
const dist = (p: string) => pathToFileURL(path.join(PACKAGE_ROOT, 'dist', 'lib', p)).href;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = path.join(dir, 'projects.yml');
writeFileSync(config, `platform:\n  backup_root: ${path.join(dir, 'backups')}\nacme:\n  database:\n    type: postgresql\n    container: acme-db\n    databases: { production: acme_production }\n`);

/** `pgfleet list` with Repository.prototype.survey replaced by `body` (the preload's code). */
function listWith(body: string) {
  const preload = path.join(dir, `preload-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    preload,
    `import { Repository } from ${JSON.stringify(dist('storage/repository.js'))};\n` +
      `import { EXIT, InternalError, PgfleetError } from ${JSON.stringify(dist('core/errors.js'))};\n` +
      `if (typeof Repository.prototype.survey !== 'function') throw new Error('test setup: Repository.prototype.survey is gone; plant the bug elsewhere');\n` +
      `Repository.prototype.survey = async function () { ${body} };\n`,
  );
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, CLI, 'list'], {
    env: { ...process.env, PGFLEET_CONFIG: config, PGPASSWORD: 'never-shown-pw' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: r.status, stderr: r.stderr, last: lines.at(-1) };
}

describe('pgfleet CLI: bugs are reported as bugs', () => {
  it('a TypeError: "internal error … please report it", its stack, exit 1, a connection string redacted', () => {
    const r = listWith(`const dsn = 'postgresql://acme:hunter2-secret@db/acme'; return undefined.items + dsn;`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.last).toMatchObject({ kind: 'internal', exit_code: 1 });
    expect(String(r.last?.msg)).toMatch(new RegExp(`^${KINDS.internal.meaning.replace(/[()]/g, '\\$&')}: Cannot read properties of undefined`));
    const err = r.last?.err as { type: string; stack: string };
    expect(err.type).toBe('TypeError');
    expect(err.stack).toMatch(/\n\s+at .*preload-/);
    expect(r.stderr).not.toContain('hunter2-secret');
  });

  it('an InternalError: the same report, its own message', () => {
    const r = listWith(`throw new InternalError('metadata does not match its schema: /id must match pattern');`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.last).toMatchObject({ kind: 'internal', exit_code: 1, msg: `${KINDS.internal.meaning}: internal: metadata does not match its schema: /id must match pattern` });
    expect((r.last?.err as { type: string }).type).toBe('InternalError');
  });

  it('an expected failure is no bug: its own message, its exit code, no kind, no stack', () => {
    const r = listWith(`throw new PgfleetError('acme/production: the backup directory cannot be read', EXIT.FAILED, { project: 'acme', environment: 'production' });`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.last).toMatchObject({ msg: 'acme/production: the backup directory cannot be read', exit_code: 1, project: 'acme', environment: 'production' });
    expect(r.last).not.toHaveProperty('kind');
    expect(r.last).not.toHaveProperty('err');
  });
});
