// Timeline histories and the path a base backup's recovery follows across a switch (lib/pitr/timelines.ts).
import { describe, expect, it } from 'vitest';
import { describePath, historiesMissing, parseHistory, timelinePath, walkChain } from '../../lib/pitr/timelines.js';

const MB16 = 16 << 20;
const s = (tl: number, n: number) => tl.toString(16).toUpperCase().padStart(8, '0') + '00000000' + n.toString(16).toUpperCase().padStart(8, '0');
const base = (start: string, timeline = 1, stop = start) => ({ timeline, start_lsn: start, stop_lsn: stop });

describe('parseHistory', () => {
  it('reads the ancestors and their switch points, skipping comments and blank lines', () => {
    expect(parseHistory('00000003.history', '1\t0/5000100\tno recovery target specified\n\n# a comment\n2\t0/7A0000D8\tat restore point "x"\n')).toEqual({
      timeline: 3,
      parents: [
        { timeline: 1, end: '0/5000100' },
        { timeline: 2, end: '0/7A0000D8' },
      ],
    });
  });
  it('refuses a damaged line or a wrong name, naming the file', () => {
    expect(() => parseHistory('00000002.history', '1\tgarbage\n')).toThrow(/00000002\.history: unreadable line "1\\tgarbage"/);
    expect(() => parseHistory('000000020000000000000001', '')).toThrow(/not a timeline history file name/);
  });
});

describe('timelinePath', () => {
  it('no history: the base backup timeline, open-ended', () => {
    expect(timelinePath(base('0/3000028'), [], MB16)).toEqual({ timeline: 1, legs: [{ timeline: 1, from: 3, to: null }] });
  });
  it('the newest descendant after the backup ended, through every timeline between', () => {
    const h2 = parseHistory('00000002.history', '1\t0/5000100\tx\n');
    const h3 = parseHistory('00000003.history', '1\t0/5000100\tx\n2\t0/8000000\ty\n');
    expect(timelinePath(base('0/3000028'), [h2, h3], MB16)).toEqual({
      timeline: 3,
      legs: [
        { timeline: 1, from: 3, to: 5 },
        { timeline: 2, from: 5, to: 8 },
        { timeline: 3, from: 8, to: null },
      ],
    });
    // A base backup taken on timeline 2 starts there.
    expect(timelinePath(base('0/6000028', 2), [h2, h3], MB16)).toEqual({ timeline: 3, legs: [{ timeline: 2, from: 6, to: 8 }, { timeline: 3, from: 8, to: null }] });
  });
  it('a timeline forked before the base backup was consistent is not its child', () => {
    const early = parseHistory('00000002.history', '1\t0/3000100\tx\n');
    expect(timelinePath(base('0/3000028', 1, '0/3000200'), [early], MB16).timeline).toBe(1);
  });
});

describe('walkChain', () => {
  const h2 = parseHistory('00000002.history', '1\t0/5000100\tx\n');
  it('runs across the switch; the old timeline past the switch is not on the path', () => {
    const w = walkChain(base('0/3000028'), [h2], [s(1, 3), s(1, 4), s(1, 5), s(1, 6), s(2, 5), s(2, 6), '00000002.history'], MB16);
    expect(w).toMatchObject({ timeline: 2, run: [s(1, 3), s(1, 4), s(2, 5), s(2, 6)], next: s(2, 7), missing: [] });
    expect(describePath(w, MB16)).toBe(`timelines 1 → 2 (switch at ${s(2, 5)})`);
  });
  it('a missing segment with a later one on the path is a gap; without the history the new timeline is not followed', () => {
    expect(walkChain(base('0/3000028'), [h2], [s(1, 3), s(1, 4), s(2, 6)], MB16)).toMatchObject({ run: [s(1, 3), s(1, 4)], next: s(2, 5), missing: [s(2, 5)] });
    expect(walkChain(base('0/3000028'), [], [s(1, 3), s(1, 4), s(2, 5), s(2, 6)], MB16)).toMatchObject({ timeline: 1, run: [s(1, 3), s(1, 4)], next: s(1, 5), missing: [] });
    expect(historiesMissing([s(1, 3), s(2, 5), s(3, 9), '00000002.history'], [h2])).toEqual(['00000003.history']);
  });
});
