// status's view of a cluster's PITR: staleness, failures, the restorable window, gaps.
import { describe, expect, it } from 'vitest';
import type { BaseBackupMetadata } from '../../lib/formats/pitr.js';
import { pitrFacts, seriesOf, type Segment } from '../../lib/pitr/status.js';
import { parseHistory } from '../../lib/pitr/timelines.js';
import { renderMetrics } from '../../lib/fleet/metrics.js';
import { targetFacts } from '../../lib/fleet/metrics.js';
import type { Target } from '../../lib/config/load.js';

const now = new Date('2026-03-01T12:00:00Z');
const seg = (n: number, at: string): Segment => ({ name: `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`, archivedAt: at, size: 16 << 20 });
const base = (id: string, start: string, finished: string): BaseBackupMetadata => ({
  format_version: 1, id, container: 'pg', file: `${id}.tar.zst`, size_bytes: 1, sha256: '0'.repeat(64), compression: { algorithm: 'zstd', level: 3 },
  started_at: finished, finished_at: finished, start_lsn: start, stop_lsn: start, timeline: 1, server_version_num: 150000, server_version: '15', databases: [], pg_basebackup_version: '15', pgfleet_version: '0',
});
const ok = { failed_count: 0, last_failed_wal: null, last_failed_time: null, last_archived_time: '2026-03-01T11:59:00Z' };
const facts = (o: Partial<Parameters<typeof pitrFacts>[0]>) => pitrFacts({ container: 'pg', maxWalAgeMs: 300_000, now, segments: [], waiting: 0, bases: [], archiver: ok, problems: [], ...o });

describe('pitrFacts', () => {
  it('healthy: the window runs from the oldest base backup to the newest segment reachable from it', () => {
    const f = facts({ segments: [seg(1, '2026-03-01T09:00:00Z'), seg(2, '2026-03-01T10:00:00Z'), seg(3, '2026-03-01T11:00:00Z'), seg(4, '2026-03-01T11:58:00Z')], bases: [base('base_20260301_100000Z', '0/2000028', '2026-03-01T10:00:05Z'), base('base_20260301_110000Z', '0/3000028', '2026-03-01T11:00:05Z')] });
    expect(f.problems).toEqual([]);
    expect(f.window).toEqual({ from: '2026-03-01T10:00:05Z', to: '2026-03-01T11:58:00Z' });
    expect(f.newest_segment).toMatchObject({ name: '000000010000000000000004', age_seconds: 120 });
    expect(f.newest_base_backup).toMatchObject({ id: 'base_20260301_110000Z', age_seconds: 3595 });
  });

  it('stale archiving, a failing archiver and no base backup each fail it', () => {
    const f = facts({ segments: [seg(1, '2026-03-01T11:50:00Z')], archiver: { ...ok, failed_count: 3, last_failed_wal: '000000010000000000000002', last_failed_time: '2026-03-01T11:59:30Z' } });
    expect(f.problems).toEqual([
      expect.stringMatching(/newest archived WAL segment 000000010000000000000001 is 600s old \(max_wal_age 300s\): archiving is stale/),
      expect.stringMatching(/the archiver is failing: last failure for 000000010000000000000002/),
      expect.stringMatching(/no base backup/),
    ]);
    expect(f.window).toBeNull();
    expect(facts({}).problems).toContain('no WAL archived yet');
  });

  it('across a timeline switch the window follows the history file; a newer timeline without one fails it', () => {
    const tl2 = (n: number, at: string): Segment => ({ ...seg(n, at), name: `0000000200000000000000${n.toString(16).toUpperCase().padStart(2, '0')}` });
    const segments = [seg(2, '2026-03-01T10:00:00Z'), seg(3, '2026-03-01T10:30:00Z'), seg(4, '2026-03-01T11:40:00Z'), tl2(3, '2026-03-01T11:00:00Z'), tl2(4, '2026-03-01T11:58:00Z')];
    const bases = [base('base_20260301_100000Z', '0/2000028', '2026-03-01T10:00:05Z')];
    const f = facts({ segments, bases, histories: [parseHistory('00000002.history', '1\t0/3800000\tx\n')] });
    expect(f.problems).toEqual([]);
    // Timeline 1's segment 4 (written after the switch, left behind) does not count; timeline 2's does.
    expect(f.window).toEqual({ from: '2026-03-01T10:00:05Z', to: '2026-03-01T11:58:00Z' });
    const lost = facts({ segments, bases });
    expect(lost.problems).toEqual([expect.stringContaining('(00000002.history missing): recovery cannot follow the timeline switch')]);
    expect(lost.window).toEqual({ from: '2026-03-01T10:00:05Z', to: '2026-03-01T11:40:00Z' });
  });

  it('a gap after the base backup ends the window there and fails it', () => {
    const f = facts({ segments: [seg(2, '2026-03-01T10:00:00Z'), seg(3, '2026-03-01T11:00:00Z'), seg(5, '2026-03-01T11:58:00Z')], bases: [base('base_20260301_100000Z', '0/2000028', '2026-03-01T10:00:05Z')] });
    expect(f.window).toEqual({ from: '2026-03-01T10:00:05Z', to: '2026-03-01T11:00:00Z' });
    expect(f.problems).toEqual([expect.stringMatching(/gap after base backup base_20260301_100000Z: 000000010000000000000004 missing/)]);
  });

  it('the latest chain verification is shown; a failed one fails it', () => {
    const v = { verified_at: '2026-03-01T11:00:00Z', duration_ms: 1, segments: 2, through: '000000010000000000000003', replayed_lsn: '0/3000100' };
    const bases = [{ ...base('base_20260301_100000Z', '0/2000028', '2026-03-01T10:00:05Z'), verification: { ...v, status: 'passed' as const } }, base('base_20260301_110000Z', '0/3000028', '2026-03-01T11:00:05Z')];
    const segments = [seg(2, '2026-03-01T10:00:00Z'), seg(3, '2026-03-01T11:58:00Z')];
    expect(facts({ segments, bases }).verification).toEqual({ status: 'passed', verified_at: '2026-03-01T11:00:00Z', age_seconds: 3600, base_backup_id: 'base_20260301_100000Z', through: '000000010000000000000003' });
    bases[1] = { ...bases[1], verification: { ...v, verified_at: '2026-03-01T11:30:00Z', status: 'failed', error: 'WAL 000000010000000000000003: sha256 … (damaged)' } } as typeof bases[0];
    const f = facts({ segments, bases });
    expect(f.verification).toMatchObject({ status: 'failed', base_backup_id: 'base_20260301_110000Z' });
    expect(f.problems).toEqual(['chain verification of base backup base_20260301_110000Z failed (2026-03-01T11:30:00Z): WAL 000000010000000000000003: sha256 … (damaged)']);
  });
});

describe('PITR metrics series', () => {
  it('the window, the newest segment, the archiver and the chain, per target; a target without PITR gets only pgfleet_pitr_enabled 0', () => {
    const f = facts({ segments: [seg(2, '2026-03-01T10:00:00Z'), seg(3, '2026-03-01T11:58:00Z')], bases: [base('base_20260301_100000Z', '0/2000028', '2026-03-01T10:00:05Z')], archiver: { ...ok, failed_count: 2 } });
    const t = (project: string) => ({ project, environment: 'production', backup: { enabled: true } }) as unknown as Target;
    const text = renderMetrics([{ target: t('acme'), facts: targetFacts([]), pitr: seriesOf(f) }, { target: t('plain'), facts: targetFacts([]), pitr: null }]);
    const value = (name: string, project: string) => new RegExp(`^${name}\\{project="${project}",environment="production"\\} (\\S+)$`, 'm').exec(text)?.[1];
    expect(value('pgfleet_pitr_enabled', 'acme')).toBe('1');
    expect(value('pgfleet_pitr_window_start_timestamp_seconds', 'acme')).toBe(String(Date.parse('2026-03-01T10:00:05Z') / 1000));
    expect(value('pgfleet_pitr_window_end_timestamp_seconds', 'acme')).toBe(String(Date.parse('2026-03-01T11:58:00Z') / 1000));
    expect(value('pgfleet_pitr_wal_last_archived_timestamp_seconds', 'acme')).toBe(String(Date.parse('2026-03-01T11:58:00Z') / 1000));
    expect(value('pgfleet_pitr_wal_newest_age_seconds', 'acme')).toBe('120');
    expect(value('pgfleet_pitr_archiver_failed_count', 'acme')).toBe('2');
    expect(value('pgfleet_pitr_archiver_failing', 'acme')).toBe('0'); // a success since its failures
    expect(value('pgfleet_pitr_base_backup_count', 'acme')).toBe('1');
    expect(value('pgfleet_pitr_chain_verification_last_success', 'acme')).toBe('0');
    expect(value('pgfleet_pitr_enabled', 'plain')).toBe('0');
    expect(value('pgfleet_pitr_wal_newest_age_seconds', 'plain')).toBeUndefined();
    expect(value('pgfleet_pitr_base_backup_count', 'plain')).toBeUndefined();
    expect(text).toContain('# TYPE pgfleet_pitr_window_end_timestamp_seconds gauge');
  });
});
