/**
 * Backup throughput on the ~1 GB tenant, side by side, rounds interleaved, each timed run on a
 * settled server (scripts/bench/measure.ts):
 *   the floor: pg_dump -Fc -Z0 through the container CLI into /dev/null (what PostgreSQL can hand out)
 *   · pgfleet backup · pg_dump -Fc -Z0 | zstd -<level> -T0 (the raw pipeline, at pgfleet's level)
 *   · pg_dump -Fc -Z9 (the platform's previous command)
 * Each pgfleet run is paired with the floor and the raw pipeline of its round (this machine's
 * speed drifts over minutes); the targets are checked on the median of those paired ratios, the
 * ratio of the medians printed beside it. Targets: pgfleet ≤ 1.25× the floor, ≥ 3.5× faster than
 * -Z9 with a dump no larger; peak RSS < 150 MB.
 */
import { statSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS } from '../../lib/config/load.js';
import { median, settle } from './measure.js';
import type { BenchSection } from './types.js';

export const backupSection: BenchSection = {
  name: 'backup',
  async run(env) {
    const big = await env.bigTenant();
    const level = DEFAULTS.compression_level;
    const raw = path.join(env.dir, 'raw.dump.zst');
    const z9 = path.join(env.dir, 'z9.dump');
    // Stock pipelines as an operator would type them; the arguments are passed positionally, never spliced into the script.
    const floorPipe = ['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z0 -U postgres -d "$2" > /dev/null', 'floor', big.container, big.database];
    const rawPipe = ['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z0 -U postgres -d "$2" | zstd "-$4" -T0 -q -c > "$3"', 'raw', big.container, big.database, raw, String(level)];
    const z9Pipe = ['bash', '-o', 'pipefail', '-c', 'podman exec "$1" pg_dump -Fc -Z9 -U postgres -d "$2" > "$3"', 'z9', big.container, big.database, z9];
    const timed = async (argv: string[]) => {
      await settle(env, [big.container]);
      return env.time(argv);
    };
    const t = { floor: [] as number[], pgfleet: [] as number[], raw: [] as number[], z9: [] as number[], rss: [] as number[] };
    const pairs = { floor: [] as number[], raw: [] as number[] };
    let pgfleetSize = 0;
    for (let i = 0; i < env.rounds; i++) {
      t.floor.push(await timed(floorPipe));
      await settle(env, [big.container]);
      const r = await env.pgfleet(['backup', 'bench', 'production', '--config', big.configFile]);
      t.pgfleet.push(r.wallMs);
      t.rss.push(r.peakRssMb);
      const file = r.stdout.trim().split('\n').pop()!;
      pgfleetSize = statSync(file).size;
      rmSync(file);
      rmSync(file + '.json');
      t.raw.push(await timed(rawPipe));
      t.z9.push(await timed(z9Pipe));
      pairs.floor.push(t.pgfleet[i] / t.floor[i]);
      pairs.raw.push(t.pgfleet[i] / t.raw[i]);
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      env.log(`round ${i + 1}: floor ${s(t.floor[i])}, pgfleet ${s(t.pgfleet[i])} (${pairs.floor[i].toFixed(2)}x the floor), raw ${s(t.raw[i])}, -Z9 ${s(t.z9[i])}`);
    }
    const rawSize = statSync(raw).size;
    const z9Size = statSync(z9).size;
    const [f, p, r, z] = [median(t.floor), median(t.pgfleet), median(t.raw), median(t.z9)];
    env.record('backup', 'database size', big.sizeBytes / 1e6, 'MB');
    env.record('backup', 'floor: pg_dump -Fc -Z0 > /dev/null (median)', f / 1000, 's');
    env.record('backup', 'pgfleet backup wall (median)', p / 1000, 's');
    env.record('backup', `pg_dump -Z0 | zstd -${level} -T0 wall (median)`, r / 1000, 's');
    env.record('backup', 'pg_dump -Fc -Z9 wall (median)', z / 1000, 's');
    env.record('backup', 'pgfleet / floor (median of pairs)', median(pairs.floor), 'x', '<= 1.25', median(pairs.floor) <= 1.25);
    env.record('backup', 'pgfleet / floor (ratio of medians)', p / f, 'x');
    env.record('backup', 'pgfleet / raw pipeline (median of pairs)', median(pairs.raw), 'x');
    env.record('backup', '-Z9 / pgfleet (speed-up)', z / p, 'x', '>= 3.5', z / p >= 3.5);
    env.record('backup', 'pgfleet dump size', pgfleetSize / 1e6, 'MB');
    env.record('backup', 'raw pipeline dump size', rawSize / 1e6, 'MB');
    env.record('backup', '-Z9 dump size', z9Size / 1e6, 'MB');
    env.record('backup', 'pgfleet size / -Z9 size', pgfleetSize / z9Size, 'x', '<= 1.00', pgfleetSize <= z9Size);
    env.record('backup', 'pgfleet peak RSS (max)', Math.max(...t.rss), 'MB', '< 150', Math.max(...t.rss) < 150);
    env.record('backup', 'raw rounds (s): floor | pgfleet | raw | -Z9', [t.floor, t.pgfleet, t.raw, t.z9].map((xs) => xs.map((x) => (x / 1000).toFixed(2)).join(' ')).join(' | '), '');
    rmSync(raw, { force: true });
    rmSync(z9, { force: true });
  },
};
