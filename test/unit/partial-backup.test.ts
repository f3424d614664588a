// Partial backups, the pure parts: pg_dump's pattern → regular expression, the conditions it makes,
// what a restored copy of a partial backup must hold, and how metadata says a backup is partial.
import { describe, expect, it } from 'vitest';
import { exclusionArgs, exclusionsFor, patternCondition, patternRegexes } from '../../lib/backup/exclusions.js';
import { listed } from '../../lib/commands/list.js';
import { describePartial, partialOf } from '../../lib/formats/metadata.js';
import { compareCounts } from '../../lib/restore/dump.js';
import { sampleMetadata } from '../fixtures.js';

const sampleMeta = () => sampleMetadata('db_20260101_000000Z', '2026-01-01T00:00:00Z');

describe('pg_dump table patterns as regular expressions (patternToSQLRegex)', () => {
  it('lowers letters outside quotes, keeps them inside; * and ? are wildcards outside quotes', () => {
    expect(patternRegexes('event_logs')).toEqual(['^(event_logs)$']);
    expect(patternRegexes('Public.Event*')).toEqual(['^(public)$', '^(event.*)$']);
    expect(patternRegexes('audit.log_?')).toEqual(['^(audit)$', '^(log_.)$']);
    expect(patternRegexes('"Mixed"."Case Table"')).toEqual(['^(Mixed)$', '^(Case Table)$']);
    expect(patternRegexes('"Odd*"')).toEqual(['^(Odd\\*)$']);
  });

  it('a quote inside quotes, a quoted dot, $ always literal, [] literal', () => {
    expect(patternRegexes('"we""ird"')).toEqual(['^(we"ird)$']);
    expect(patternRegexes('"a.b"')).toEqual(['^(a\\.b)$']);
    expect(patternRegexes('x$y')).toEqual(['^(x\\$y)$']);
    expect(patternRegexes('int[]')).toEqual(['^(int\\[])$']);
    expect(patternRegexes('"Ünïcode"')).toEqual(['^(Ünïcode)$']);
  });

  it('conditions: unqualified → visible on the search_path; * parts optimized away; literals escaped', () => {
    expect(patternCondition('event_logs')).toBe("(c.relname OPERATOR(pg_catalog.~) E'^(event_logs)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid))");
    expect(patternCondition('logs.*')).toBe("(n.nspname OPERATOR(pg_catalog.~) E'^(logs)$' COLLATE pg_catalog.default)");
    expect(patternCondition('*.*')).toBe('true');
    expect(patternCondition(`"it's"`)).toBe("(c.relname OPERATOR(pg_catalog.~) E'^(it''s)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid))");
    expect(patternCondition('x$')).toContain("E'^(x\\\\$)$'");
  });

  it('each pattern is its own pg_dump argument, as written', () => {
    const backup = { exclude_tables: ['"My Schema"."Odd ""Name"""', 'a b'], exclude_table_data: ['logs.*'] };
    expect(exclusionArgs(exclusionsFor({ backup } as never, 'scheduled'))).toEqual(['--exclude-table="My Schema"."Odd ""Name"""', '--exclude-table=a b', '--exclude-table-data=logs.*']);
  });

  it('a safety backup (the live database\'s way back before a restore) is always whole', () => {
    const backup = { exclude_tables: ['x'], exclude_table_data: ['logs.*'] };
    expect(exclusionsFor({ backup } as never, 'safety')).toEqual({ excludeTables: [], excludeTableData: [] });
    expect(exclusionsFor({ backup } as never, 'pre-deploy')).toEqual({ excludeTables: ['x'], excludeTableData: ['logs.*'] });
  });
});

describe('a restored copy of a partial backup', () => {
  it('an excluded-data table must be there and empty; a recorded table as recorded', () => {
    expect(compareCounts({ 'public.a': 2 }, { 'public.a': 2, 'public.logs': 0 }, ['public.logs'])).toEqual([]);
    expect(compareCounts({ 'public.a': 2 }, { 'public.a': 2, 'public.logs': 5 }, ['public.logs'])).toEqual(['table public.logs has 5 rows, none expected (its data was excluded from the backup)']);
    expect(compareCounts({ 'public.a': 2 }, { 'public.a': 2 }, ['public.logs'])).toEqual(['table public.logs is missing (its data was excluded from the backup, the table was not)']);
    expect(compareCounts({ 'public.a': 2 }, { 'public.a': 2, 'public.logs': 0 })).toEqual(['table public.logs was not recorded in the backup']);
  });
});

describe('metadata of a partial backup', () => {
  const partial = { exclude_tables: ['public.tmp_*'], exclude_table_data: ['"Audit".*', 'nothing_here'], tables_excluded: ['public.tmp_x'], data_excluded: ['"Audit"."Log"'] };

  it('old metadata (no partial) and null read as a full backup; patterns that matched nothing still make it partial', () => {
    expect(partialOf(sampleMeta())).toBeNull();
    expect(partialOf({ partial: null })).toBeNull();
    expect(partialOf({ partial })).toEqual(partial);
    expect(partialOf({ partial: { ...partial, exclude_tables: [], tables_excluded: [] } })).not.toBeNull();
  });

  it('says the patterns and what they matched', () => {
    expect(describePartial(partial)).toBe('exclude_tables public.tmp_* (matched public.tmp_x); exclude_table_data "Audit".*, nothing_here (matched "Audit"."Log")');
    expect(describePartial({ ...partial, exclude_tables: [], tables_excluded: [], data_excluded: [] })).toBe('exclude_table_data "Audit".*, nothing_here (matched nothing)');
  });

  it('list --json carries it; null for a full backup', () => {
    const b = { meta: sampleMeta(), path: '/x', metaPath: '/x.json', key: 'k', metaKey: 'k.json' };
    expect(listed(b as never).partial).toBeNull();
    expect(listed({ ...b, meta: { ...b.meta, partial } } as never).partial).toEqual(partial);
  });
});
