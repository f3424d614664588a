// schemas/*.schema.json are generated from zod; these tests fail when the two drift, and prove that
// the ajv check of files on disk (schemaProblems) accepts and rejects what zod does.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../lib/core/package.js';
import { schemaFile, schemaProblems } from '../../lib/core/schema-files.js';
import { SCHEMAS, generateSchema } from '../../lib/formats/registry.js';
import { BackupMetadata } from '../../lib/formats/metadata.js';

describe('generated JSON Schemas', () => {
  it.each(Object.keys(SCHEMAS))('schemas/%s.schema.json is what zod generates (run `npm run schemas` when this fails)', (name) => {
    const file = schemaFile(name);
    expect(existsSync(file), `${file} missing`).toBe(true);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(JSON.parse(JSON.stringify(generateSchema(name))));
  });

  it('every file in schemas/ belongs to a registered schema', () => {
    const files = readdirSync(path.join(PACKAGE_ROOT, 'schemas')).filter((f) => f.endsWith('.schema.json'));
    expect(files.sort()).toEqual(Object.keys(SCHEMAS).map((n) => `${n}.schema.json`).sort());
  });
});

describe('projects.schema.json with ajv', () => {
  const example = parse(readFileSync(path.join(PACKAGE_ROOT, 'projects.yml'), 'utf8'));

  it('accepts the example projects.yml', () => {
    expect(schemaProblems('projects', example)).toEqual([]);
  });

  it('accepts the deploy system keys beside database:', () => {
    expect(schemaProblems('projects', { ...example, acme: { domain: 'x', database: { type: 'postgresql', databases: { production: 'acme' } } } })).toEqual([]);
  });

  it.each([
    ['a mistyped key inside database.backup', (d: any) => (d['filter-ical'].database.backup.retention_day = 30), /retention_day/],
    ['another database type', (d: any) => (d['filter-ical'].database.type = 'mysql'), /database\/type/],
    ['a container named -rm', (d: any) => (d['filter-ical'].database.container = '-rm'), /database\/container/],
    ['a database named a"; drop', (d: any) => (d['filter-ical'].database.databases.production = 'a"; drop'), /databases\/production/],
    ['an unknown platform key', (d: any) => (d.platform.backup_roots = '/x'), /backup_roots/],
    ['a bad duration', (d: any) => (d.platform.max_backup_age = '26 hours'), /max_backup_age/],
  ])('rejects %s', (_what, mutate, where) => {
    const data = structuredClone(example);
    mutate(data);
    const problems = schemaProblems('projects', data);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(where);
  });
});

describe('backup-metadata.schema.json with ajv', () => {
  const meta = {
    format_version: 1,
    id: 'db_20250106_020304Z_2',
    project: 'acme',
    environment: 'production',
    database: 'acme_production',
    type: 'manual',
    release: null,
    created_at: '2025-01-06T02:03:04.000Z',
    started_at: '2025-01-06T02:03:04.000Z',
    finished_at: '2025-01-06T02:03:09.120Z',
    duration_ms: 5120,
    file: 'db_20250106_020304Z_2.dump.zst',
    size_bytes: 1234,
    sha256: 'a'.repeat(64),
    format: 'custom',
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    pg_dump_version: '15.14',
    server_version: '15.14',
    source: { container: 'acme-db', user: 'acme' },
    tables: { 'public."Customer"': 200 },
    total_rows: 200,
    pgfleet_version: '0.1.0',
    verification: null,
  };

  it('accepts what zod accepts', () => {
    expect(BackupMetadata.safeParse(meta).success).toBe(true);
    expect(schemaProblems('backup-metadata', meta)).toEqual([]);
  });

  it('accepts an age-encrypted copy and the offsite state, as zod does', () => {
    const enc = { algorithm: 'age', recipients: ['age1' + 'q'.repeat(58)], plaintext_sha256: 'b'.repeat(64), plaintext_size_bytes: 1000 };
    for (const over of [
      { file: 'db_20250106_020304Z_2.dump.zst.age', encryption: enc },
      { offsite: null },
      { offsite: { status: 'pending', key: 'acme/production/database/db_20250106_020304Z_2.dump.zst.age', error: 'gateway unreachable' } },
      { offsite: { status: 'uploaded', key: 'acme/production/database/db_20250106_020304Z_2.dump.zst', uploaded_at: '2025-01-06T02:04:00Z' } },
    ]) {
      expect(BackupMetadata.safeParse({ ...meta, ...over }).success).toBe(true);
      expect(schemaProblems('backup-metadata', { ...meta, ...over })).toEqual([]);
    }
  });

  it.each([
    ['an encryption of another algorithm', { encryption: { algorithm: 'gpg', recipients: ['age1' + 'q'.repeat(58)], plaintext_sha256: 'b'.repeat(64), plaintext_size_bytes: 1 } }],
    ['no recipients', { encryption: { algorithm: 'age', recipients: [], plaintext_sha256: 'b'.repeat(64), plaintext_size_bytes: 1 } }],
    ['a recipient that is not an age key', { encryption: { algorithm: 'age', recipients: ['age1bbbb'], plaintext_sha256: 'b'.repeat(64), plaintext_size_bytes: 1 } }],
    ['an unknown offsite status', { offsite: { status: 'maybe', key: 'k' } }],
    ['an offsite state with a secret', { offsite: { status: 'pending', key: 'k', password: 'x' } }],
    ['a local time', { created_at: '2025-01-06T03:03:04+01:00' }],
    ['a name that is not a backup id', { id: '../etc/passwd' }],
    ['an unknown key', { password: 'x' }],
    ['a negative size', { size_bytes: -1 }],
    ['a short sha256', { sha256: 'abc' }],
  ])('rejects %s, as zod does', (_what, over) => {
    const bad = { ...meta, ...over };
    expect(BackupMetadata.safeParse(bad).success).toBe(false);
    expect(schemaProblems('backup-metadata', bad).length).toBeGreaterThan(0);
  });
});
