// Judging a cluster's archiving: the safe archive_command, the settings, the archiver, the mount.
import { describe, expect, it } from 'vitest';
import { archiveDirOf, judge, safeArchiveCommand, type ClusterState } from '../../lib/pitr/settings.js';

const good: ClusterState = {
  settings: { wal_level: 'replica', archive_mode: 'on', archive_command: safeArchiveCommand(), archive_library: '', archive_timeout: '60', max_wal_senders: '10' },
  archiver: { archived_count: 3, failed_count: 0, last_archived_wal: '000000010000000000000003', last_archived_time: '2026-01-01T00:00:00Z', last_failed_wal: null, last_failed_time: null },
  mounts: [{ source: '/srv/wal/pg', destination: '/wal-archive' }],
};

describe('archive_command', () => {
  it('the safe form, with any directory, and nothing looser', () => {
    expect(safeArchiveCommand()).toBe('test ! -f /wal-archive/%f && cp %p /wal-archive/%f.part && mv /wal-archive/%f.part /wal-archive/%f');
    expect(archiveDirOf(safeArchiveCommand('/backups/wal'))).toBe('/backups/wal');
    expect(archiveDirOf('test ! -f /a/%f && cp %p /a/%f.part && mv /a/%f.part /b/%f')).toBeNull();
    expect(archiveDirOf('test ! -f /a/%f && cp %p /a/%f')).toBeNull(); // the Ticketz runbook's: a partial copy looks whole
    expect(archiveDirOf('cp %p /a/%f.part && mv /a/%f.part /a/%f')).toBeNull(); // overwrites
    expect(archiveDirOf('')).toBeNull();
  });
});

describe('judge', () => {
  it('a good cluster has no problems', () => {
    const v = judge(good, '/srv/wal/pg', 300_000);
    expect(v).toMatchObject({ problems: [], settings: [], dir: '/wal-archive' });
    expect(v.mount).toBeUndefined();
  });

  it('a misconfigured one gets every problem and the exact lines', () => {
    const v = judge(
      { settings: { wal_level: 'minimal', archive_mode: 'off', archive_command: 'test ! -f /backups/wal_archive/%f && cp %p /backups/wal_archive/%f', archive_timeout: '0', max_wal_senders: '0' }, archiver: { ...good.archiver, archived_count: 0 }, mounts: [] },
      '/srv/wal/pg',
      300_000,
    );
    expect(v.problems).toHaveLength(6);
    expect(v.problems.join('\n')).toMatch(/copies straight to the final name/);
    expect(v.settings).toEqual(['wal_level = replica', 'archive_mode = on', `archive_command = '${safeArchiveCommand()}'`, 'archive_timeout = 60', 'max_wal_senders = 4']);
    expect(v.mount).toBe('-v /srv/wal/pg:/wal-archive');
  });

  it('archive_timeout above max_wal_age, a failing archiver, a mount of another directory', () => {
    const v = judge(
      { ...good, settings: { ...good.settings, archive_timeout: '600' }, archiver: { ...good.archiver, failed_count: 2, last_failed_wal: '000000010000000000000004', last_failed_time: '2026-01-01T00:01:00Z' }, mounts: [{ source: '/elsewhere', destination: '/wal-archive' }] },
      '/srv/wal/pg',
      300_000,
    );
    expect(v.problems).toEqual([
      expect.stringMatching(/archive_timeout is 600s: above max_wal_age \(300s\)/),
      expect.stringMatching(/the archiver is failing: 2 failure\(s\), the last for 000000010000000000000004/),
      expect.stringMatching(/\/wal-archive in the container is \/elsewhere on the host, not the archive_dir \/srv\/wal\/pg/),
    ]);
    expect(v.settings).toEqual(['archive_timeout = 60']);
  });

  it('an old failure followed by success is a note, not a problem', () => {
    const v = judge({ ...good, archiver: { ...good.archiver, failed_count: 1, last_failed_wal: 'x', last_failed_time: '2025-12-31T00:00:00Z' } }, '/srv/wal/pg', 300_000);
    expect(v.problems).toEqual([]);
    expect(v.notes).toEqual([expect.stringMatching(/1 earlier archiver failure/)]);
  });
});
