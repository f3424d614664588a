/**
 * Restore and verification on the ~1 GB tenant, side by side, all with 2 jobs: pgfleet restore
 * --no-safety-backup (checksum, staging, restore into a scratch database, counts, swap,
 * verify_on_restore)  ·  pgfleet restore --into  ·  the same with --jobs 1 (streamed into
 * pg_restore, no staged copy; informational)  ·  pgfleet verify-backups; each run right after a
 * run of the floor: pg_restore -j2 of the same dump, decompressed and already inside the
 * container, into an empty database.
 * Targets (median of the paired ratios): restore ≤ 1.15× the floor; verify-backups ≤ 1.25×; peak
 * RSS of pgfleet < 150 MB.
 * Every timed run starts from a quiet server: a CHECKPOINT and a `sync` first. Each run writes ~2 GB
 * (data, WAL, a staged copy); without them, the checkpoint and write-back one run leaves behind
 * land in whichever run comes next.
 */
import { median, settle as settleAll } from './measure.js';
import type { BenchSection } from './types.js';

const STAGED = '/tmp/pgfleet-bench-stock.dump';

export const restoreSection: BenchSection = {
  name: 'restore',
  async run(env) {
    const big = await env.bigTenant();
    const cfg = ['--config', big.configFile];
    const sql = (q: string) => env.sandbox.sql(big.container, 'postgres', q);
    const settle = () => settleAll(env, [big.container]);
    const b = await env.pgfleet(['backup', 'bench', 'production', ...cfg]);
    const dump = b.stdout.trim().split('\n').pop()!;
    // The stock side's input, prepared untimed: the same dump, decompressed, inside the container.
    await env.runner.run(['bash', '-o', 'pipefail', '-c', 'zstd -dc -q "$1" | podman exec -i "$2" dd of="$3" bs=1M status=none', 'stage', dump, big.container, STAGED]);
    // Each pgfleet run is paired with a stock run just before it, and the targets are checked on
    // the median of those paired ratios: this machine's speed drifts by half over minutes (the
    // same stock restore measured 9.8-16.6 s within one bench run), so runs minutes apart are not
    // comparable. The medians of the raw times are recorded too.
    const stockRun = async () => {
      await sql(`CREATE DATABASE bench_stock TEMPLATE template0`);
      await settle();
      const ms = await env.time(['podman', 'exec', big.container, 'pg_restore', '-j2', '--exit-on-error', '-U', 'postgres', '-d', 'bench_stock', STAGED]);
      await sql(`DROP DATABASE bench_stock`);
      return ms;
    };
    const variants: { key: string; label: string; run: () => Promise<{ wallMs: number; peakRssMb: number }> }[] = [
      {
        key: 'over',
        label: 'restore --no-safety-backup',
        run: async () => {
          const r = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--yes', '--no-safety-backup', '--jobs', '2', ...cfg]);
          const kept = /kept as (\S+);/.exec(r.stdout)?.[1];
          if (!kept) throw new Error(`restore did not say which database it kept:\n${r.stdout}`);
          await sql(`DROP DATABASE "${kept}"`);
          return r;
        },
      },
      { key: 'into', label: 'restore --into', run: () => intoRun('2') },
      { key: 'streamed', label: 'restore --into --jobs 1 (streamed)', run: () => intoRun('1') },
      { key: 'verify', label: 'verify-backups', run: () => env.pgfleet(['verify-backups', 'bench', 'production', '--jobs', '2', ...cfg]) },
    ];
    async function intoRun(jobs: string) {
      const r = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--yes', '--into', 'bench_into', '--jobs', jobs, ...cfg]);
      await sql(`DROP DATABASE bench_into`);
      return r;
    }
    const stock: number[] = [];
    const rss: number[] = [];
    const wall: Record<string, number[]> = {};
    const ratio: Record<string, number[]> = {};
    for (let i = 0; i < env.rounds; i++) {
      const line: string[] = [];
      for (const v of variants) {
        const s = await stockRun();
        await settle();
        const r = await v.run();
        stock.push(s);
        rss.push(r.peakRssMb);
        (wall[v.key] ??= []).push(r.wallMs);
        (ratio[v.key] ??= []).push(r.wallMs / s);
        line.push(`${v.label} ${(r.wallMs / 1000).toFixed(1)} s / ${(s / 1000).toFixed(1)} s = ${(r.wallMs / s).toFixed(2)}x`);
      }
      env.log(`round ${i + 1} (pgfleet / pg_restore -j2 just before it): ${line.join(', ')}`);
    }
    await env.runner.run(['podman', 'exec', big.container, 'rm', '-f', STAGED]);
    env.record('restore', 'pg_restore -j2 of the staged dump (median)', median(stock) / 1000, 's');
    for (const v of variants) env.record('restore', `pgfleet ${v.label} (median)`, median(wall[v.key]) / 1000, 's');
    const targets: [string, string, number][] = [
      ['over', 'restore', 1.15],
      ['into', 'restore --into', 1.15],
      ['verify', 'verify-backups', 1.25],
    ];
    for (const [key, label, max] of targets) {
      const paired = median(ratio[key]);
      env.record('restore', `${label} / pg_restore -j2 (median of pairs)`, paired, 'x', `<= ${max}`, paired <= max);
      env.record('restore', `${label} / pg_restore -j2 (ratio of medians)`, median(wall[key]) / median(stock), 'x');
    }
    env.record('restore', 'pgfleet peak RSS (max)', Math.max(...rss), 'MB', '< 150', Math.max(...rss) < 150);
  },
};
