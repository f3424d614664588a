/**
 * Fleet operations, side by side with the stock loop:
 *   - 20 small tenants: `scheduled-backup --concurrency 2` vs `--concurrency 1` (rounds interleaved);
 *     target: concurrency 2 takes ≤ 0.65× the wall time of concurrency 1;
 *   - the fixed cost per target of a near-empty database (concurrency-1 wall time / 20, everything
 *     included: lock, dump, metadata, retention, metrics), target < 400 ms; beside it the stock
 *     `podman exec pg_dump | zstd > file` per tenant;
 *   - `list --json` over 10,000 backups of one target (synthetic: metadata through
 *     Repository.saveMetadata, each dump a hard link to one small real dump), target < 1 s.
 */
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { contextFor, defaultDeps } from '../../lib/runtime/context.js';
import { takeBackup } from '../../lib/backup/take.js';
import { silentLogger } from '../../lib/core/log.js';
import { backupStem, DUMP_EXT } from '../../lib/storage/repository.js';
import type { BenchEnv, BenchSection } from './types.js';

const TENANTS = 20;
const LISTED = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function startTenants(env: BenchEnv, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 4) {
    await Promise.all(
      names.slice(i, i + 4).map(async (name) => {
        await env.sandbox.startTenant({ name, databases: [`${name.replace(/-/g, '_')}_production`] });
        await env.sandbox.sql(name, `${name.replace(/-/g, '_')}_production`, 'CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 100) g;');
      }),
    );
  }
}

export const fleetSection: BenchSection = {
  name: 'fleet',
  async run(env) {
    const dir = path.join(env.dir, 'fleet');
    mkdirSync(dir, { recursive: true });
    const names = Array.from({ length: TENANTS }, (_, i) => `pgfleet-fleet-${process.pid}-${String(i + 1).padStart(2, '0')}`);
    env.log(`starting ${TENANTS} small tenants…`);
    await startTenants(env, names);
    const configFile = path.join(dir, 'projects.yml');
    const doc: Record<string, unknown> = { platform: { backup_root: path.join(dir, 'backups'), container_cli: 'podman', concurrency: 2 } };
    names.forEach((name, i) => {
      doc[`t${String(i + 1).padStart(2, '0')}`] = { database: { type: 'postgresql', container: name, databases: { production: `${name.replace(/-/g, '_')}_production` } } };
    });
    writeFileSync(configFile, stringify(doc));

    // Fleet runs, interleaved so that load from elsewhere hits both alike.
    const t = { c1: [] as number[], c2: [] as number[], stock: [] as number[] };
    for (let i = 0; i < env.rounds; i++) {
      t.c1.push((await env.pgfleet(['scheduled-backup', '--concurrency', '1', '--config', configFile])).wallMs);
      t.c2.push((await env.pgfleet(['scheduled-backup', '--concurrency', '2', '--config', configFile])).wallMs);
      const t0 = performance.now();
      for (const name of names) {
        const db = `${name.replace(/-/g, '_')}_production`;
        await env.runner.run(['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z0 -U postgres -d "$2" | zstd -3 -q -c > "$3"', 'stock', name, db, path.join(dir, 'stock.dump.zst')]);
      }
      t.stock.push(performance.now() - t0);
      env.log(`round ${i + 1}: concurrency 1 ${(t.c1[i] / 1000).toFixed(1)} s, concurrency 2 ${(t.c2[i] / 1000).toFixed(1)} s, stock loop ${(t.stock[i] / 1000).toFixed(1)} s`);
    }
    const [c1, c2, stock] = [median(t.c1), median(t.c2), median(t.stock)];
    env.record('fleet', `${TENANTS} tenants, concurrency 1 wall (median)`, c1 / 1000, 's');
    env.record('fleet', `${TENANTS} tenants, concurrency 2 wall (median)`, c2 / 1000, 's');
    env.record('fleet', 'concurrency 2 / concurrency 1', c2 / c1, 'x', '<= 0.65', c2 / c1 <= 0.65);
    env.record('fleet', 'fixed cost per target (c1 wall / tenants)', c1 / TENANTS, 'ms', '< 400', c1 / TENANTS < 400);
    const ctx = contextFor(configFile, defaultDeps({ runner: env.runner, logger: silentLogger(), progress: false }));
    const durations = (await Promise.all(ctx.config.targets.map((tg) => ctx.repo.list(tg.project, tg.environment)))).flat().map((b) => b.meta.duration_ms);
    env.record('fleet', 'one backup of a near-empty db (median of all)', median(durations), 'ms');
    env.record('fleet', 'stock exec pg_dump | zstd per tenant', stock / TENANTS, 'ms');

    // 10,000 backups of one target.
    const target = ctx.config.targets[0];
    const template = await takeBackup(ctx, target, { type: 'manual' });
    const listCfg = path.join(dir, 'list.yml');
    const listRoot = path.join(dir, 'list-backups');
    writeFileSync(listCfg, stringify({ platform: { backup_root: listRoot, container_cli: 'podman' }, big: { database: { type: 'postgresql', container: names[0], databases: { production: 'x' } } } }));
    const lctx = contextFor(listCfg, defaultDeps({ runner: env.runner, logger: silentLogger(), progress: false }));
    mkdirSync(lctx.repo.databaseDir('big', 'production'), { recursive: true, mode: 0o700 });
    env.log(`writing ${LISTED} synthetic backups…`);
    const start = Date.parse('2024-01-01T00:00:00Z');
    for (let i = 0; i < LISTED; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, LISTED - i) }, async (_, j) => {
          const at = new Date(start + (i + j) * 3600_000);
          const id = backupStem(at);
          linkSync(template.path, lctx.repo.dumpPath('big', 'production', id));
          const iso = at.toISOString();
          await lctx.repo.saveMetadata({ ...template.meta, project: 'big', environment: 'production', database: 'x', id, file: id + DUMP_EXT, created_at: iso, started_at: iso, finished_at: iso });
        }),
      );
    }
    const list: number[] = [];
    for (let i = 0; i < env.rounds; i++) {
      const r = await env.pgfleet(['list', 'big', 'production', '--json', '--config', listCfg]);
      const n = (JSON.parse(r.stdout) as unknown[]).length;
      if (n !== LISTED) throw new Error(`list --json gave ${n} backups, expected ${LISTED}`);
      list.push(r.wallMs);
    }
    env.record('fleet', `list --json over ${LISTED} backups (median)`, median(list), 'ms', '< 1000', median(list) < 1000);
  },
};
