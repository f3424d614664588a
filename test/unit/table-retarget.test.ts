/**
 * A table restore beside the live data loads the chosen tables' rows straight into the new schema:
 * their COPY statements (as pg_dump writes them) aimed at it (lib/restore/tables.ts retargeted).
 */
import { describe, expect, it } from 'vitest';
import type { TocEntry } from '../../lib/postgres/archive.js';
import type { TablePlan } from '../../lib/restore/select.js';
import { retargeted } from '../../lib/restore/tables.js';

let id = 100;
const entry = (desc: string, namespace: string, tag: string, copyStmt: string | null = null): TocEntry => ({
  dumpId: id++, desc, tag, namespace, owner: 'shop', section: desc === 'TABLE DATA' ? 3 : 2, defn: '', deps: [], copyStmt,
  spans: { namespace: [0, 0], copyStmt: [0, 0] }, flagAt: 0, flag: desc === 'TABLE DATA' ? 1 : 3, offset: 0,
});
const plan = (all: TocEntry[]): TablePlan => ({ tables: all.filter((e) => e.desc === 'TABLE'), entries: all, context: [], leftOut: [], all });

describe('retargeted COPY statements', () => {
  it('aims each chosen table\'s COPY at the new schema, its table name and columns as pg_dump quoted them', () => {
    const t1 = entry('TABLE', 'public', 'orders');
    const d1 = entry('TABLE DATA', 'public', 'orders', 'COPY public.orders (id, "Total", note) FROM stdin;\n');
    const t2 = entry('TABLE', 'My Schema', 'Odd "Name"');
    const d2 = entry('TABLE DATA', 'My Schema', 'Odd "Name"', 'COPY "My Schema"."Odd ""Name""" (id) FROM stdin;\n');
    const other = entry('TABLE DATA', 'public', 'not_chosen', 'COPY public.not_chosen (id) FROM stdin;\n');
    const seq = entry('SEQUENCE SET', 'public', 'orders_id_seq');
    const r = retargeted(plan([t1, d1, t2, d2, seq]), 'restored_1')!;
    expect(r.data.map((e) => e.dumpId)).toEqual([d1.dumpId, d2.dumpId]);
    expect(r.retarget.get(d1.dumpId)).toEqual({ namespace: 'restored_1', copyStmt: 'COPY "restored_1".orders (id, "Total", note) FROM stdin;\n' });
    expect(r.retarget.get(d2.dumpId)).toEqual({ namespace: 'restored_1', copyStmt: 'COPY "restored_1"."Odd ""Name""" (id) FROM stdin;\n' });
    expect(r.retarget.has(other.dumpId)).toBe(false);
    const noColumns = entry('TABLE DATA', 'public', 'orders', 'COPY public.orders FROM stdin;\n');
    expect(retargeted(plan([t1, noColumns]), 'x')!.retarget.get(noColumns.dumpId)!.copyStmt).toBe('COPY "x".orders FROM stdin;\n');
  });

  it('null (every row through the scratch copy) when a COPY is not the chosen table\'s own, e.g. loaded via the partition root', () => {
    const part = entry('TABLE', 'public', 'measurements_2025_01');
    const viaRoot = entry('TABLE DATA', 'public', 'measurements_2025_01', 'COPY public.measurements (id, at) FROM stdin;\n');
    expect(retargeted(plan([part, viaRoot]), 'r')).toBeNull();
    const prefixOnly = entry('TABLE DATA', 'public', 'measurements_2025_01', 'COPY public.measurements_2025_01x (id) FROM stdin;\n');
    expect(retargeted(plan([part, prefixOnly]), 'r')).toBeNull();
    expect(retargeted(plan([part, entry('TABLE DATA', 'public', 'measurements_2025_01', null)]), 'r')).toBeNull();
  });
});
