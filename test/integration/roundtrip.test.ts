import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import path from 'node:path';
import { runBackup } from '../../lib/commands/backup.js';
import { runList } from '../../lib/commands/list.js';
import { sampleSql } from '../../scripts/sandbox/sample.js';
import { dataDigest, schemaDump, stockRestore, TestFleet } from '../helpers.js';

describe('backup round trip (real PostgreSQL 15 in a container)', () => {
  let fleet: TestFleet;
  const PASSWORD = 'Pw-for-roundtrip-9f3k';

  beforeAll(async () => {
    fleet = await TestFleet.create([
      { project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: PASSWORD },
      { project: 'globex', databases: { staging: 'globex_staging' } },
    ]);
    await fleet.sql('acme', 'acme_production', sampleSql('acme'));
  });
  afterAll(() => fleet?.cleanup());

  it('dumps with the password-authenticated owner and restores faithfully with stock tools only', async () => {
    const { ctx, out, logs } = fleet.context();
    const b = await runBackup(ctx, { project: 'acme', environment: 'production', type: 'manual' });
    expect(out.at(-1)).toBe(b.path);
    expect(path.basename(b.path)).toMatch(/^db_\d{8}_\d{6}Z\.dump\.zst$/);
    expect(statSync(b.path).mode & 0o777).toBe(0o600);
    expect(statSync(b.metaPath).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(b.path)).mode & 0o777).toBe(0o700);
    expect(b.meta.tables['public."Customer"']).toBe(200);
    expect(b.meta.tables['public.measurements_2025_01']).toBeGreaterThan(0);

    const c = fleet.container('acme');
    await stockRestore(fleet.runner, c, b.path, 'acme_copy');
    expect(await schemaDump(fleet.runner, c, 'acme_copy')).toBe(await schemaDump(fleet.runner, c, 'acme_production'));
    const src = await dataDigest(fleet.sandbox, c, 'acme_production');
    expect(src['<large objects>']).toMatch(/^1:/);
    expect(await dataDigest(fleet.sandbox, c, 'acme_copy')).toEqual(src);

    const all = [...logs, ...out, JSON.stringify(b.meta)].join('\n');
    expect(all).not.toContain(PASSWORD);
  });

  it('lists complete backups newest first, across tenants', async () => {
    const { ctx } = fleet.context();
    await runBackup(ctx, { project: 'globex', environment: 'staging', type: 'scheduled' });
    const { ctx: c2, out } = fleet.context();
    const listed = await runList(c2, { json: true });
    expect(listed.length).toBe(2);
    expect(listed[0].project).toBe('globex');
    expect(JSON.parse(out.join('\n'))[0]).toMatchObject({ project: 'globex', environment: 'staging', type: 'scheduled', verification: null });
    for (const k of ['id', 'project', 'environment', 'type', 'created_at', 'size_bytes', 'sha256', 'path', 'verification']) expect(listed[0]).toHaveProperty(k);
  });
});
