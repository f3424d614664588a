import { describe, expect, it } from 'vitest';
import type { TocEntry } from '../../lib/postgres/archive.js';
import { parseQualified, planTables, qualified, quoteIdent, restoreList } from '../../lib/restore/select.js';
import { UsageError } from '../../lib/core/errors.js';

// The table of contents pg_dump 15 wrote for scripts/sandbox/sample.ts plus
// test/integration/table-fixture.ts: [dump id, desc, schema, tag, dependencies].
const DUMPED: [number, string, string | null, string, number[]][] = [
  [3433,"ENCODING",null,"ENCODING",[]],
  [3434,"STDSTRINGS",null,"STDSTRINGS",[]],
  [3435,"SEARCHPATH",null,"SEARCHPATH",[]],
  [3436,"DATABASE",null,"shop",[]],
  [6,"SCHEMA",null,"My Schema",[]],
  [3437,"ACL",null,"SCHEMA \"My Schema\"",[6]],
  [854,"TYPE","public","mood",[]],
  [231,"FUNCTION","public","touch_city()",[]],
  [230,"TABLE","My Schema","Odd \"Name\"",[6]],
  [3438,"ACL","My Schema","TABLE \"Odd \"\"Name\"\"\"",[230]],
  [216,"TABLE","public","Customer",[854]],
  [3439,"COMMENT","public","TABLE \"Customer\"",[216]],
  [3440,"COMMENT","public","COLUMN \"Customer\".\"FullName\"",[216]],
  [3441,"COMMENT","public","CONSTRAINT name_not_blank ON \"Customer\"",[216]],
  [3442,"ACL","public","TABLE \"Customer\"",[216]],
  [3443,"ACL","public","COLUMN \"Customer\".city",[216,3442]],
  [215,"SEQUENCE","public","Customer_Id_seq",[216]],
  [3444,"SEQUENCE OWNED BY","public","Customer_Id_seq",[215]],
  [227,"VIEW","public","HappyCustomers",[854,216,216,216]],
  [225,"TABLE","public","documents",[]],
  [224,"SEQUENCE","public","documents_id_seq",[225]],
  [3445,"SEQUENCE OWNED BY","public","documents_id_seq",[224]],
  [226,"SEQUENCE","public","invoice_no",[]],
  [220,"TABLE","public","measurements",[]],
  [219,"SEQUENCE","public","measurements_id_seq",[220]],
  [3446,"SEQUENCE OWNED BY","public","measurements_id_seq",[219]],
  [221,"TABLE","public","measurements_2025_01",[219,220]],
  [222,"TABLE","public","measurements_2025_02",[219,220]],
  [223,"TABLE","public","measurements_other",[219,220]],
  [218,"TABLE","public","orders",[]],
  [217,"SEQUENCE","public","orders_id_seq",[218]],
  [3447,"SEQUENCE OWNED BY","public","orders_id_seq",[217]],
  [229,"TABLE","public","tickets",[226]],
  [228,"SEQUENCE","public","tickets_id_seq",[229]],
  [3243,"TABLE ATTACH","public","measurements_2025_01",[221,220]],
  [3244,"TABLE ATTACH","public","measurements_2025_02",[222,220]],
  [3245,"TABLE ATTACH","public","measurements_other",[223,220]],
  [3246,"DEFAULT","public","Customer Id",[215,216,216]],
  [3253,"DEFAULT","public","documents id",[225,224,225]],
  [3249,"DEFAULT","public","measurements id",[220,219,220]],
  [3248,"DEFAULT","public","orders id",[218,217,218]],
  [3429,"BLOB",null,"16445",[]],
  [3428,"TABLE DATA","My Schema","Odd \"Name\"",[230]],
  [3416,"TABLE DATA","public","Customer",[216]],
  [3424,"TABLE DATA","public","documents",[225]],
  [3420,"TABLE DATA","public","measurements_2025_01",[221]],
  [3421,"TABLE DATA","public","measurements_2025_02",[222]],
  [3422,"TABLE DATA","public","measurements_other",[223]],
  [3418,"TABLE DATA","public","orders",[218]],
  [3427,"TABLE DATA","public","tickets",[229]],
  [3448,"SEQUENCE SET","public","Customer_Id_seq",[215]],
  [3449,"SEQUENCE SET","public","documents_id_seq",[224]],
  [3450,"SEQUENCE SET","public","invoice_no",[226]],
  [3451,"SEQUENCE SET","public","measurements_id_seq",[219]],
  [3452,"SEQUENCE SET","public","orders_id_seq",[217]],
  [3453,"SEQUENCE SET","public","tickets_id_seq",[228]],
  [3430,"BLOBS",null,"BLOBS",[]],
  [3267,"CONSTRAINT","My Schema","Odd \"Name\" Odd \"Name\"_pkey",[230]],
  [3258,"CONSTRAINT","public","Customer Customer_pkey",[216]],
  [3263,"CONSTRAINT","public","documents documents_pkey",[225]],
  [3261,"CONSTRAINT","public","orders orders_pkey",[218]],
  [3265,"CONSTRAINT","public","tickets tickets_pkey",[229]],
  [3256,"INDEX","public","Customer_name_uq",[216]],
  [3259,"INDEX","public","orders_customer",[218]],
  [3269,"TRIGGER","public","Customer Customer_touch",[231,216]],
  [3268,"FK CONSTRAINT","public","orders orders_customer_id_fkey",[3258,216,218]],
  [3413,"ROW SECURITY","public","Customer",[216]],
  [3414,"POLICY","public","Customer happy_only",[854,216,216]],
];

const toc: TocEntry[] = DUMPED.map(([dumpId, desc, namespace, tag, deps]) => ({ dumpId, desc, namespace, tag, deps, owner: 'shop', section: 2, defn: null, flagAt: 0, flag: 1, offset: 0 }));
const names = (es: TocEntry[]) => es.map((e) => `${e.desc} ${e.namespace ?? '-'} ${e.tag}`);

describe('parseQualified', () => {
  it('folds unquoted names and keeps quoted ones exactly', () => {
    expect(parseQualified('Public.Customer')).toEqual({ schema: 'public', name: 'customer' });
    expect(parseQualified('public."Customer"')).toEqual({ schema: 'public', name: 'Customer' });
    expect(parseQualified('"My Schema"."Odd ""Name"""')).toEqual({ schema: 'My Schema', name: 'Odd "Name"' });
    expect(parseQualified('"a.b"')).toEqual({ schema: null, name: 'a.b' });
    expect(parseQualified('orders')).toEqual({ schema: null, name: 'orders' });
  });
  it('refuses what PostgreSQL would not read', () => {
    for (const bad of ['a.b.c', '"open', 'a.', '.b', 'a"b', '""', '"x"y']) expect(() => parseQualified(bad), bad).toThrow(UsageError);
  });
  it('quotes as quote_ident does', () => {
    expect(quoteIdent('orders')).toBe('orders');
    expect(quoteIdent('Customer')).toBe('"Customer"');
    expect(quoteIdent('Odd "Name"')).toBe('"Odd ""Name"""');
  });
});

describe('planTables', () => {
  it('takes a table with its sequence, default, data, constraints, indexes, trigger, policy, row security, comments and grants', () => {
    const p = planTables(toc, { tables: ['public."Customer"'], schemas: [] });
    expect(names(p.tables)).toEqual(['TABLE public Customer']);
    expect(names(p.entries)).toEqual([
      'TABLE public Customer',
      'COMMENT public TABLE "Customer"',
      'COMMENT public COLUMN "Customer"."FullName"',
      'COMMENT public CONSTRAINT name_not_blank ON "Customer"',
      'ACL public TABLE "Customer"',
      'ACL public COLUMN "Customer".city',
      'SEQUENCE public Customer_Id_seq',
      'SEQUENCE OWNED BY public Customer_Id_seq',
      'DEFAULT public Customer Id',
      'TABLE DATA public Customer',
      'SEQUENCE SET public Customer_Id_seq',
      'CONSTRAINT public Customer Customer_pkey',
      'INDEX public Customer_name_uq',
      'TRIGGER public Customer Customer_touch',
      'ROW SECURITY public Customer',
      'POLICY public Customer happy_only',
    ]);
    // The view on it and the other table's foreign key to it are named, not restored.
    expect(p.leftOut.map((l) => `${l.entry.desc} ${l.entry.tag}`)).toEqual(['FK CONSTRAINT orders orders_customer_id_fkey', 'VIEW HappyCustomers']);
    expect(p.leftOut[0].reason).toBe('it refers to table public.orders, which is not restored');
    // A new database gets the type and the trigger's function, not the database entry or large objects.
    expect(names(p.context)).toEqual(['ENCODING - ENCODING', 'STDSTRINGS - STDSTRINGS', 'SEARCHPATH - SEARCHPATH', 'SCHEMA - My Schema', 'ACL - SCHEMA "My Schema"', 'TYPE public mood', 'FUNCTION public touch_city()']);
  });

  it('leaves out a foreign key to a table not restored, and says which', () => {
    const p = planTables(toc, { tables: ['orders'], schemas: [] });
    expect(names(p.entries)).toContain('INDEX public orders_customer');
    expect(names(p.entries)).not.toContain('FK CONSTRAINT public orders orders_customer_id_fkey');
    expect(p.leftOut).toHaveLength(1);
    expect(p.leftOut[0].entry.desc).toBe('FK CONSTRAINT');
    expect(p.leftOut[0].reason).toContain('table public.Customer');
    // Both tables: the foreign key comes along.
    const both = planTables(toc, { tables: ['orders', 'public."Customer"'], schemas: [] });
    expect(names(both.entries)).toContain('FK CONSTRAINT public orders orders_customer_id_fkey');
    expect(both.leftOut.map((l) => l.entry.desc)).toEqual(['VIEW']);
  });

  it('takes a partitioned table with its partitions and their data', () => {
    const p = planTables(toc, { tables: ['public.measurements'], schemas: [] });
    expect(p.tables.map(qualified)).toEqual(['public.measurements', 'public.measurements_2025_01', 'public.measurements_2025_02', 'public.measurements_other']);
    const n = names(p.entries);
    for (const x of ['TABLE ATTACH public measurements_other', 'TABLE DATA public measurements_2025_02', 'SEQUENCE SET public measurements_id_seq', 'DEFAULT public measurements id']) expect(n).toContain(x);
    expect(p.leftOut).toEqual([]);
  });

  it('takes an identity sequence and a shared sequence a default uses', () => {
    const n = names(planTables(toc, { tables: ['tickets'], schemas: [] }).entries);
    expect(n).toEqual(expect.arrayContaining(['SEQUENCE public invoice_no', 'SEQUENCE SET public invoice_no', 'SEQUENCE public tickets_id_seq', 'SEQUENCE SET public tickets_id_seq', 'TABLE DATA public tickets']));
  });

  it('finds a name that needs quoting, and a whole schema', () => {
    const p = planTables(toc, { tables: ['"My Schema"."Odd ""Name"""'], schemas: [] });
    expect(names(p.entries)).toEqual(['TABLE My Schema Odd "Name"', 'ACL My Schema TABLE "Odd ""Name"""', 'TABLE DATA My Schema Odd "Name"', 'CONSTRAINT My Schema Odd "Name" Odd "Name"_pkey']);
    expect(planTables(toc, { tables: [], schemas: ['My Schema'] }).tables.map(qualified)).toEqual(['"My Schema"."Odd ""Name"""']);
  });

  it('a table not in the dump: the error names the closest ones', () => {
    expect(() => planTables(toc, { tables: ['public.customer'], schemas: [] })).toThrow(/no table public\.customer in the dump; the closest: public\."Customer"/);
    expect(() => planTables(toc, { tables: ['ordres'], schemas: [] })).toThrow(/closest: public\.orders/);
    expect(() => planTables(toc, { tables: [], schemas: ['nope'] })).toThrow(/no table of schema nope/);
    expect(() => planTables(toc, { tables: [], schemas: [] })).toThrow(UsageError);
  });

  it('writes the list pg_restore -L reads, one entry a line in the archive order', () => {
    const p = planTables(toc, { tables: ['tickets'], schemas: [] });
    const list = restoreList(p.entries).split('\n').filter(Boolean);
    expect(list[0]).toMatch(/^226; 0 0 SEQUENCE public invoice_no shop$/);
    expect(list.map((l) => Number(l.split(';')[0]))).toEqual(p.entries.map((e) => e.dumpId));
  });
});

describe('backupContents (show)', () => {
  const meta = {
    format_version: 1, id: 'db_20250106_020000Z', project: 'shop', environment: 'production', database: 'shop_production', type: 'manual', release: null,
    created_at: '2025-01-06T02:00:00Z', started_at: '2025-01-06T02:00:00Z', finished_at: '2025-01-06T02:00:01Z', duration_ms: 1000,
    file: 'db_20250106_020000Z.dump.zst', size_bytes: 1234, sha256: 'a'.repeat(64), format: 'custom', compression: { algorithm: 'zstd', level: 3 }, encryption: null,
    pg_dump_version: '15.8', server_version: '15.8', source: { container: 'c', user: 'shop' },
    tables: { 'public."Customer"': 200, 'public.orders': 600, '"My Schema"."Odd ""Name"""': 25 }, total_rows: 825, pgfleet_version: '0', verification: null,
  } as const;
  it('puts the metadata and the table of contents side by side, by schema', async () => {
    const { backupContents } = await import('../../lib/restore/contents.js');
    const c = backupContents(meta as never, { version: '1.14.0', intSize: 4, offSize: 8, headBytes: 0, entries: toc });
    expect(c.schemas.map((s) => s.name)).toEqual(['My Schema', 'public']);
    const pub = c.schemas[1];
    expect(pub.tables.find((t) => t.name === 'public."Customer"')).toEqual({ name: 'public."Customer"', rows: 200, data: true });
    expect(pub.tables.find((t) => t.name === 'public.measurements')).toEqual({ name: 'public.measurements', rows: null, data: false });
    expect(pub.objects).toMatchObject({ view: 1, sequence: 6, function: 1, type: 1, index: 2, trigger: 1, policy: 1, 'fk constraint': 1 });
    expect(c.schemas[0].tables).toEqual([{ name: '"My Schema"."Odd ""Name"""', rows: 25, data: true }]);
    expect(c.global).toEqual({ schema: 1, blob: 1 });
    expect(c.exclusions).toBeNull();
  });
});
