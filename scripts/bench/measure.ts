/**
 * What every section measures with: the median, and a settled server before each timed run (its
 * dirty buffers written by a CHECKPOINT, the host's page cache flushed by `sync`), so that no run
 * pays for the writes of the one before it.
 */
import type { BenchEnv } from './types.js';

/** The middle value (of an even count, the mean of the two middle ones). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A CHECKPOINT in every container, then `sync`. */
export async function settle(env: BenchEnv, containers: string[]): Promise<void> {
  await Promise.all(containers.map((c) => env.sandbox.sql(c, 'postgres', 'CHECKPOINT')));
  await env.runner.run(['sync']);
}
