#!/usr/bin/env node
/**
 * `npm run bench [-- <section>…]`: pgfleet side by side with the stock tools, in one run, on real
 * PostgreSQL 15 in real containers. Prints a table and writes the figures as JSON to
 * bench-results/. Sections: scripts/bench/*.ts. BENCH_ROUNDS (default 5), BENCH_SCALE (pgbench
 * scale of the big tenant, default 30 ≈ 1 GB with the events table), BENCH_LOG_DIR (keep every
 * pgfleet run's debug log there, numbered in run order).
 */
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { Runner } from '../lib/process/runner.js';
import { Sandbox } from './sandbox/tenants.js';
import { PACKAGE_ROOT } from '../lib/core/package.js';
import { EXIT } from '../lib/core/errors.js';
import { SECTIONS } from './bench/index.js';
import type { BenchEnv, BigTenant } from './bench/types.js';

interface Row {
  section: string;
  name: string;
  value: number | string;
  unit: string;
  target?: string;
  ok?: boolean;
}

const CLI = path.join(PACKAGE_ROOT, 'dist', 'bin', 'pgfleet.js');

/** Peak RSS (VmHWM) of a process, read while it runs: the last reading before exit is the peak. */
function vmHwmMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function buildBigTenant(env: BenchEnv, scale: number): Promise<BigTenant> {
  const container = `pgfleet-bench-${process.pid}`;
  const database = 'bench_production';
  env.log(`building the big tenant (pgbench scale ${scale} + jsonb events) in container ${container}…`);
  const t0 = performance.now();
  // autovacuum off: each restore leaves ~1 GB of freshly loaded tables whose autovacuum (VACUUM
  // ANALYZE, tens of seconds) would otherwise land in whichever timed run comes next.
  await env.sandbox.startTenant({
    name: container,
    databases: [database],
    settings: { max_wal_size: '4GB', checkpoint_timeout: '30min', shared_buffers: '256MB', maintenance_work_mem: '256MB', autovacuum: 'off' },
  });
  await env.runner.run(['podman', 'exec', container, 'pgbench', '-i', '-q', '-s', String(scale), '-U', 'postgres', database], { what: 'pgbench -i' });
  const events = scale * 70000;
  await env.sandbox.sql(
    container,
    database,
    `CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, payload jsonb NOT NULL);
     INSERT INTO events (at, kind, payload)
       SELECT timestamptz '2025-01-01' + g * interval '1 second', (ARRAY['click','view','purchase','signup'])[1 + g % 4],
              jsonb_build_object('user', g % 100000, 'session', md5(g::text), 'path', '/items/' || (g % 5000), 'ua', 'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g % 97),
                                 'tags', jsonb_build_array('t' || (g % 13), 't' || (g % 7)), 'amount', (g % 10000) / 100.0)
       FROM generate_series(1, ${events}) g;
     CREATE INDEX events_at ON events (at);
     VACUUM ANALYZE;`,
  );
  const size = (await env.sandbox.sql(container, database, `SELECT pg_database_size('${database}')`)).trim();
  env.log(`big tenant ready: ${(Number(size) / 1e9).toFixed(2)} GB in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const cfgDir = path.join(env.dir, 'big');
  mkdirSync(cfgDir, { recursive: true });
  const backupRoot = path.join(cfgDir, 'backups');
  const configFile = path.join(cfgDir, 'projects.yml');
  writeFileSync(
    configFile,
    stringify({ platform: { backup_root: backupRoot, container_cli: 'podman' }, bench: { database: { type: 'postgresql', container, databases: { production: database } } } }),
  );
  return { container, database, configFile, backupRoot, sizeBytes: Number(size) } as BigTenant;
}

async function main() {
  const wanted = process.argv.slice(2);
  const sections = wanted.length ? SECTIONS.filter((s) => wanted.includes(s.name)) : SECTIONS;
  if (wanted.length && sections.length !== wanted.length) throw new Error(`unknown section; known: ${SECTIONS.map((s) => s.name).join(', ')}`);
  const runner = new Runner();
  const sandbox = new Sandbox(runner);
  const dir = path.join(os.tmpdir(), `pgfleet-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const rows: Row[] = [];
  let runs = 0;
  let big: Promise<BigTenant> | undefined;
  const env: BenchEnv = {
    runner,
    sandbox,
    dir,
    rounds: Number(process.env.BENCH_ROUNDS ?? 5),
    bigTenant: () => (big ??= buildBigTenant(env, Number(process.env.BENCH_SCALE ?? 30))),
    async pgfleet(args, extraEnv = {}) {
      const t0 = performance.now();
      const logDir = process.env.BENCH_LOG_DIR;
      const child = runner.spawn([process.execPath, CLI, ...args], { env: { PGFLEET_LOG_LEVEL: logDir ? 'debug' : 'warn', ...extraEnv }, what: 'pgfleet' });
      if (logDir) {
        mkdirSync(logDir, { recursive: true });
        child.stderr.pipe(createWriteStream(path.join(logDir, `${String(++runs).padStart(3, '0')}-${args[0]}.log`)));
      }
      let peak = 0;
      const poll = setInterval(() => child.pid && (peak = Math.max(peak, vmHwmMb(child.pid))), 50);
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      try {
        await child.done;
      } finally {
        clearInterval(poll);
      }
      return { wallMs: performance.now() - t0, peakRssMb: peak, stdout };
    },
    async time(argv, o = {}) {
      const t0 = performance.now();
      await runner.run(argv, { env: o.env });
      return performance.now() - t0;
    },
    record(section, name, value, unit, target, ok) {
      rows.push({ section, name, value, unit, target, ok });
      env.log(`${section}: ${name} = ${typeof value === 'number' ? value.toFixed(2) : value} ${unit}${target ? ` (target ${target}: ${ok ? 'met' : 'NOT met'})` : ''}`);
    },
    log: (msg) => process.stderr.write(`[bench] ${msg}\n`),
  };
  try {
    for (const s of sections) {
      env.log(`— section ${s.name}`);
      await s.run(env);
    }
  } finally {
    await sandbox.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  const widths = [10, 44, 12, 8, 14, 6];
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i])).join(' ');
  console.log(line(['SECTION', 'MEASURE', 'VALUE', 'UNIT', 'TARGET', 'MET']));
  for (const r of rows) console.log(line([r.section, r.name, typeof r.value === 'number' ? r.value.toFixed(2) : r.value, r.unit, r.target ?? '', r.ok === undefined ? '' : r.ok ? 'yes' : 'NO']));
  const outDir = path.join(PACKAGE_ROOT, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ when: new Date().toISOString(), host: { cpus: os.cpus().length, memGb: Math.round(os.totalmem() / 2 ** 30) }, rounds: env.rounds, results: rows }, null, 2) + '\n');
  console.log(`figures written to ${path.relative(process.cwd(), file)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(EXIT.FAILED);
});
