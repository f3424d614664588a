import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { takeBackup } from '../../lib/backup/take.js';
import { acquireLock } from '../../lib/storage/lock.js';
import { backupStem, DUMP_EXT } from '../../lib/storage/repository.js';
import { TestFleet } from '../helpers.js';

/** Every file under a directory with its size, mode and mtime: equal snapshots, nothing changed. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(root)) return out;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = statSync(p);
      out[path.relative(root, p)] = `${st.size}:${(st.mode & 0o777).toString(8)}:${st.mtimeMs}`;
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

/** Prometheus text: family → series lines. */
function parseProm(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  const fam = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const value = Number(m[3]);
    if (Number.isNaN(value)) throw new Error(`bad value: ${line}`);
    fam.set(m[1], [...(fam.get(m[1]) ?? []), { labels, value }]);
  }
  return fam;
}

describe('fleet operations (real PostgreSQL 15 in containers)', () => {
  let fleet: TestFleet;
  let server: http.Server;
  const hooks: { path: string; body: { text: string; pgfleet: { ok: boolean; results: { project: string; result: string }[] } } }[] = [];
  const TOKEN = 'hook-T0KEN-9x7';
  let hookUrl = '';
  let metricsFile = '';

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (d) => (data += d));
      req.on('end', () => {
        hooks.push({ path: req.url ?? '', body: JSON.parse(data) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/${TOKEN}`;
    fleet = await TestFleet.create(
      [
        { project: 'acme', databases: { production: 'acme_production' }, user: 'acme', password: 'Pw-acme-fleet-1' },
        { project: 'globex', databases: { production: 'globex_production', staging: 'globex_staging' } },
        { project: 'initech', databases: { production: 'initech_production' } },
      ],
      { concurrency: 2, notify: { webhook_url_env: 'PGFLEET_TEST_WEBHOOK', on: ['failure'] } },
    );
    metricsFile = path.join(fleet.dir, 'textfile', 'pgfleet.prom');
    mkdirSync(path.dirname(metricsFile));
    fleet.platform = { ...fleet.platform, metrics: { textfile: metricsFile } };
    fleet.writeConfig();
    await fleet.sql('acme', 'acme_production', 'SET ROLE acme; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50);');
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await fleet?.cleanup();
  });

  it('dry runs change nothing, not even on an empty backup root', async () => {
    expect(existsSync(fleet.backupRoot)).toBe(false);
    for (const args of [['scheduled-backup', '--dry-run'], ['prune', '--dry-run']]) {
      const r = await fleet.cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    // status fails (exit 1) because no target has a backup yet: it says so for each, it does not crash.
    const st = await fleet.cli(['status']);
    expect(st.code, st.stderr).toBe(1);
    for (const t of ['acme/production', 'globex/production', 'globex/staging', 'initech/production']) expect(st.stdout).toMatch(new RegExp(`${t}\\s+FAIL\\s.*no complete backup`));
    expect(st.stdout).toContain('status: FAIL (acme/production, globex/production, globex/staging, initech/production)');
    expect(existsSync(fleet.backupRoot)).toBe(false);
  });

  it('backs up the fleet with one container stopped: the others succeed, exit 1 names it, a webhook and the metrics follow', async () => {
    await fleet.sandbox.stop(fleet.container('initech'));
    const r = await fleet.cli(['scheduled-backup'], { env: { PGFLEET_TEST_WEBHOOK: hookUrl } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/initech\/production\s+FAILED .*container ".*initech" is not running/);
    for (const t of ['acme/production', 'globex/production', 'globex/staging']) expect(r.stdout).toMatch(new RegExp(`${t}\\s+OK\\s`));
    expect(r.stdout).toContain('4 target(s): 3 ok, 1 failed (initech/production)');
    expect(r.stderr).toContain('initech/production');
    expect(r.stdout + r.stderr).not.toContain(TOKEN);

    const { ctx } = fleet.context();
    for (const [p, e] of [['acme', 'production'], ['globex', 'production'], ['globex', 'staging']]) expect(await ctx.repo.list(p, e)).toHaveLength(1);
    expect(await ctx.repo.list('initech', 'production')).toHaveLength(0);

    expect(hooks).toHaveLength(1);
    expect(hooks[0].path).toBe(`/services/${TOKEN}`);
    expect(hooks[0].body.text).toContain('initech/production');
    expect(hooks[0].body.pgfleet.ok).toBe(false);
    expect(hooks[0].body.pgfleet.results.map((x) => `${x.project}:${x.result}`).sort()).toEqual(['acme:ok', 'globex:ok', 'globex:ok', 'initech:failed']);

    expect(statSync(metricsFile).mode & 0o777).toBe(0o644);
    const prom = parseProm(readFileSync(metricsFile, 'utf8'));
    expect(prom.size).toBeGreaterThanOrEqual(7);
    for (const [name, series] of prom) {
      expect(name).toMatch(/^pgfleet_/);
      expect(series.map((s) => `${s.labels.project}/${s.labels.environment}`).sort()).toEqual(['acme/production', 'globex/production', 'globex/staging', 'initech/production']);
    }
    const value = (name: string, project: string, env = 'production') => prom.get(name)!.find((s) => s.labels.project === project && s.labels.environment === env)!.value;
    expect(value('pgfleet_backup_count', 'acme')).toBe(1);
    expect(value('pgfleet_backup_count', 'initech')).toBe(0);
    expect(value('pgfleet_backup_last_success_timestamp_seconds', 'initech')).toBe(0);
    expect(Math.abs(value('pgfleet_backup_last_success_timestamp_seconds', 'acme') - Date.now() / 1000)).toBeLessThan(600);
    expect(value('pgfleet_backup_last_size_bytes', 'acme')).toBe((await ctx.repo.list('acme', 'production'))[0].meta.size_bytes);

    // status: the stopped tenant has no backup → exit 1; with it disabled, ok; a day and a half later, everything is stale.
    const st = await fleet.cli(['status', '--json']);
    expect(st.code).toBe(1);
    const report = JSON.parse(st.stdout);
    expect(report.targets.find((t: { project: string }) => t.project === 'initech').problems).toEqual(['no complete backup']);
    expect(report.targets.find((t: { project: string }) => t.project === 'acme')).toMatchObject({ ok: true, backups: 1, verification: null });
    const later = await fleet.cli(['status'], { env: { PGFLEET_NOW: new Date(Date.now() + 36 * 3600e3).toISOString() } });
    expect(later.code).toBe(1);
    expect(later.stdout).toMatch(/acme\/production\s+FAIL .*old \(max_backup_age 26\.0h\)/);
  });

  it('reports a target whose lock is held as busy, without waiting, and backs up the rest', async () => {
    const { ctx } = fleet.context();
    const lock = await acquireLock(ctx.repo.targetDir('globex', 'staging'), { project: 'globex', environment: 'staging' }, 'test holds it');
    try {
      const r = await fleet.cli(['scheduled-backup', '--project', 'globex', '--concurrency', '1']);
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/globex\/staging\s+BUSY/);
      expect(r.stdout).toMatch(/globex\/production\s+OK/);
    } finally {
      await lock.release();
    }
  });

  it('retention over months of dailies (PGFLEET_NOW) keeps exactly what the tiers promise; failed runs never remove the last good backup', async () => {
    const db = { retention_days: 7, keep_daily: 7, keep_weekly: 4, keep_monthly: 3 };
    fleet.projects.find((p) => p.project === 'acme')!.database = { backup: db };
    fleet.writeConfig();
    // One real backup on 2025-01-01, then its dump copied as the nightly backup of every day to 2025-04-30.
    const { ctx } = fleet.context({ now: '2025-01-01T02:00:00Z' });
    rmSync(ctx.repo.databaseDir('acme', 'production'), { recursive: true, force: true }); // the earlier tests' backups
    const target = ctx.config.targets.find((t) => t.project === 'acme')!;
    const first = await takeBackup(ctx, target, { type: 'scheduled' });
    const dir = path.dirname(first.path);
    for (let t = Date.parse('2025-01-02T02:00:00Z'); t <= Date.parse('2025-04-30T02:00:00Z'); t += 86_400_000) {
      const at = new Date(t).toISOString();
      const id = backupStem(new Date(t));
      copyFileSync(first.path, path.join(dir, id + DUMP_EXT));
      await ctx.repo.saveMetadata({ ...first.meta, id, file: id + DUMP_EXT, created_at: at, started_at: at, finished_at: at });
    }
    // A leftover temp file two days old goes; a fresh one stays.
    const oldTemp = path.join(dir, '.tmp-db_20250428_020000Z.dump.zst.1.abcd');
    const newTemp = path.join(dir, '.tmp-db_20250430_020000Z.dump.zst.1.ef01');
    for (const f of [oldTemp, newTemp]) writeFileSync(f, 'partial');
    utimesSync(oldTemp, new Date('2025-04-28T02:00:00Z'), new Date('2025-04-28T02:00:00Z'));
    utimesSync(newTemp, new Date('2025-04-30T02:00:00Z'), new Date('2025-04-30T02:00:00Z'));
    expect(await ctx.repo.list('acme', 'production')).toHaveLength(120);

    const now = { PGFLEET_NOW: '2025-04-30T12:00:00Z' };
    const before = tree(fleet.backupRoot);
    const dry = await fleet.cli(['prune', 'acme', 'production', '--dry-run'], { env: now });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('acme/production: would remove 109, would keep 11 (dry run)');
    expect(dry.stdout).toMatch(/keep {4}db_20250228_020000Z {2}monthly 2025-02/);
    expect(dry.stdout).toMatch(/keep {4}db_20250413_020000Z {2}weekly 2025-W15/);
    expect(dry.stdout).toContain('.tmp-db_20250428_020000Z.dump.zst.1.abcd  leftover temp file older than a day');
    const dryBackup = await fleet.cli(['scheduled-backup', '--dry-run'], { env: now });
    expect(dryBackup.code).toBe(0);
    expect(dryBackup.stdout).toMatch(/acme\/production\s+back up\s+109: db_20250423_020000Z … db_20250101_020000Z$/m);
    expect(tree(fleet.backupRoot)).toEqual(before);

    const pruned = await fleet.cli(['prune', 'acme', 'production'], { env: now });
    expect(pruned.code).toBe(0);
    const ids = async () => (await ctx.repo.list('acme', 'production')).map((b) => b.meta.id.slice(3, 11));
    // 7 days (retention_days and keep_daily), ISO weeks W18..W15 (Apr 30, 27, 20, 13), months Apr, Mar, Feb.
    const expected = ['20250430', '20250429', '20250428', '20250427', '20250426', '20250425', '20250424', '20250420', '20250413', '20250331', '20250228'];
    expect(await ids()).toEqual(expected);
    expect(existsSync(oldTemp)).toBe(false);
    expect(existsSync(newTemp)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.endsWith(DUMP_EXT)).length).toBe(11);

    // The container dies; months of nightly runs fail. No run prunes, and the newest good backup stays.
    const mar31 = (await ctx.repo.list('acme', 'production')).find((b) => b.meta.id === 'db_20250331_020000Z')!;
    await ctx.repo.saveMetadata({ ...mar31.meta, verification: { status: 'passed', verified_at: '2025-04-01T03:00:00Z', duration_ms: 10, tables: 1, rows: 50 } });
    await fleet.sandbox.stop(fleet.container('acme'));
    for (const day of ['2025-05-01', '2025-06-01', '2025-07-01', '2025-09-01']) {
      const r = await fleet.cli(['scheduled-backup', '--project', 'acme'], { env: { PGFLEET_NOW: `${day}T02:00:00Z` } });
      expect(r.code).toBe(1);
      expect(await ids()).toEqual(expected);
    }
    // Even with every tier switched off and a year gone, prune keeps the newest and the newest verified.
    fleet.projects.find((p) => p.project === 'acme')!.database = { backup: { retention_days: 7, keep_daily: 0, keep_weekly: 0, keep_monthly: 0 } };
    fleet.writeConfig();
    const last = await fleet.cli(['prune', 'acme', 'production'], { env: { PGFLEET_NOW: '2026-05-01T00:00:00Z' } });
    expect(last.code).toBe(0);
    expect(await ids()).toEqual(['20250430', '20250331']);
    const st = await fleet.cli(['status', '--json'], { env: { PGFLEET_NOW: '2026-05-01T00:00:00Z' } });
    expect(JSON.parse(st.stdout).targets.find((t: { project: string }) => t.project === 'acme').problems[0]).toMatch(/^latest complete backup is 365\.9d old/);
  });
});
