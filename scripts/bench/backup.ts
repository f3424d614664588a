/**
 * Backup throughput on the ~1 GB tenant, side by side, rounds interleaved:
 *   pgfleet backup  ·  pg_dump -Fc -Z0 | zstd -3 -T0 (the raw pipeline)  ·  pg_dump -Fc -Z9 (the platform's current command)
 * Targets: pgfleet ≤ 1.10× the raw pipeline's wall time; ≥ 4× faster than -Z9 with a dump no larger; peak RSS < 150 MB.
 */
import { statSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { BenchSection } from './types.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const backupSection: BenchSection = {
  name: 'backup',
  async run(env) {
    const big = await env.bigTenant();
    const raw = path.join(env.dir, 'raw.dump.zst');
    const z9 = path.join(env.dir, 'z9.dump');
    // Stock pipelines as an operator would type them; the arguments are passed positionally, never spliced into the script.
    const rawPipe = ['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z0 -U postgres -d "$2" | zstd -3 -T0 -q -c > "$3"', 'raw', big.container, big.database, raw];
    const z9Pipe = ['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z9 -U postgres -d "$2" > "$3"', 'z9', big.container, big.database, z9];
    const t = { pgfleet: [] as number[], raw: [] as number[], z9: [] as number[], rss: [] as number[] };
    let pgfleetSize = 0;
    for (let i = 0; i < env.rounds; i++) {
      const r = await env.pgfleet(['backup', 'bench', 'production', '--config', big.configFile]);
      t.pgfleet.push(r.wallMs);
      t.rss.push(r.peakRssMb);
      const file = r.stdout.trim().split('\n').pop()!;
      pgfleetSize = statSync(file).size;
      rmSync(file);
      rmSync(file + '.json');
      t.raw.push(await env.time(rawPipe));
      t.z9.push(await env.time(z9Pipe));
      env.log(`round ${i + 1}: pgfleet ${(t.pgfleet[i] / 1000).toFixed(1)} s, raw ${(t.raw[i] / 1000).toFixed(1)} s, -Z9 ${(t.z9[i] / 1000).toFixed(1)} s`);
    }
    const rawSize = statSync(raw).size;
    const z9Size = statSync(z9).size;
    const [p, r, z] = [median(t.pgfleet), median(t.raw), median(t.z9)];
    env.record('backup', 'database size', big.sizeBytes / 1e6, 'MB');
    env.record('backup', 'pgfleet backup wall (median)', p / 1000, 's');
    env.record('backup', 'pg_dump -Z0 | zstd -3 -T0 wall (median)', r / 1000, 's');
    env.record('backup', 'pg_dump -Fc -Z9 wall (median)', z / 1000, 's');
    env.record('backup', 'pgfleet / raw pipeline', p / r, 'x', '<= 1.10', p / r <= 1.1);
    env.record('backup', '-Z9 / pgfleet (speed-up)', z / p, 'x', '>= 4', z / p >= 4);
    env.record('backup', 'pgfleet dump size', pgfleetSize / 1e6, 'MB');
    env.record('backup', 'raw pipeline dump size', rawSize / 1e6, 'MB');
    env.record('backup', '-Z9 dump size', z9Size / 1e6, 'MB');
    env.record('backup', 'pgfleet size / -Z9 size', pgfleetSize / z9Size, 'x', '<= 1.00', pgfleetSize <= z9Size);
    env.record('backup', 'pgfleet peak RSS (max)', Math.max(...t.rss), 'MB', '< 150', Math.max(...t.rss) < 150);
    rmSync(raw, { force: true });
    rmSync(z9, { force: true });
  },
};
