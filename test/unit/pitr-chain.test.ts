// The WAL a base backup needs to recover to the end of the archive (lib/pitr/chain.ts chainOf), and LSNs as bytes.
import { describe, expect, it } from 'vitest';
import type { BaseBackupMetadata, WalRecord } from '../../lib/formats/pitr.js';
import { chainOf, lsnBytes } from '../../lib/pitr/chain.js';
import { parseHistory } from '../../lib/pitr/timelines.js';

const base = (start: string, timeline = 1): BaseBackupMetadata => ({
  format_version: 1, id: 'base_20260301_020000Z', container: 'pg', file: 'base_20260301_020000Z.tar.zst', size_bytes: 1, sha256: '0'.repeat(64), compression: { algorithm: 'zstd', level: 3 },
  started_at: '2026-03-01T02:00:00Z', finished_at: '2026-03-01T02:00:00Z', start_lsn: start, stop_lsn: start, timeline, server_version_num: 150000, server_version: '15', databases: [], pg_basebackup_version: '15', pgfleet_version: '0',
});
const rec = (name: string): WalRecord => ({
  format_version: 1, name, kind: name.endsWith('.history') ? 'history' : name.endsWith('.backup') ? 'backup' : 'segment', timeline: parseInt(name.slice(0, 8), 16), size_bytes: 16 << 20, sha256: '0'.repeat(64),
  stored: { file: `${name}.zst`, size_bytes: 1, sha256: '0'.repeat(64), compression: 'zstd' }, archived_at: '2026-03-01T00:00:00Z', taken_at: '2026-03-01T00:00:00Z',
});
const s = (tl: number, n: number) => tl.toString(16).toUpperCase().padStart(8, '0') + '00000000' + n.toString(16).toUpperCase().padStart(8, '0');

describe('chainOf', () => {
  it('from the segment holding the start LSN to the newest of its timeline; older segments left out', () => {
    const c = chainOf(base('0/3000028'), [s(1, 2), s(1, 3), s(1, 4), `${s(1, 3)}.00000028.backup`, s(1, 5)].map(rec));
    expect('broken' in c).toBe(false);
    if ('broken' in c) return;
    expect(c.segments.map((r) => r.name)).toEqual([s(1, 3), s(1, 4), s(1, 5)]);
    expect(c.wal.map((r) => r.name)).toEqual([s(1, 3), s(1, 4), s(1, 5)]);
    expect(c).toMatchObject({ timeline: 1, path: 'timeline 1' });
  });

  it('across a timeline switch its history leads to: the old timeline up to the switch segment, the new one from it; the branch left behind and a sibling timeline left out', () => {
    // Timeline 2 forked from 1 in segment 5 (its history: "1\t0/5000100"); timeline 1 went on to 6 (left behind); timeline 3 forked from 1 before the backup.
    const histories = [parseHistory('00000002.history', '1\t0/5000100\tno recovery target specified\n'), parseHistory('00000003.history', '1\t0/2000000\tbefore\n')];
    const c = chainOf(base('0/3000028'), [s(1, 3), s(1, 4), `${s(1, 5)}.partial`, s(1, 5), s(1, 6), '00000002.history', '00000003.history', s(2, 5), s(2, 6), s(2, 7), s(3, 2)].map(rec), histories);
    expect('broken' in c).toBe(false);
    if ('broken' in c) return;
    expect(c.segments.map((r) => r.name)).toEqual([s(1, 3), s(1, 4), s(2, 5), s(2, 6), s(2, 7)]);
    expect(c.wal.map((r) => r.name)).toEqual(['00000002.history', s(1, 3), s(1, 4), s(2, 5), s(2, 6), s(2, 7)]);
    expect(c).toMatchObject({ timeline: 2, path: `timelines 1 → 2 (switch at ${s(2, 5)})` });
    // A gap on the new timeline is named by its own name.
    expect(chainOf(base('0/3000028'), [s(1, 3), s(1, 4), '00000002.history', s(2, 5), s(2, 7)].map(rec), histories.slice(0, 1))).toEqual({ broken: `the WAL archive has a gap after base backup base_20260301_020000Z: ${s(2, 6)} missing` });
    // Segments of timeline 2 without its history file: refused, the file named.
    expect(chainOf(base('0/3000028'), [s(1, 3), s(1, 4), s(2, 5)].map(rec))).toMatchObject({ broken: expect.stringContaining('(00000002.history missing): recovery cannot follow the timeline switch') });
  });

  it('a missing start segment or a gap is named', () => {
    expect(chainOf(base('0/3000028'), [s(1, 4), s(1, 5)].map(rec))).toEqual({ broken: `segment ${s(1, 3)} (where base backup base_20260301_020000Z starts) is missing from the archive` });
    expect(chainOf(base('0/3000028'), [s(1, 3), s(1, 5), s(1, 7)].map(rec))).toEqual({ broken: `the WAL archive has a gap after base backup base_20260301_020000Z: ${s(1, 4)}, ${s(1, 6)} missing` });
    expect(chainOf(base('0/3000028'), [])).toMatchObject({ broken: expect.stringContaining('is missing from the archive') });
  });

  it('LSNs as bytes', () => {
    expect(lsnBytes('0/3000028')).toBe(0x3000028);
    expect(lsnBytes('1/0')).toBe(2 ** 32);
    expect(lsnBytes('A/FF000000')).toBe(10 * 2 ** 32 + 0xff000000);
  });
});
