// lib/postgres/dbadmin.ts: the names of scratch and kept databases, and the settings carried over a swap.
import { describe, expect, it } from 'vitest';
import { beforeName, beforePrefix, MAX_IDENT_BYTES, scratchName, settingClause, splitGucList, truncateBytes } from '../../lib/postgres/dbadmin.js';
import { PG_IDENT } from '../../lib/config/names.js';

const at = new Date('2025-01-06T02:03:04.567Z');

describe('scratch and kept database names', () => {
  it('are recognisable, stamped in UTC, valid identifiers', () => {
    expect(scratchName('acme_production', at, 'ab12')).toBe('acme_production__pgfleet_scratch_20250106_020304_ab12');
    expect(beforeName('acme_production', at)).toBe('acme_production__before_20250106_020304');
    expect(beforeName('acme_production', at, 3)).toBe('acme_production__before_20250106_020304_3');
    expect(PG_IDENT.test(scratchName('acme_production', at))).toBe(true);
  });

  it('never exceed 63 bytes, however long the database name (PostgreSQL would truncate silently)', () => {
    const long = 'a'.repeat(63);
    for (const n of [scratchName(long, at), beforeName(long, at, 99)]) expect(Buffer.byteLength(n)).toBeLessThanOrEqual(MAX_IDENT_BYTES);
    expect(beforeName(long, at, 99).startsWith(beforePrefix(long))).toBe(true);
    expect(scratchName(long, at, 'x1')).not.toBe(scratchName(long, at, 'x2'));
  });

  it('truncate on character boundaries', () => {
    expect(truncateBytes('ééé', 5)).toBe('éé');
    expect(truncateBytes('abc', 10)).toBe('abc');
  });
});

describe('database settings carried over a swap', () => {
  it('quotes plain values as literals and names as identifiers', () => {
    expect(settingClause('work_mem=7MB')).toBe(`SET "work_mem" TO '7MB'`);
    expect(settingClause("app.note=it's")).toBe(`SET "app.note" TO 'it''s'`);
  });
  it('splits list settings item by item, as pg_dump does', () => {
    expect(splitGucList('"$user", public, "Odd ""Schema"""')).toEqual(['$user', 'public', 'Odd "Schema"']);
    expect(settingClause('search_path="$user", public')).toBe(`SET "search_path" TO '$user', 'public'`);
    expect(splitGucList('""')).toEqual(['']);
  });
  it('rejects what is not name=value', () => {
    expect(() => settingClause('nonsense')).toThrow(/unexpected database setting/);
  });
});
