/**
 * Retention, as a pure planner: given a target's complete backups, its policy, the clock and the
 * ids pinned by deployment manifests, which backups stay (and every rule that keeps each) and which
 * go (and why). No I/O; `prune` and `scheduled-backup` apply the plan.
 *
 * A backup is kept when any rule keeps it:
 * - `retention_days`: created less than that many days before `now`;
 * - `keep_daily` / `keep_weekly` / `keep_monthly`: the newest backup of each of the last N UTC days /
 *   ISO weeks / months that have a backup (counted over backups created at or before `now`; a gap
 *   with no backups does not use up a slot, so failed nights never push good backups out);
 * - `pre_migration_days`: a pre-migration backup created less than that many days ago;
 * - `pinned`: the pre-deploy backups of the latest two deployment manifests (id → why);
 * - always: the newest backup, and the newest one whose verification passed;
 * - a backup created after `now` (clock skew, or a what-if run with PGFLEET_NOW in the past).
 * Every type (scheduled, manual, pre-deploy, pre-migration, safety) takes part in the tiers the same
 * way: a safety or manual backup is a real snapshot of its day and can stand for it.
 */
import type { BackupPolicy } from '../config/load.js';
import { newestFirst, type BackupMetadata } from '../formats/metadata.js';

export { newestFirst };

export type RetentionPolicy = Pick<BackupPolicy, 'retention_days' | 'keep_daily' | 'keep_weekly' | 'keep_monthly' | 'pre_migration_days'>;
export type RetentionInput = Pick<BackupMetadata, 'id' | 'created_at' | 'type' | 'verification'>;

export interface RetentionPlan {
  /** Newest first, with every rule that keeps each. */
  keep: { id: string; reasons: string[] }[];
  /** Newest first. */
  remove: { id: string; reason: string }[];
}

const DAY_MS = 86_400_000;

export const dayKey = (t: number) => new Date(t).toISOString().slice(0, 10);
export const monthKey = (t: number) => new Date(t).toISOString().slice(0, 7);

/** ISO-8601 week of a UTC time, as 2025-W01 (the week with the year's first Thursday is week 1). */
export function isoWeekKey(t: number): string {
  const d = new Date(t);
  const weekday = (d.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - weekday + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY_MS));
  return `${year}-W${String(week).padStart(2, '0')}`;
}


export function planRetention(backups: readonly RetentionInput[], policy: RetentionPolicy, now: Date, pinned: ReadonlyMap<string, string> = new Map()): RetentionPlan {
  const sorted = [...backups].sort(newestFirst);
  const reasons = new Map<string, string[]>(sorted.map((b) => [b.id, []]));
  const keep = (id: string, why: string) => reasons.get(id)?.push(why);
  const nowMs = now.getTime();
  const ageMs = (b: RetentionInput) => nowMs - Date.parse(b.created_at);

  if (sorted[0]) keep(sorted[0].id, 'newest backup');
  const verified = sorted.find((b) => b.verification?.status === 'passed');
  if (verified) keep(verified.id, 'newest verified backup');

  for (const b of sorted) {
    if (ageMs(b) < 0) keep(b.id, 'created after now');
    else if (ageMs(b) < policy.retention_days * DAY_MS) keep(b.id, `younger than ${policy.retention_days} days (retention_days)`);
    if (b.type === 'pre-migration' && ageMs(b) >= 0 && ageMs(b) < policy.pre_migration_days * DAY_MS) keep(b.id, `pre-migration, younger than ${policy.pre_migration_days} days (pre_migration_days)`);
  }

  const past = sorted.filter((b) => ageMs(b) >= 0);
  const tiers: [string, number, (t: number) => string][] = [
    ['daily', policy.keep_daily, dayKey],
    ['weekly', policy.keep_weekly, isoWeekKey],
    ['monthly', policy.keep_monthly, monthKey],
  ];
  for (const [tier, count, keyOf] of tiers) {
    const periods = new Set<string>();
    for (const b of past) {
      const key = keyOf(Date.parse(b.created_at));
      if (periods.has(key)) continue; // an older backup of a period already kept
      if (periods.size >= count) break;
      periods.add(key);
      keep(b.id, `${tier} ${key}`);
    }
  }

  for (const [id, why] of pinned) keep(id, why);

  const plan: RetentionPlan = { keep: [], remove: [] };
  const removeWhy =
    `older than ${policy.retention_days} days and not the newest of the last ${policy.keep_daily} days, ` +
    `${policy.keep_weekly} ISO weeks or ${policy.keep_monthly} months with a backup`;
  for (const b of sorted) {
    const r = reasons.get(b.id)!;
    if (r.length) plan.keep.push({ id: b.id, reasons: r });
    else plan.remove.push({ id: b.id, reason: removeWhy });
  }
  return plan;
}
