// Retention of a cluster's base backups and WAL (lib/pitr/retention.ts): which base backups stay
// and why, and that WAL goes only before the oldest kept base backup's start segment.
import { describe, expect, it } from 'vitest';
import type { BaseBackupMetadata, WalRecord } from '../../lib/formats/pitr.js';
import { clusterPruneLines, humanDuration, planCluster, planWal } from '../../lib/pitr/retention.js';

const now = new Date('2026-03-20T12:00:00Z');
const DAY = 86_400_000;
const policy = { keepBaseBackups: 2, baseBackupRetentionMs: 7 * DAY };
const base = (day: number, start: string, o: Partial<BaseBackupMetadata> = {}): BaseBackupMetadata => {
  const at = `2026-03-${String(day).padStart(2, '0')}T02:00:00Z`;
  const id = `base_202603${String(day).padStart(2, '0')}_020000Z`;
  return {
    format_version: 1, id, container: 'pg', file: `${id}.tar.zst`, size_bytes: 1, sha256: '0'.repeat(64), compression: { algorithm: 'zstd', level: 3 },
    started_at: at, finished_at: at, start_lsn: start, stop_lsn: start, timeline: 1, server_version_num: 150000, server_version: '15', databases: [], pg_basebackup_version: '15', pgfleet_version: '0', ...o,
  };
};
const wal = (name: string, kind: WalRecord['kind'] = 'segment'): WalRecord => ({
  format_version: 1, name, kind, timeline: parseInt(name.slice(0, 8), 16), size_bytes: kind === 'segment' ? 16 << 20 : 300, sha256: '0'.repeat(64),
  stored: { file: `${name}.zst`, size_bytes: 1, sha256: '0'.repeat(64), compression: 'zstd' }, archived_at: '2026-03-01T00:00:00Z', taken_at: '2026-03-01T00:00:00Z',
});
const seg = (tl: number, n: number) => tl.toString(16).toUpperCase().padStart(8, '0') + '00000000' + n.toString(16).toUpperCase().padStart(8, '0');

describe('planCluster: base backups', () => {
  it('keeps the newest N and those younger than base_backup_retention, each with its reasons; removes the rest', () => {
    const bases = [base(1, '0/1000028'), base(5, '0/5000028'), base(10, '0/A000028'), base(15, '0/F000028'), base(19, '0/13000028')];
    const p = planCluster(bases, [], policy, now);
    expect(p.keep.map((k) => k.id)).toEqual(['base_20260319_020000Z', 'base_20260315_020000Z']);
    expect(p.keep[0].reasons).toEqual(['newest base backup', 'newest 1 of 2 (keep_base_backups)', 'younger than 7d (base_backup_retention)']);
    expect(p.keep[1].reasons).toEqual(['newest 2 of 2 (keep_base_backups)', 'younger than 7d (base_backup_retention)']);
    expect(p.remove).toEqual([
      { id: 'base_20260310_020000Z', reason: 'older than 7d and not among the newest 2' },
      { id: 'base_20260305_020000Z', reason: 'older than 7d and not among the newest 2' },
      { id: 'base_20260301_020000Z', reason: 'older than 7d and not among the newest 2' },
    ]);
  });

  it('never removes the last good base backup, however old; keeps the newest verified one', () => {
    const only = planCluster([base(1, '0/1000028')], [], { keepBaseBackups: 1, baseBackupRetentionMs: DAY }, now);
    expect(only.remove).toEqual([]);
    expect(only.keep[0].reasons).toContain('newest base backup');
    const passed = { status: 'passed' as const, verified_at: '2026-03-02T00:00:00Z', duration_ms: 1, segments: 3, through: seg(1, 3), replayed_lsn: '0/3000100' };
    const p = planCluster([base(1, '0/1000028', { verification: passed }), base(5, '0/5000028', { verification: { ...passed, status: 'failed', error: 'x' } }), base(9, '0/9000028')], [], { keepBaseBackups: 1, baseBackupRetentionMs: DAY }, now);
    expect(p.keep.map((k) => [k.id, k.reasons[0]])).toEqual([['base_20260309_020000Z', 'newest base backup'], ['base_20260301_020000Z', 'newest verified base backup']]);
    expect(p.remove.map((r) => r.id)).toEqual(['base_20260305_020000Z']);
  });

  it('a damaged archive removes nothing, and says why', () => {
    const p = planCluster([base(1, '0/1000028'), base(9, '0/9000028')], [wal(seg(1, 1)), wal(seg(1, 9))], { keepBaseBackups: 1, baseBackupRetentionMs: DAY }, now, ['base/base_x.tar.zst: missing (its metadata exists)']);
    expect(p.remove).toEqual([]);
    expect(p.wal.remove).toEqual([]);
    expect(p.blocked).toContain('base/base_x.tar.zst: missing');
  });

  it('a base backup finished after now is kept', () => {
    const p = planCluster([base(1, '0/1000028'), base(25, '0/9000028')], [], { keepBaseBackups: 1, baseBackupRetentionMs: DAY }, now);
    expect(p.keep.find((k) => k.id === 'base_20260301_020000Z')).toBeUndefined();
    expect(p.keep[0].reasons).toContain('finished after now');
  });
});

describe('planWal: exactly what the kept base backups need', () => {
  it('removes the segments (and their .backup and .partial files) before the start segment of the oldest kept base backup, never that one or a later one', () => {
    const names = [seg(1, 1), seg(1, 2), `${seg(1, 2)}.00000028.backup`, seg(1, 3), seg(1, 4), `${seg(1, 4)}.00000060.backup`, seg(1, 5)];
    const w = planWal([base(9, '0/4000060'), base(12, '0/5000028')], names.map((n) => wal(n, n.endsWith('.backup') ? 'backup' : 'segment')));
    expect(w.remove.map((r) => r.name)).toEqual([seg(1, 1), seg(1, 2), `${seg(1, 2)}.00000028.backup`, seg(1, 3)]);
    expect(w.remove[0].reason).toBe(`before ${seg(1, 4)}, where the oldest kept base backup base_20260309_020000Z starts`);
    expect(w.kept).toBe(3);
  });

  it('an LSN at a segment boundary needs that segment; across a log id the arithmetic holds', () => {
    const names = [seg(1, 0xfe), seg(1, 0xff), '000000010000000100000000', '000000010000000100000001'];
    const w = planWal([base(9, '1/0')], names.map((n) => wal(n)));
    expect(w.remove.map((r) => r.name)).toEqual([seg(1, 0xfe), seg(1, 0xff)]);
    const mid = planWal([base(9, '0/FFFFFFFF')], names.map((n) => wal(n)));
    expect(mid.remove.map((r) => r.name)).toEqual([seg(1, 0xfe)]);
  });

  it('timelines: history files always stay; an older timeline is cut at the same point; a newer timeline than the oldest kept backup is kept', () => {
    const names = [seg(1, 3), seg(1, 6), '00000002.history', seg(2, 4), seg(2, 7), seg(3, 2)];
    const w = planWal([base(9, '0/7000028', { timeline: 2 })], names.map((n) => wal(n, n.endsWith('.history') ? 'history' : 'segment')));
    expect(w.remove.map((r) => r.name)).toEqual([seg(1, 3), seg(1, 6), seg(2, 4)]);
    expect(w.why).toBe(`from ${seg(2, 7)} on: needed by base backup base_20260309_020000Z (start 0/7000028, timeline 2) and the newer ones`);
  });

  it('no kept base backup: all WAL stays', () => {
    expect(planWal([], [wal(seg(1, 1))])).toEqual({ remove: [], kept: 1, why: 'no base backup: all WAL kept' });
  });
});

describe('prune lines and durations', () => {
  it('a dry run says what would go and why the rest stays', () => {
    const p = planCluster([base(1, '0/2000028'), base(19, '0/5000028')], [seg(1, 1), seg(1, 2), seg(1, 5)].map((n) => wal(n)), { keepBaseBackups: 1, baseBackupRetentionMs: 7 * DAY }, now);
    expect(clusterPruneLines({ ...p, container: 'pg', dryRun: true })).toEqual([
      'cluster pg: would remove 1 base backup(s) and 2 WAL file(s), would keep 1 and 1 (dry run)',
      '  remove  base_20260301_020000Z  older than 7d and not among the newest 1',
      `  remove  WAL ${seg(1, 1)} … ${seg(1, 2)} (2 file(s))  before ${seg(1, 5)}, where the oldest kept base backup base_20260319_020000Z starts`,
      '  keep    base_20260319_020000Z  newest base backup; newest 1 of 1 (keep_base_backups); younger than 7d (base_backup_retention)',
      `  keep    WAL (1 file(s))  from ${seg(1, 5)} on: needed by base backup base_20260319_020000Z (start 0/5000028, timeline 1) and the newer ones`,
    ]);
    expect([humanDuration(7 * DAY), humanDuration(36 * 3_600_000), humanDuration(90 * 60_000), humanDuration(45_000)]).toEqual(['7d', '36h', '90m', '45s']);
  });
});
