/**
 * What a target's backup history says that one backup cannot: a dump that shrank or grew far from
 * its recent median (lost data looks like a dump that suddenly shrinks), and a backup time whose
 * trend would cross a limit. Pure: the history and the clock are parameters; every flag says its
 * numbers. Used by `status` (a shrink is a problem) and `report` (every flag, drawn).
 */

export interface Sample {
  id: string;
  created_at: string;
  size_bytes: number;
  duration_ms: number;
}

export interface SizeAnomaly {
  kind: 'shrank' | 'grew';
  id: string;
  size_bytes: number;
  /** The median size of the backups before it (at most `window`). */
  median_bytes: number;
  /** size / median − 1: −0.6 is 60 % smaller. */
  change: number;
  /** How many earlier backups the median is of. */
  of: number;
  message: string;
}

/** Backups before the latest that the median is taken of, and the fewest that make one. */
export const MEDIAN_WINDOW = 7;
export const MEDIAN_MIN = 3;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const pct = (x: number) => `${Math.round(Math.abs(x) * 100)} %`;
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * The backup `at` (default the newest) against the median of the `window` complete backups before
 * it: flagged when it is more than `share` smaller or larger. null: no flag, or fewer than
 * MEDIAN_MIN earlier backups to judge by. `newestFirst`: complete backups, newest first.
 */
export function sizeAnomaly(newestFirst: readonly Sample[], share: number, at = 0, window = MEDIAN_WINDOW): SizeAnomaly | null {
  const b = newestFirst[at];
  const before = newestFirst.slice(at + 1, at + 1 + window).map((x) => x.size_bytes);
  if (!b || before.length < MEDIAN_MIN) return null;
  const m = median(before);
  if (m <= 0) return null;
  const change = b.size_bytes / m - 1;
  if (Math.abs(change) <= share) return null;
  const kind = change < 0 ? 'shrank' : 'grew';
  const message = `dump ${b.id} ${kind} ${pct(change)} against the median of the ${before.length} before it (${mib(b.size_bytes)} vs ${mib(m)}; flagged beyond ${pct(share)})`;
  return { kind, id: b.id, size_bytes: b.size_bytes, median_bytes: m, change, of: before.length, message };
}

export interface DurationTrend {
  /** Least-squares slope of backup time, milliseconds per day. */
  ms_per_day: number;
  /** The fitted backup time now. */
  now_ms: number;
  limit_ms: number;
  /** When the fitted line reaches the limit (ISO), within the horizon; null: not within it. */
  crosses_at: string | null;
  message: string | null;
}

/**
 * The least-squares line through the backup times of the last `days` days (at least 5 backups),
 * and when it reaches `limitMs` (the backup window, or max_backup_age) if that is within
 * `horizonDays` of now. A flag (message) only for a line that rises and crosses within the horizon.
 */
export function durationTrend(newestFirst: readonly Sample[], o: { now: Date; limitMs: number; limitName: string; days?: number; horizonDays?: number }): DurationTrend | null {
  const DAY = 86_400_000;
  const from = o.now.getTime() - (o.days ?? 60) * DAY;
  const pts = newestFirst.map((b) => [Date.parse(b.created_at), b.duration_ms] as const).filter(([t]) => t >= from);
  if (pts.length < 5) return null;
  const n = pts.length;
  const mx = pts.reduce((a, [t]) => a + t, 0) / n;
  const my = pts.reduce((a, [, d]) => a + d, 0) / n;
  const sxx = pts.reduce((a, [t]) => a + (t - mx) ** 2, 0);
  if (sxx === 0) return null;
  const slope = pts.reduce((a, [t, d]) => a + (t - mx) * (d - my), 0) / sxx; // ms per ms
  const nowMs = my + slope * (o.now.getTime() - mx);
  let crosses: number | null = null;
  if (slope > 0) {
    const t = mx + (o.limitMs - my) / slope;
    if (t <= o.now.getTime() + (o.horizonDays ?? 90) * DAY) crosses = Math.max(t, o.now.getTime());
  }
  const perDay = slope * DAY;
  const crossesAt = crosses === null ? null : new Date(crosses).toISOString();
  const message = crossesAt ? `backup time grows ${(perDay / 1000).toFixed(1)} s a day; at this rate it reaches the ${o.limitName} around ${crossesAt.slice(0, 10)}` : null;
  return { ms_per_day: perDay, now_ms: nowMs, limit_ms: o.limitMs, crosses_at: crossesAt, message };
}
