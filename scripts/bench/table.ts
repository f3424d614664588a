/**
 * Table restore on the ~1 GB tenant: `pgfleet restore --table` of a tiny table (pgbench_branches,
 * one row per scale unit) and of the big one (pgbench_accounts, 100 000 rows per scale unit),
 * beside the live data (a new schema of the live database, the default), each paired with the
 * stock tools on the same dump, decompressed and already inside the container, into an empty
 * database:
 *   pg_restore -t <table>   the issue's yardstick: the bare table and its rows, no indexes or constraints
 *   pg_restore -L <list>    the table, its rows, its constraints and indexes: what a careful operator
 *                           lists by hand (`pg_restore -l | grep`), closer to what pgfleet brings back
 * Target (issue 13, median of the paired ratios): pgfleet ≤ 1.25× pg_restore -t, for each table.
 * Rounds interleave stock -t, pgfleet, stock -L; each timed run starts from a settled server
 * (CHECKPOINT and `sync`, as the restore section does). The raw rounds are recorded too.
 * BENCH_TABLE_BASELINE=<another build's CLI entry, its pgfleet.js>: each round also times that
 * build's restore --table beside this one's (which goes first alternates by round), and records
 * this / that (median of the pairs).
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchSection } from './types.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const STAGED = '/tmp/pgfleet-bench-table.dump';
const TABLES = ['pgbench_branches', 'pgbench_accounts'];
const TARGET = 1.25;
const BASELINE = process.env.BENCH_TABLE_BASELINE;

export const tableSection: BenchSection = {
  name: 'table',
  async run(env) {
    const big = await env.bigTenant();
    const cfg = ['--config', big.configFile];
    const sql = (db: string, q: string) => env.sandbox.sql(big.container, db, q);
    const settle = async () => {
      await sql('postgres', 'CHECKPOINT');
      await env.runner.run(['sync']);
    };
    const b = await env.pgfleet(['backup', 'bench', 'production', ...cfg]);
    const dump = b.stdout.trim().split('\n').pop()!;
    // The stock side's input, prepared untimed: the same dump, decompressed, inside the container,
    // and for each table the list an operator greps out of `pg_restore -l` (table, data, constraints, indexes).
    await env.runner.run(['bash', '-o', 'pipefail', '-c', 'zstd -dc -q "$1" | podman exec -i "$2" dd of="$3" bs=1M status=none', 'stage', dump, big.container, STAGED]);
    for (const t of TABLES) {
      const script = 'pg_restore -l "$1" | grep -E "^[0-9]+; [0-9]+ [0-9]+ (TABLE|TABLE DATA|CONSTRAINT|INDEX|FK CONSTRAINT) public $2 " > "$1.$2.list"';
      await env.runner.run(['podman', 'exec', big.container, 'sh', '-c', script, 'list', STAGED, t]);
    }
    const stockRun = async (flags: string[]) => {
      await sql('postgres', 'CREATE DATABASE bench_table_stock TEMPLATE template0');
      await settle();
      const ms = await env.time(['podman', 'exec', big.container, 'pg_restore', '--exit-on-error', '-U', 'postgres', ...flags, '-d', 'bench_table_stock', STAGED]);
      await sql('postgres', 'DROP DATABASE bench_table_stock');
      return ms;
    };
    const check = async (t: string) => {
      const n = (await sql(big.database, `SELECT count(*) FROM bench_restored.${t}`)).trim();
      const live = (await sql(big.database, `SELECT count(*) FROM public.${t}`)).trim();
      if (n !== live) throw new Error(`restore --table public.${t}: ${n} rows restored, ${live} live`);
      await sql(big.database, 'DROP SCHEMA bench_restored CASCADE');
    };
    const restoreArgs = (t: string) => ['restore', 'bench', 'production', '--latest', '--table', `public.${t}`, '--as', 'bench_restored', '--yes', ...cfg];
    const pgfleetRun = async (t: string) => {
      await settle();
      const r = await env.pgfleet(restoreArgs(t));
      await check(t);
      return r;
    };
    let baselineRuns = 0;
    const baselineRun = async (t: string) => {
      await settle();
      // Its debug log beside this build's (BENCH_LOG_DIR), as baseline-<n>-<table>.log.
      const logDir = process.env.BENCH_LOG_DIR;
      const t0 = performance.now();
      const child = env.runner.spawn([process.execPath, BASELINE!, ...restoreArgs(t)], { env: { PGFLEET_LOG_LEVEL: logDir ? 'debug' : 'warn' }, what: 'pgfleet (baseline build)' });
      child.stdout.resume();
      if (logDir) {
        mkdirSync(logDir, { recursive: true });
        child.stderr.pipe(createWriteStream(path.join(logDir, `baseline-${String(++baselineRuns).padStart(3, '0')}-${t}.log`)));
      } else child.stderr.resume();
      await child.done;
      const ms = performance.now() - t0;
      await check(t);
      return ms;
    };
    const raw: Record<string, { stockT: number[]; pgfleet: number[]; stockL: number[]; rss: number[]; baseline: number[] }> = {};
    for (let i = 0; i < env.rounds; i++) {
      const line: string[] = [];
      for (const t of TABLES) {
        const x = (raw[t] ??= { stockT: [], pgfleet: [], stockL: [], rss: [], baseline: [] });
        x.stockT.push(await stockRun(['-t', t]));
        // With a baseline build: which of the two goes first alternates by round.
        if (BASELINE && i % 2) x.baseline.push(await baselineRun(t));
        const r = await pgfleetRun(t);
        x.pgfleet.push(r.wallMs);
        x.rss.push(r.peakRssMb);
        if (BASELINE && !(i % 2)) x.baseline.push(await baselineRun(t));
        x.stockL.push(await stockRun(['-L', `${STAGED}.${t}.list`]));
        const s = (ms: number) => (ms / 1000).toFixed(2);
        line.push(`${t}: pgfleet ${s(r.wallMs)} s, pg_restore -t ${s(x.stockT[i])} s (${(r.wallMs / x.stockT[i]).toFixed(2)}x), -L ${s(x.stockL[i])} s (${(r.wallMs / x.stockL[i]).toFixed(2)}x)${BASELINE ? `, baseline build ${s(x.baseline[i])} s` : ''}`);
      }
      env.log(`round ${i + 1}: ${line.join('; ')}`);
    }
    await env.runner.run(['podman', 'exec', big.container, 'sh', '-c', 'rm -f -- "$1" "$1".*.list', 'rm', STAGED]);
    const secs = (xs: number[]) => xs.map((ms) => (ms / 1000).toFixed(2)).join(' ');
    for (const t of TABLES) {
      const x = raw[t];
      const pairsT = x.pgfleet.map((p, i) => p / x.stockT[i]);
      const pairsL = x.pgfleet.map((p, i) => p / x.stockL[i]);
      env.record('table', `${t}: pgfleet restore --table (median)`, median(x.pgfleet) / 1000, 's');
      env.record('table', `${t}: pg_restore -t (median)`, median(x.stockT) / 1000, 's');
      env.record('table', `${t}: pg_restore -L table+indexes (median)`, median(x.stockL) / 1000, 's');
      env.record('table', `${t}: pgfleet / -t (median of pairs)`, median(pairsT), 'x', `<= ${TARGET}`, median(pairsT) <= TARGET);
      env.record('table', `${t}: pgfleet / -L (median of pairs)`, median(pairsL), 'x');
      env.record('table', `${t}: pgfleet rounds`, secs(x.pgfleet), 's');
      env.record('table', `${t}: pg_restore -t rounds`, secs(x.stockT), 's');
      env.record('table', `${t}: pg_restore -L rounds`, secs(x.stockL), 's');
      env.record('table', `${t}: pgfleet peak RSS (max)`, Math.max(...x.rss), 'MB');
      if (BASELINE) {
        env.record('table', `${t}: baseline build rounds`, secs(x.baseline), 's');
        env.record('table', `${t}: pgfleet / baseline build (median of pairs)`, median(x.pgfleet.map((p, i) => p / x.baseline[i])), 'x');
        env.record('table', `${t}: baseline build / -t (median of pairs)`, median(x.baseline.map((p, i) => p / x.stockT[i])), 'x');
      }
    }
  },
};
