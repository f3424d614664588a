import { describe, expect, it } from 'vitest';
import { isoWeekKey, planRetention, type RetentionInput, type RetentionPolicy } from '../../lib/fleet/retention.js';
import { backupStem } from '../../lib/storage/repository.js';

const POLICY: RetentionPolicy = { retention_days: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, pre_migration_days: 90 };
const at = (iso: string) => new Date(iso);

function backup(iso: string, over: Partial<RetentionInput> = {}): RetentionInput {
  return { id: backupStem(at(iso)), created_at: at(iso).toISOString(), type: 'scheduled', verification: null, ...over };
}

/** One backup a day at 02:00 UTC from `from` to `to` inclusive. */
function daily(from: string, to: string): RetentionInput[] {
  const out: RetentionInput[] = [];
  for (let t = Date.parse(`${from}T02:00:00Z`); t <= Date.parse(`${to}T02:00:00Z`); t += 86_400_000) out.push(backup(new Date(t).toISOString()));
  return out;
}

const kept = (plan: ReturnType<typeof planRetention>) => plan.keep.map((k) => k.id);
const reasonsOf = (plan: ReturnType<typeof planRetention>, id: string) => plan.keep.find((k) => k.id === id)?.reasons ?? [];

describe('retention planner', () => {
  it('plans nothing for an empty set', () => {
    expect(planRetention([], { ...POLICY, keep_daily: 7 }, at('2025-01-01T00:00:00Z'))).toEqual({ keep: [], remove: [] });
  });

  it('keeps every backup younger than retention_days and nothing older beyond the newest', () => {
    const all = daily('2025-01-01', '2025-01-10');
    const plan = planRetention(all, { ...POLICY, retention_days: 3 }, at('2025-01-10T12:00:00Z'));
    expect(kept(plan)).toEqual(['db_20250110_020000Z', 'db_20250109_020000Z', 'db_20250108_020000Z']);
    expect(plan.remove).toHaveLength(7);
    expect(plan.remove[0].reason).toMatch(/older than 3 days/);
  });

  it('keeps the newest backup of each of the last N days; of two on one day, the later', () => {
    const all = [...daily('2025-03-01', '2025-03-05'), backup('2025-03-05T14:30:00Z'), backup('2025-03-04T23:59:59Z')];
    const plan = planRetention(all, { ...POLICY, keep_daily: 3 }, at('2025-03-06T00:00:00Z'));
    expect(kept(plan)).toEqual(['db_20250305_143000Z', 'db_20250304_235959Z', 'db_20250303_020000Z']);
    expect(reasonsOf(plan, 'db_20250305_143000Z')).toEqual(['newest backup', 'daily 2025-03-05']);
    expect(plan.remove.map((r) => r.id)).toContain('db_20250305_020000Z');
  });

  it('counts days that have a backup, so a gap of failed nights does not push good backups out', () => {
    const all = [backup('2025-01-01T02:00:00Z'), backup('2025-01-02T02:00:00Z'), backup('2025-01-03T02:00:00Z')];
    const plan = planRetention(all, { ...POLICY, keep_daily: 3 }, at('2025-02-15T00:00:00Z'));
    expect(plan.remove).toEqual([]);
  });

  it('uses ISO weeks across a year boundary', () => {
    // 2024-12-30 (Mon) … 2025-01-05 (Sun) is 2025-W01; 2024-12-29 (Sun) is 2024-W52.
    expect(isoWeekKey(Date.parse('2024-12-29T23:59:59Z'))).toBe('2024-W52');
    expect(isoWeekKey(Date.parse('2024-12-30T00:00:00Z'))).toBe('2025-W01');
    expect(isoWeekKey(Date.parse('2021-01-03T12:00:00Z'))).toBe('2020-W53');
    const all = daily('2024-12-20', '2025-01-08');
    const plan = planRetention(all, { ...POLICY, keep_weekly: 3 }, at('2025-01-08T12:00:00Z'));
    expect(kept(plan)).toEqual(['db_20250108_020000Z', 'db_20250105_020000Z', 'db_20241229_020000Z']);
    expect(reasonsOf(plan, 'db_20250105_020000Z')).toEqual(['weekly 2025-W01']);
  });

  it('keeps the last backup of each month across month and year boundaries, and over a leap day', () => {
    const all = daily('2023-12-15', '2024-03-02');
    const plan = planRetention(all, { ...POLICY, keep_monthly: 4 }, at('2024-03-02T12:00:00Z'));
    expect(kept(plan)).toEqual(['db_20240302_020000Z', 'db_20240229_020000Z', 'db_20240131_020000Z', 'db_20231231_020000Z']);
    expect(reasonsOf(plan, 'db_20240229_020000Z')).toEqual(['monthly 2024-02']);
    const days = planRetention(all, { ...POLICY, keep_daily: 3 }, at('2024-03-02T12:00:00Z'));
    expect(kept(days)).toEqual(['db_20240302_020000Z', 'db_20240301_020000Z', 'db_20240229_020000Z']);
  });

  it('when everything is expired, still keeps the newest backup and the newest verified one', () => {
    const passed = { status: 'passed' as const, verified_at: '2024-01-10T00:00:00Z', duration_ms: 1, tables: 1, rows: 1 };
    const failed = { ...passed, status: 'failed' as const };
    const all = [backup('2024-01-01T02:00:00Z', { verification: passed }), backup('2024-01-02T02:00:00Z'), backup('2024-01-03T02:00:00Z', { verification: failed })];
    const plan = planRetention(all, { ...POLICY, retention_days: 30, keep_daily: 0 }, at('2025-06-01T00:00:00Z'));
    expect(plan.keep).toEqual([
      { id: 'db_20240103_020000Z', reasons: ['newest backup'] },
      { id: 'db_20240101_020000Z', reasons: ['newest verified backup'] },
    ]);
    expect(plan.remove.map((r) => r.id)).toEqual(['db_20240102_020000Z']);
  });

  it('keeps pre-migration backups for pre_migration_days, and pinned ones with their reason', () => {
    const all = [backup('2025-01-01T02:00:00Z', { type: 'pre-migration' }), backup('2024-06-01T02:00:00Z', { type: 'pre-migration' }), backup('2025-02-01T02:00:00Z', { type: 'pre-deploy' }), backup('2025-03-01T02:00:00Z')];
    const pinned = new Map([['db_20250201_020000Z', 'pre-deploy backup of release v42']]);
    const plan = planRetention(all, POLICY, at('2025-03-15T00:00:00Z'), pinned);
    expect(reasonsOf(plan, 'db_20250101_020000Z')).toEqual(['pre-migration, younger than 90 days (pre_migration_days)']);
    expect(reasonsOf(plan, 'db_20250201_020000Z')).toEqual(['pre-deploy backup of release v42']);
    expect(plan.remove.map((r) => r.id)).toEqual(['db_20240601_020000Z']);
  });

  it('keeps backups created after now, and leaves them out of the tiers', () => {
    const all = [backup('2025-01-01T02:00:00Z'), backup('2025-01-02T02:00:00Z'), backup('2025-01-05T02:00:00Z')];
    const plan = planRetention(all, { ...POLICY, keep_daily: 1 }, at('2025-01-03T00:00:00Z'));
    expect(reasonsOf(plan, 'db_20250105_020000Z')).toEqual(['newest backup', 'created after now']);
    expect(reasonsOf(plan, 'db_20250102_020000Z')).toEqual(['daily 2025-01-02']);
    expect(plan.remove.map((r) => r.id)).toEqual(['db_20250101_020000Z']);
  });

  it('over a year of dailies keeps exactly the union of the tiers', () => {
    const all = daily('2024-01-01', '2024-12-31');
    const plan = planRetention(all, { ...POLICY, retention_days: 0, keep_daily: 7, keep_weekly: 4, keep_monthly: 12 }, at('2024-12-31T12:00:00Z'));
    const expected = new Set([
      ...daily('2024-12-25', '2024-12-31').map((b) => b.id), // 7 days
      'db_20241229_020000Z', 'db_20241222_020000Z', 'db_20241215_020000Z', // the 31st stands for 2025-W01; then the Sundays of 2024-W52, W51, W50
      ...['0131', '0229', '0331', '0430', '0531', '0630', '0731', '0831', '0930', '1031', '1130'].map((d) => `db_2024${d}_020000Z`),
    ]);
    expect(new Set(kept(plan))).toEqual(expected);
    expect(plan.keep.length + plan.remove.length).toBe(366);
  });
});
