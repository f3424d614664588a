// The dump check of a restore: what a restored copy's row counts must match.
import { describe, expect, it } from 'vitest';
import { compareCounts } from '../../lib/restore/dump.js';

describe('compareCounts', () => {
  it('is empty when every table is there with its recorded rows', () => {
    expect(compareCounts({ 'public.a': 3, 'public.b': 0 }, { 'public.b': 0, 'public.a': 3 })).toEqual([]);
  });
  it('names missing, extra and differing tables', () => {
    expect(compareCounts({ 'public.a': 3, 'public.gone': 1 }, { 'public.a': 2, 'public.new': 5 })).toEqual([
      'table public.a has 2 rows, 3 recorded',
      'table public.gone is missing',
      'table public.new was not recorded in the backup',
    ]);
  });
});
