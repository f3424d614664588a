/**
 * Fleet operations, measured as a user would run them:
 *   - 100 small tenants in 4 containers (25 databases each, 2000 rows each):
 *     `scheduled-backup --concurrency 2` vs a stock sequential loop of
 *     `podman exec pg_dump -Fc -Z0 | zstd -3 > file` over the same databases, interleaved (the
 *     order swapped every round), each timed run started after a CHECKPOINT in every container and
 *     a sync; target: the median of the per-round ratios ≤ 0.75;
 *   - `status --json` and `list --json` over 1,000 targets (250 per container): the 100 real
 *     tenants' backups, each target given the backups of one of them (dumps hard-linked, metadata
 *     rewritten through Repository.saveMetadata), and a few databases kept by restores in every
 *     container; targets: status ≤ 2 s, list --json ≤ 1 s. status and list never connect to a
 *     target's own database (status lists pg_database once per container), so 900 of the
 *     1,000 target databases are named but not created;
 *   - `list --json` over 10,000 backups of one target (synthetic, the same way), target < 1 s.
 * Medians, per-round ratios and the raw rounds are recorded (the JSON holds them all).
 */
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { contextFor, defaultDeps } from '../../lib/runtime/context.js';
import { takeBackup } from '../../lib/backup/take.js';
import { silentLogger } from '../../lib/core/log.js';
import { backupStem, DUMP_EXT } from '../../lib/storage/repository.js';
import { median, settle } from './measure.js';
import type { BenchEnv, BenchSection } from './types.js';

const CONTAINERS = 4;
const PER_CONTAINER = 25;
const ROWS = 2000;
const STATUS_TARGETS = 1000;
const LISTED = 10_000;
const raw = (xs: number[], unit: 'ms' | 's' | 'x') => xs.map((x) => (unit === 's' ? (x / 1000).toFixed(2) : unit === 'x' ? x.toFixed(3) : x.toFixed(0))).join(' ');

interface Tenant {
  container: string;
  database: string;
}

async function startTenants(env: BenchEnv): Promise<Tenant[]> {
  const tenants: Tenant[] = [];
  await Promise.all(
    Array.from({ length: CONTAINERS }, async (_, c) => {
      const container = `pgfleet-fleet-${process.pid}-${c + 1}`;
      const databases = Array.from({ length: PER_CONTAINER }, (_, i) => `tenant_${String(c * PER_CONTAINER + i + 1).padStart(3, '0')}`);
      await env.sandbox.startTenant({ name: container, databases });
      for (const database of databases) {
        await env.sandbox.sql(container, database, `CREATE TABLE items (id int PRIMARY KEY, label text, at timestamptz DEFAULT now()); INSERT INTO items (id, label) SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g; VACUUM ANALYZE items;`);
        tenants.push({ container, database });
      }
    }),
  );
  return tenants.sort((a, b) => a.database.localeCompare(b.database));
}

export const fleetSection: BenchSection = {
  name: 'fleet',
  async run(env) {
    const dir = path.join(env.dir, 'fleet');
    mkdirSync(dir, { recursive: true });
    env.log(`starting ${CONTAINERS} containers with ${PER_CONTAINER} tenants of ${ROWS} rows each…`);
    const tenants = await startTenants(env);
    const containers = [...new Set(tenants.map((t) => t.container))];
    const configFile = path.join(dir, 'projects.yml');
    const backupRoot = path.join(dir, 'backups');
    const doc: Record<string, unknown> = { platform: { backup_root: backupRoot, container_cli: 'podman', concurrency: 2 } };
    for (const t of tenants) doc[t.database.replace('tenant_', 't')] = { database: { type: 'postgresql', container: t.container, databases: { production: t.database } } };
    writeFileSync(configFile, stringify(doc));

    // scheduled-backup at concurrency 2 and the stock loop, interleaved (A B, then B A) so that load from elsewhere hits both alike.
    const t = { c2: [] as number[], stock: [] as number[] };
    const stockLoop = async () => {
      const t0 = performance.now();
      for (const tn of tenants)
        await env.runner.run(['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z0 -U postgres -d "$2" | zstd -3 -q -c > "$3"', 'stock', tn.container, tn.database, path.join(dir, 'stock.dump.zst')]);
      return performance.now() - t0;
    };
    const pgfleet = async () => (await env.pgfleet(['scheduled-backup', '--concurrency', '2', '--config', configFile])).wallMs;
    for (let i = 0; i < env.rounds; i++) {
      for (const which of i % 2 ? (['stock', 'c2'] as const) : (['c2', 'stock'] as const)) {
        await settle(env, containers);
        t[which].push(which === 'c2' ? await pgfleet() : await stockLoop());
      }
      env.log(`round ${i + 1}: scheduled-backup concurrency 2 ${(t.c2[i] / 1000).toFixed(1)} s, stock loop ${(t.stock[i] / 1000).toFixed(1)} s (${(t.c2[i] / t.stock[i]).toFixed(2)}×)`);
    }
    const ratios = t.c2.map((c, i) => c / t.stock[i]);
    const n = tenants.length;
    env.record('fleet', `${n} tenants: scheduled-backup c2 (median)`, median(t.c2) / 1000, 's');
    env.record('fleet', `${n} tenants: stock exec pg_dump | zstd loop (median)`, median(t.stock) / 1000, 's');
    env.record('fleet', 'scheduled-backup c2 / stock loop (median of pairs)', median(ratios), 'x', '<= 0.75', median(ratios) <= 0.75);
    env.record('fleet', 'scheduled-backup c2 / stock loop (ratio of medians)', median(t.c2) / median(t.stock), 'x');
    env.record('fleet', 'raw rounds: scheduled-backup c2', raw(t.c2, 's'), 's');
    env.record('fleet', 'raw rounds: stock loop', raw(t.stock, 's'), 's');
    env.record('fleet', 'raw rounds: per-pair ratios', raw(ratios, 'x'), 'x');
    env.record('fleet', 'per target: c2 wall / tenants, stock / tenants', `${(median(t.c2) / n).toFixed(0)} / ${(median(t.stock) / n).toFixed(0)}`, 'ms');
    const ctx = contextFor(configFile, defaultDeps({ runner: env.runner, logger: silentLogger(), progress: false }));
    const surveys = await Promise.all(ctx.config.targets.map((tg) => ctx.repo.list(tg.project, tg.environment)));
    env.record('fleet', 'one backup of a small tenant (median of duration_ms)', median(surveys.flat().map((b) => b.meta.duration_ms)), 'ms');

    // 1,000 targets over the same containers, each with the backups of one real tenant.
    const bigCfg = path.join(dir, 'fleet-1000.yml');
    const bigRoot = path.join(dir, 'fleet-1000-backups');
    const per = STATUS_TARGETS / CONTAINERS;
    const bigDoc: Record<string, unknown> = { platform: { backup_root: bigRoot, container_cli: 'podman' } };
    const source = new Map<string, number>(); // project → index of the real tenant whose backups it gets
    for (let k = 0; k < STATUS_TARGETS; k++) {
      const c = Math.floor(k / per);
      const j = k % per;
      const real = j < PER_CONTAINER ? c * PER_CONTAINER + j : c * PER_CONTAINER + (j % PER_CONTAINER);
      const project = `p${String(k + 1).padStart(4, '0')}`;
      const database = j < PER_CONTAINER ? tenants[real].database : `tenant_${String(k + 1).padStart(4, '0')}`;
      bigDoc[project] = { database: { type: 'postgresql', container: containers[c], databases: { production: database } } };
      source.set(project, real);
    }
    writeFileSync(bigCfg, stringify(bigDoc));
    const bctx = contextFor(bigCfg, defaultDeps({ runner: env.runner, logger: silentLogger(), progress: false }));
    env.log(`writing the backups of ${STATUS_TARGETS} targets (hard links to the real dumps)…`);
    let files = 0;
    for (let k = 0; k < bctx.config.targets.length; k += 50) {
      await Promise.all(
        bctx.config.targets.slice(k, k + 50).map(async (tg) => {
          mkdirSync(bctx.repo.databaseDir(tg.project, tg.environment), { recursive: true, mode: 0o700 });
          for (const b of surveys[source.get(tg.project)!]) {
            linkSync(b.path, bctx.repo.dumpPath(tg.project, tg.environment, b.meta.id));
            await bctx.repo.saveMetadata({ ...b.meta, project: tg.project, environment: tg.environment, database: tg.database });
            files++;
          }
        }),
      );
    }
    // A restore's leftovers in every container: status lists them under their targets.
    for (const c of containers) await env.sandbox.sql(c, 'postgres', `CREATE DATABASE "${tenants[containers.indexOf(c) * PER_CONTAINER].database}__before_20250101_020000"`);
    const st = { status: [] as number[], list: [] as number[] };
    for (let i = 0; i < env.rounds; i++) {
      const s = await env.pgfleet(['status', '--json', '--config', bigCfg]);
      const report = JSON.parse(s.stdout) as { targets: { leftover_databases: string[] | null }[] };
      if (report.targets.length !== STATUS_TARGETS) throw new Error(`status gave ${report.targets.length} targets, expected ${STATUS_TARGETS}`);
      const kept = report.targets.reduce((a, x) => a + (x.leftover_databases?.length ?? 0), 0);
      if (kept !== CONTAINERS) throw new Error(`status listed ${kept} kept databases, expected ${CONTAINERS}`);
      st.status.push(s.wallMs);
      const l = await env.pgfleet(['list', '--json', '--config', bigCfg]);
      const got = (JSON.parse(l.stdout) as unknown[]).length;
      if (got !== files) throw new Error(`list --json gave ${got} backups, expected ${files}`);
      st.list.push(l.wallMs);
    }
    env.record('fleet', `status --json, ${STATUS_TARGETS} targets / ${files} backups (median)`, median(st.status), 'ms', '<= 2000', median(st.status) <= 2000);
    env.record('fleet', 'raw rounds: status --json', raw(st.status, 'ms'), 'ms');
    env.record('fleet', `list --json, ${STATUS_TARGETS} targets (median)`, median(st.list), 'ms', '<= 1000', median(st.list) <= 1000);
    env.record('fleet', 'raw rounds: list --json', raw(st.list, 'ms'), 'ms');

    // 10,000 backups of one target.
    const target = ctx.config.targets[0];
    const template = await takeBackup(ctx, target, { type: 'manual' });
    const listCfg = path.join(dir, 'list.yml');
    const listRoot = path.join(dir, 'list-backups');
    writeFileSync(listCfg, stringify({ platform: { backup_root: listRoot, container_cli: 'podman' }, big: { database: { type: 'postgresql', container: containers[0], databases: { production: 'x' } } } }));
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
      const got = (JSON.parse(r.stdout) as unknown[]).length;
      if (got !== LISTED) throw new Error(`list --json gave ${got} backups, expected ${LISTED}`);
      list.push(r.wallMs);
    }
    env.record('fleet', `list --json over ${LISTED} backups of one target (median)`, median(list), 'ms', '< 1000', median(list) < 1000);
    env.record('fleet', 'raw rounds: list --json of one target', raw(list, 'ms'), 'ms');
  },
};
