/**
 * A table restore beside the live data loads the chosen tables' rows straight into the new schema:
 * their COPY statements (as pg_dump writes them) aimed at it (lib/restore/tables.ts retargeted).
 */
import { describe, expect, it } from 'vitest';
import type { TocEntry } from '../../lib/postgres/archive.js';
import type { TablePlan } from '../../lib/restore/select.js';
import { renamed, retargeted } from '../../lib/restore/tables.js';

let id = 100;
const entry = (desc: string, namespace: string, tag: string, copyStmt: string | null = null, defn = ''): TocEntry => ({
  dumpId: id++, desc, tag, namespace, owner: 'shop', section: desc === 'TABLE DATA' ? 3 : 2, defn, deps: [], copyStmt,
  spans: { defn: [0, 0], dropStmt: [0, 0], namespace: [0, 0], copyStmt: [0, 0] }, flagAt: 0, flag: desc === 'TABLE DATA' ? 1 : 3, offset: 0,
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

describe('renamed entries (a table restored straight into the new schema, no scratch database)', () => {
  // Definitions as pg_dump 15 writes them.
  const table = entry('TABLE', 'public', 'pgbench_branches', null, 'CREATE TABLE public.pgbench_branches (\n    bid integer NOT NULL,\n    bbalance integer,\n    filler character(88)\n)\nWITH (fillfactor=\'100\');\n');
  const data = entry('TABLE DATA', 'public', 'pgbench_branches', 'COPY public.pgbench_branches (bid, bbalance, filler) FROM stdin;\n');
  const pkey = entry('CONSTRAINT', 'public', 'pgbench_branches pgbench_branches_pkey', null, 'ALTER TABLE ONLY public.pgbench_branches\n    ADD CONSTRAINT pgbench_branches_pkey PRIMARY KEY (bid);\n');
  const index = entry('INDEX', 'public', 'branches_balance', null, 'CREATE INDEX branches_balance ON public.pgbench_branches USING btree (bbalance);\n');
  const acl = entry('ACL', 'public', 'TABLE pgbench_branches', null, 'GRANT SELECT ON TABLE public.pgbench_branches TO reader;\nGRANT SELECT(bbalance),UPDATE(bbalance) ON TABLE public.pgbench_branches TO clerk;\n');
  const comment = entry('COMMENT', 'public', 'COLUMN pgbench_branches.filler', null, "COMMENT ON COLUMN public.pgbench_branches.filler IS 'padding';\n");
  const changes = (all: TocEntry[], as = 'restored_1') => {
    const p = plan(all);
    const r = retargeted(p, as);
    return r && renamed(p, as, r.retarget);
  };

  it('aims each entry\'s namespace and its statement\'s head at the new schema; nothing else of the statement changes', () => {
    const c = changes([table, data, pkey, index, acl, comment])!;
    expect(c.get(table.dumpId)).toEqual({ namespace: 'restored_1', defn: 'CREATE TABLE "restored_1".pgbench_branches (\n    bid integer NOT NULL,\n    bbalance integer,\n    filler character(88)\n)\nWITH (fillfactor=\'100\');\n' });
    expect(c.get(data.dumpId)).toEqual({ namespace: 'restored_1', copyStmt: 'COPY "restored_1".pgbench_branches (bid, bbalance, filler) FROM stdin;\n' });
    expect(c.get(pkey.dumpId)!.defn).toBe('ALTER TABLE ONLY "restored_1".pgbench_branches\n    ADD CONSTRAINT pgbench_branches_pkey PRIMARY KEY (bid);\n');
    expect(c.get(index.dumpId)!.defn).toBe('CREATE INDEX branches_balance ON "restored_1".pgbench_branches USING btree (bbalance);\n');
    expect(c.get(acl.dumpId)!.defn).toBe('GRANT SELECT ON TABLE "restored_1".pgbench_branches TO reader;\nGRANT SELECT(bbalance),UPDATE(bbalance) ON TABLE "restored_1".pgbench_branches TO clerk;\n');
    expect(c.get(comment.dumpId)!.defn).toBe("COMMENT ON COLUMN \"restored_1\".pgbench_branches.filler IS 'padding';\n");
    expect([...c.values()].every((x) => x.namespace === 'restored_1')).toBe(true);
  });

  it('names that need quoting, and a new schema whose name holds what a replacement pattern would read ($&)', () => {
    const t = entry('TABLE', 'My Schema', 'Odd "Name"', null, 'CREATE TABLE "My Schema"."Odd ""Name""" (\n    "Key" integer NOT NULL\n);\n');
    const d = entry('TABLE DATA', 'My Schema', 'Odd "Name"', 'COPY "My Schema"."Odd ""Name""" ("Key") FROM stdin;\n');
    const k = entry('CONSTRAINT', 'My Schema', 'Odd "Name" Odd "Name"_pkey', null, 'ALTER TABLE ONLY "My Schema"."Odd ""Name"""\n    ADD CONSTRAINT "Odd ""Name""_pkey" PRIMARY KEY ("Key");\n');
    const c = changes([t, d, k], 'a$&b')!;
    expect(c.get(t.dumpId)!.defn).toBe('CREATE TABLE "a$&b"."Odd ""Name""" (\n    "Key" integer NOT NULL\n);\n');
    expect(c.get(k.dumpId)!.defn).toBe('ALTER TABLE ONLY "a$&b"."Odd ""Name"""\n    ADD CONSTRAINT "Odd ""Name""_pkey" PRIMARY KEY ("Key");\n');
    expect(c.get(d.dumpId)!.copyStmt).toBe('COPY "a$&b"."Odd ""Name""" ("Key") FROM stdin;\n');
  });

  it('null (the scratch database\'s way) when a statement names the schema anywhere else, or is of a form not known', () => {
    const withType = entry('TABLE', 'public', 'pgbench_branches', null, 'CREATE TABLE public.pgbench_branches (\n    bid integer NOT NULL,\n    mood public.mood\n);\n');
    expect(changes([withType, data])).toBeNull();
    const fk = entry('FK CONSTRAINT', 'public', 'pgbench_branches fk', null, 'ALTER TABLE ONLY public.pgbench_branches\n    ADD CONSTRAINT fk FOREIGN KEY (bid) REFERENCES public.other(id);\n');
    expect(changes([table, data, fk])).toBeNull();
    const literal = entry('COMMENT', 'public', 'TABLE pgbench_branches', null, "COMMENT ON TABLE public.pgbench_branches IS 'a copy of public.branches';\n");
    expect(changes([table, data, literal])).toBeNull();
    const seq = entry('SEQUENCE', 'public', 'pgbench_branches_bid_seq', null, 'CREATE SEQUENCE public.pgbench_branches_bid_seq\n    START WITH 1;\n');
    expect(changes([table, data, seq])).toBeNull();
    const trigger = entry('TRIGGER', 'public', 'pgbench_branches t', null, 'CREATE TRIGGER t BEFORE INSERT ON public.pgbench_branches FOR EACH ROW EXECUTE FUNCTION f();\n');
    expect(changes([table, data, trigger])).toBeNull();
    const authorization = entry('ACL', 'public', 'TABLE pgbench_branches', null, 'SET SESSION AUTHORIZATION clerk;\nGRANT SELECT ON TABLE public.pgbench_branches TO reader;\nRESET SESSION AUTHORIZATION;\n');
    expect(changes([table, data, authorization])).toBeNull();
    const otherTable = entry('INDEX', 'public', 'x', null, 'CREATE INDEX x ON public.pgbench_accounts USING btree (bid);\n');
    expect(changes([table, data, otherTable])).toBeNull();
    const unlogged = entry('TABLE', 'public', 'pgbench_branches', null, 'CREATE UNLOGGED TABLE public.pgbench_branches (\n    bid integer\n);\n');
    expect(changes([unlogged, data])!.get(unlogged.dumpId)!.defn).toBe('CREATE UNLOGGED TABLE "restored_1".pgbench_branches (\n    bid integer\n);\n');
  });
});
