// WAL names as arithmetic: numbers, LSNs, gaps per timeline.
import { describe, expect, it } from 'vitest';
import { findGaps, segmentName, segmentNumber, segmentOfLsn, timelineOf } from '../../lib/pitr/segments.js';
import { walKind } from '../../lib/formats/pitr.js';

const MiB16 = 16 << 20;

describe('WAL segment names', () => {
  it('numbers and names round-trip across a log id boundary (256 segments of 16 MiB per log id)', () => {
    expect(segmentNumber('0000000100000000000000FF', MiB16)).toBe(255);
    expect(segmentNumber('000000010000000100000000', MiB16)).toBe(256);
    expect(segmentName(1, 256, MiB16)).toBe('000000010000000100000000');
    expect(segmentName(2, 257, 64 << 20)).toBe('000000020000000400000001');
    expect(timelineOf('00000002.history')).toBe(2);
  });

  it('an LSN falls in its segment', () => {
    expect(segmentOfLsn('0/3000028', 1, MiB16)).toBe('000000010000000000000003');
    expect(segmentOfLsn('1/FF000000', 3, MiB16)).toBe('0000000300000001000000FF');
  });

  it('a gap is every missing segment between first and last, per timeline; other names ignored', () => {
    const names = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000005', '00000002.history', '000000020000000000000005', '000000020000000000000006', '000000010000000000000002.00000028.backup'];
    expect(findGaps(names, MiB16)).toEqual(['000000010000000000000003', '000000010000000000000004']);
    expect(findGaps(['0000000100000000000000FE', '000000010000000100000000'], MiB16)).toEqual(['0000000100000000000000FF']);
    expect(findGaps([], MiB16)).toEqual([]);
  });

  it('knows what PostgreSQL archives and nothing else', () => {
    expect(walKind('000000010000000000000001')).toBe('segment');
    expect(walKind('00000002.history')).toBe('history');
    expect(walKind('000000010000000000000002.00000028.backup')).toBe('backup');
    expect(walKind('000000010000000000000002.partial')).toBe('partial');
    for (const n of ['000000010000000000000001.part', '.tmp', 'archive_status', '00000001000000000000000g']) expect(walKind(n)).toBeNull();
  });
});
