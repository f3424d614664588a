// database.backup.exclude_tables / exclude_table_data: the patterns' checks, per-environment lists, messages.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkConfigText, findTarget, loadConfig } from '../../lib/config/load.js';
import { patternParts, patternProblem, patternsFor } from '../../lib/config/patterns.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const project = (backup: string) => `acme:
  database:
    type: postgresql
    container: pg
    databases:
      production: acme_prod
      staging: acme_staging
    backup:
${backup}
`;

function load(text: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-excl-'));
  made.push(dir);
  writeFileSync(path.join(dir, 'projects.yml'), text);
  return loadConfig(path.join(dir, 'projects.yml'), {});
}

const issues = (text: string) => checkConfigText(text, 'projects.yml').issues.map((i) => `${i.line} ${i.path}: ${i.message}`);

describe('table patterns', () => {
  it('splits at dots outside double quotes, keeping quotes and "" inside them', () => {
    expect(patternParts('public.event_logs')).toEqual({ parts: ['public', 'event_logs'], unclosed: false });
    expect(patternParts('"My.Schema"."Odd""Name"')).toEqual({ parts: ['"My.Schema"', '"Odd""Name"'], unclosed: false });
    expect(patternParts('"open.x')).toEqual({ parts: ['"open.x'], unclosed: true });
  });

  it('accepts what pg_dump takes (wildcards, quotes, mixed case) and says what is wrong otherwise', () => {
    for (const ok of ['event_logs', 'public.*', 'audit.log_?', '"Mixed"."Case Table"', '"we""ird"', 'a.b*']) expect(patternProblem(ok)).toBeUndefined();
    expect(patternProblem('')).toMatch(/empty pattern/);
    expect(patternProblem('  ')).toMatch(/empty pattern/);
    expect(patternProblem('db.public.t')).toMatch(/more than one dot/);
    expect(patternProblem('public.')).toMatch(/empty schema or table part/);
    expect(patternProblem('.t')).toMatch(/empty schema or table part/);
    expect(patternProblem('"unclosed')).toMatch(/double quote is not closed/);
    expect(patternProblem('a\nb')).toMatch(/control character/);
    expect(patternProblem('x'.repeat(201))).toMatch(/longer than 200/);
  });

  it('a list applies to every environment; a mapping to the environments it names; duplicates dropped', () => {
    expect(patternsFor(undefined, 'production')).toEqual([]);
    expect(patternsFor(['a', 'b', 'a'], 'staging')).toEqual(['a', 'b']);
    expect(patternsFor({ production: ['x'] }, 'production')).toEqual(['x']);
    expect(patternsFor({ production: ['x'] }, 'staging')).toEqual([]);
    expect(patternsFor({ production: ['x'] }, 'constructor')).toEqual([]);
  });
});

describe('exclude_tables and exclude_table_data in projects.yml', () => {
  it('resolves per target: a project-wide list, and an environment mapping', () => {
    const c = load(project(`      exclude_tables: [public.event_logs, '"Audit"."Raw Log"']\n      exclude_table_data:\n        production: ['logs.*']`));
    expect(findTarget(c, 'acme', 'production').backup).toMatchObject({ exclude_tables: ['public.event_logs', '"Audit"."Raw Log"'], exclude_table_data: ['logs.*'] });
    expect(findTarget(c, 'acme', 'staging').backup).toMatchObject({ exclude_tables: ['public.event_logs', '"Audit"."Raw Log"'], exclude_table_data: [] });
  });

  it('no keys: a full backup for every target', () => {
    const c = load(project('      enabled: true'));
    for (const t of c.targets) expect(t.backup).toMatchObject({ exclude_tables: [], exclude_table_data: [] });
  });

  it('a bad pattern is an error naming the key, the project, the environment and the line', () => {
    expect(issues(project(`      exclude_table_data:\n        production: [ok, 'db.public.t']`))).toEqual([
      '10 acme.database.backup.exclude_table_data.production.1: not a pg_dump table pattern ("db.public.t"): more than one dot outside double quotes (expected table or schema.table; quote a dot that is part of a name)',
    ]);
    expect(issues(project(`      exclude_tables: ['"Open']`))).toEqual(['9 acme.database.backup.exclude_tables.0: not a pg_dump table pattern ("\\"Open"): a double quote is not closed (write "" for a quote inside quotes)']);
  });

  it('an environment that does not exist, a value of the wrong shape, a non-string', () => {
    expect(issues(project(`      exclude_tables:\n        prod: [x]`))).toEqual(['10 acme.database.backup.exclude_tables.prod: no such environment in acme.database.databases']);
    expect(issues(project(`      exclude_tables: event_logs`))).toEqual(['9 acme.database.backup.exclude_tables: expected a list of table patterns, or a mapping of environment names to such lists']);
    expect(issues(project(`      exclude_table_data: [3]`))).toEqual(['9 acme.database.backup.exclude_table_data: expected a list of table patterns, or a mapping of environment names to such lists']);
  });
});
