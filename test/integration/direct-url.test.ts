// Direct mode: a project without `container`, reached with DATABASE_URL from
// configs/<project>/.env.<env>, over the tenant's unix socket shared with the host. The password is
// in the URL; it must reach no process argv, no log line, no metadata, no error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runBackup } from '../../lib/commands/backup.js';
import { TestFleet, stockRestore, dataDigest } from '../helpers.js';
import { allCommandLines, jsonLines, runCli, sha256Of, startCli } from './support.js';

const PASSWORD = 'Direct-pw-K7v%2Fq';
const DECODED = decodeURIComponent(PASSWORD);

describe('direct mode: DATABASE_URL instead of a container (real PostgreSQL over its socket)', () => {
  let fleet: TestFleet;
  let tenant: string;
  let envFile: string;

  beforeAll(async () => {
    fleet = await TestFleet.create([]);
    tenant = `${fleet.prefix}-direct`;
    const t = await fleet.sandbox.startTenant({ name: tenant, databases: ['shop_production'], user: 'shop', password: DECODED, hostSocket: true });
    await fleet.sandbox.sql(tenant, 'shop_production', `CREATE TABLE item (id int PRIMARY KEY, name text); INSERT INTO item SELECT g, 'item ' || g FROM generate_series(1, 500) g; ALTER TABLE item OWNER TO shop;`);
    // No container in projects.yml: the project is reached only through its DATABASE_URL.
    fleet.projects.push({ project: 'shop', databases: { production: 'shop_production' } });
    fleet.writeConfig();
    expect(readFileSync(fleet.configFile, 'utf8')).not.toMatch(/container:/);
    envFile = path.join(fleet.dir, 'configs', 'shop', '.env.production');
    mkdirSync(path.dirname(envFile), { recursive: true });
    writeFileSync(envFile, `DATABASE_URL=postgresql://shop:${PASSWORD}@/postgres?host=${t.socketDir}\n`, { mode: 0o600 });
  });
  afterAll(() => fleet?.cleanup());

  it('config check shows the target reached through DATABASE_URL', async () => {
    const r = await runCli(fleet, ['config', 'check']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^shop\s+production\s+shop_production\s+DATABASE_URL\s+enabled$/m);
  });

  it('backs up through the URL (in-process): a dump stock tools restore, no password in logs or metadata', async () => {
    const { ctx, logs, out } = fleet.context();
    const b = await runBackup(ctx, { project: 'shop', environment: 'production', type: 'manual' });
    expect(out.at(-1)).toBe(b.path);
    expect(b.meta.source).toEqual({ container: null, user: null });
    expect(b.meta.tables).toEqual({ 'public.item': 500 });
    expect(sha256Of(b.path)).toBe(b.meta.sha256);
    const everything = [...logs, ...out, readFileSync(b.metaPath, 'utf8')].join('\n');
    expect(everything).toContain('"where":"DATABASE_URL"');
    for (const secret of [PASSWORD, DECODED]) expect(everything).not.toContain(secret);
    // The dump restores with stock tools (inside the tenant's container, as the superuser).
    await stockRestore(fleet.runner, tenant, b.path, 'shop_copy');
    expect(await dataDigest(fleet.sandbox, tenant, 'shop_copy')).toEqual(await dataDigest(fleet.sandbox, tenant, 'shop_production'));
  });

  it('through the CLI: pg_dump runs on the host with no password in any argv, stderr or metadata', async () => {
    // The operator's own libpq variables must not redirect the dump: only the URL decides.
    const run = startCli(fleet, ['backup', 'shop', 'production'], { env: { PGPORT: '1', PGHOST: '/nonexistent', PGSERVICE: 'no-such-service' } });
    const seen = new Set<string>();
    let finished = false;
    void run.done.then(() => (finished = true));
    while (!finished) {
      for (const c of allCommandLines()) seen.add(c);
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const lines = [...seen];
    expect(lines.some((l) => /(^|\/)psql .*-d shop_production/.test(l))).toBe(true);
    for (const secret of [PASSWORD, DECODED, 'postgresql://']) expect(lines.filter((l) => l.includes(secret))).toEqual([]);
    expect(jsonLines(r.stderr).map((l) => l.msg)).toEqual(['backup started', 'backup complete']);
    const dump = r.stdout.trim().split('\n').at(-1)!;
    for (const text of [r.stderr, r.stdout, readFileSync(dump + '.json', 'utf8')]) for (const secret of [PASSWORD, DECODED]) expect(text).not.toContain(secret);
  });

  it('a wrong password in the URL: exit 1, names the target, shows neither password', async () => {
    const good = readFileSync(envFile, 'utf8');
    writeFileSync(envFile, good.replace(PASSWORD, 'Wrong-direct-pw-33'), { mode: 0o600 });
    try {
      const r = await runCli(fleet, ['backup', 'shop', 'production']);
      expect(r.code).toBe(1);
      const final = jsonLines(r.stderr).at(-1)!;
      expect(final).toMatchObject({ project: 'shop', environment: 'production', exit_code: 1 });
      expect(String(final.msg)).toMatch(/^shop\/production: cannot connect to the database \(DATABASE_URL, user default\): .*password authentication failed for user "shop"/);
      for (const secret of ['Wrong-direct-pw-33', PASSWORD, DECODED]) expect(r.stderr).not.toContain(secret);
    } finally {
      writeFileSync(envFile, good, { mode: 0o600 });
    }
  });

  it('without DATABASE_URL, a project without container is a config error (exit 2)', async () => {
    const good = readFileSync(envFile, 'utf8');
    writeFileSync(envFile, '', { mode: 0o600 });
    try {
      const r = await runCli(fleet, ['backup', 'shop', 'production'], { env: { DATABASE_URL: '' } });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/shop\/production: no container configured and no DATABASE_URL/);
      const check = await runCli(fleet, ['config', 'check'], { env: { DATABASE_URL: '' } });
      expect(check.code).toBe(2);
      expect(check.stderr).toMatch(/\.env\.production: DATABASE_URL: shop\.database has no container, so DATABASE_URL is required/);
    } finally {
      writeFileSync(envFile, good, { mode: 0o600 });
    }
  });
});
