/**
 * Restore and verification on the ~1 GB tenant, side by side, rounds interleaved, all with 2 jobs:
 *   pg_restore -j2 of the same dump, decompressed and already inside the container, into an empty
 *   database (the floor)  ·  pgfleet restore --no-safety-backup (checksum, staging, restore into a
 *   scratch database, counts, swap, verify_on_restore)  ·  pgfleet restore --into  ·  the same with
 *   --jobs 1 (streamed into pg_restore, no staged copy; informational)  ·  pgfleet verify-backups
 * Targets: restore ≤ 1.15× the floor; verify-backups ≤ 1.25×; peak RSS of pgfleet < 150 MB.
 * Every timed run starts from a quiet server: a CHECKPOINT and a `sync` first. Each run writes ~2 GB
 * (data, WAL, a staged copy); without them, the checkpoint and write-back one run leaves behind
 * land in whichever run comes next.
 */
import type { BenchSection } from './types.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const STAGED = '/tmp/pgfleet-bench-stock.dump';

export const restoreSection: BenchSection = {
  name: 'restore',
  async run(env) {
    const big = await env.bigTenant();
    const cfg = ['--config', big.configFile];
    const sql = (q: string) => env.sandbox.sql(big.container, 'postgres', q);
    const settle = async () => {
      await sql('CHECKPOINT');
      await env.runner.run(['sync']);
    };
    const b = await env.pgfleet(['backup', 'bench', 'production', ...cfg]);
    const dump = b.stdout.trim().split('\n').pop()!;
    // The stock side's input, prepared untimed: the same dump, decompressed, inside the container.
    await env.runner.run(['bash', '-o', 'pipefail', '-c', 'zstd -dc -q "$1" | podman exec -i "$2" dd of="$3" bs=1M status=none', 'stage', dump, big.container, STAGED]);
    const t = { stock: [] as number[], over: [] as number[], into: [] as number[], verify: [] as number[], streamed: [] as number[], rss: [] as number[] };
    for (let i = 0; i < env.rounds; i++) {
      await sql(`CREATE DATABASE bench_stock TEMPLATE template0`);
      await settle();
      t.stock.push(await env.time(['podman', 'exec', big.container, 'pg_restore', '-j2', '--exit-on-error', '-U', 'postgres', '-d', 'bench_stock', STAGED]));
      await sql(`DROP DATABASE bench_stock`);

      await settle();
      const over = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--yes', '--no-safety-backup', '--jobs', '2', ...cfg]);
      t.over.push(over.wallMs);
      const kept = /kept as (\S+);/.exec(over.stdout)?.[1];
      if (!kept) throw new Error(`restore did not say which database it kept:\n${over.stdout}`);
      await sql(`DROP DATABASE "${kept}"`);

      await settle();
      const into = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--yes', '--into', 'bench_into', '--jobs', '2', ...cfg]);
      t.into.push(into.wallMs);
      await sql(`DROP DATABASE bench_into`);

      await settle();
      const streamed = await env.pgfleet(['restore', 'bench', 'production', '--latest', '--yes', '--into', 'bench_into', '--jobs', '1', ...cfg]);
      t.streamed.push(streamed.wallMs);
      await sql(`DROP DATABASE bench_into`);

      await settle();
      const verify = await env.pgfleet(['verify-backups', 'bench', 'production', '--jobs', '2', ...cfg]);
      t.verify.push(verify.wallMs);
      t.rss.push(over.peakRssMb, into.peakRssMb, streamed.peakRssMb, verify.peakRssMb);
      const s = (x: number[]) => (x[i] / 1000).toFixed(1);
      env.log(`round ${i + 1}: pg_restore -j2 ${s(t.stock)} s, pgfleet restore ${s(t.over)} s, --into ${s(t.into)} s, --into --jobs 1 (streamed) ${s(t.streamed)} s, verify-backups ${s(t.verify)} s`);
    }
    await env.runner.run(['podman', 'exec', big.container, 'rm', '-f', STAGED]);
    const [floor, over, into, verify] = [median(t.stock), median(t.over), median(t.into), median(t.verify)];
    env.record('restore', 'pg_restore -j2 of the staged dump (median)', floor / 1000, 's');
    env.record('restore', 'pgfleet restore --no-safety-backup (median)', over / 1000, 's');
    env.record('restore', 'pgfleet restore --into (median)', into / 1000, 's');
    env.record('restore', 'pgfleet restore --into --jobs 1, streamed (median)', median(t.streamed) / 1000, 's');
    env.record('restore', 'pgfleet verify-backups (median)', verify / 1000, 's');
    env.record('restore', 'restore / pg_restore -j2', over / floor, 'x', '<= 1.15', over / floor <= 1.15);
    env.record('restore', 'restore --into / pg_restore -j2', into / floor, 'x', '<= 1.15', into / floor <= 1.15);
    env.record('restore', 'verify-backups / pg_restore -j2', verify / floor, 'x', '<= 1.25', verify / floor <= 1.25);
    env.record('restore', 'pgfleet peak RSS (max)', Math.max(...t.rss), 'MB', '< 150', Math.max(...t.rss) < 150);
  },
};
