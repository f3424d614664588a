/**
 * A partial backup's exclusions (database.backup.exclude_tables / exclude_table_data): the
 * patterns as pg_dump arguments, and the relations they match, resolved on the server the way
 * pg_dump resolves them (src/bin/pg_dump expand_table_name_patterns, src/fe_utils/string_utils.c
 * patternToSQLRegex / processSQLNamePattern): a shell-style pattern made a regular expression,
 * letters outside double quotes lowered, `*` → `.*`, `?` → `.`, `$` always literal, regexp
 * characters inside quotes literal; an unqualified pattern matches only relations visible on the
 * session's default search_path (pg_dump resets it for this query). Run in the dump's exported
 * snapshot, so pg_dump, which imports it before resolving, sees the same catalog.
 */
import type { Target } from '../config/load.js';
import type { BackupType, PartialInfo } from '../formats/metadata.js';

/** A backup's patterns (database.backup.exclude_tables / exclude_table_data). */
export interface Exclusions {
  excludeTables: readonly string[];
  excludeTableData: readonly string[];
}

/**
 * The exclusions a backup of `type` is taken with: the target's, except for a safety backup (taken
 * before a restore replaces the live database: it is that database's way back, so it holds all of it).
 */
export function exclusionsFor(target: Pick<Target, 'backup'>, type: BackupType): Exclusions {
  if (type === 'safety') return { excludeTables: [], excludeTableData: [] };
  return { excludeTables: target.backup.exclude_tables, excludeTableData: target.backup.exclude_table_data };
}

/** pg_dump's arguments for the exclusions, each pattern its own argument (never through a shell's parsing). */
export function exclusionArgs(ex: Exclusions): string[] {
  return [...ex.excludeTables.map((p) => `--exclude-table=${p}`), ...ex.excludeTableData.map((p) => `--exclude-table-data=${p}`)];
}

/** The regular expressions pg_dump makes of a pattern: one per dotted part (schema, name), each anchored as `^(…)$`. */
export function patternRegexes(pattern: string): string[] {
  const bufs = ['^('];
  let inQuotes = false;
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i];
    const cur = bufs.length - 1;
    if (ch === '"') {
      if (inQuotes && pattern[i + 1] === '"') {
        bufs[cur] += '"';
        i++;
      } else inQuotes = !inQuotes;
      i++;
    } else if (!inQuotes && ch >= 'A' && ch <= 'Z') {
      bufs[cur] += ch.toLowerCase();
      i++;
    } else if (!inQuotes && ch === '*') {
      bufs[cur] += '.*';
      i++;
    } else if (!inQuotes && ch === '?') {
      bufs[cur] += '.';
      i++;
    } else if (!inQuotes && ch === '.') {
      bufs[cur] += ')$';
      bufs.push('^(');
      i++;
    } else if (ch === '$') {
      bufs[cur] += '\\$';
      i++;
    } else {
      if (inQuotes && '|*+?()[]{}.^$\\'.includes(ch)) bufs[cur] += '\\';
      else if (ch === '[' && pattern[i + 1] === ']') bufs[cur] += '\\';
      const cp = String.fromCodePoint(pattern.codePointAt(i)!);
      bufs[cur] += cp;
      i += cp.length;
    }
  }
  bufs[bufs.length - 1] += ')$';
  return bufs;
}

/** An SQL string literal that reads the same whatever standard_conforming_strings says. */
const escaped = (s: string) => "E'" + s.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";

/** The WHERE condition (over pg_class c, pg_namespace n) of one pattern, as processSQLNamePattern writes it. */
export function patternCondition(pattern: string): string {
  const re = patternRegexes(pattern);
  const [schema, name] = re.length === 1 ? [undefined, re[0]] : [re[0], re[1]];
  const conds: string[] = [];
  if (name !== '^(.*)$') conds.push(`c.relname OPERATOR(pg_catalog.~) ${escaped(name)} COLLATE pg_catalog.default`);
  if (schema === undefined) conds.push('pg_catalog.pg_table_is_visible(c.oid)');
  else if (schema !== '^(.*)$') conds.push(`n.nspname OPERATOR(pg_catalog.~) ${escaped(schema)} COLLATE pg_catalog.default`);
  return conds.length ? `(${conds.join(' AND ')})` : 'true';
}

const anyOf = (patterns: readonly string[]) => (patterns.length ? patterns.map(patternCondition).join(' OR ') : 'false');

/**
 * One query: the relations the patterns match, as JSON {"tables": […], "data": […]}, names as the
 * row counts spell them. `tables`: every relation pg_dump leaves out (tables, partitioned tables,
 * views, materialized views, sequences, foreign tables); `data`: the tables (those whose rows are
 * counted: ordinary tables and partitions, not extension members) dumped without their rows.
 */
export function exclusionsSql(o: { excludeTables: readonly string[]; excludeTableData: readonly string[] }): string {
  const name = `quote_ident(n.nspname) || '.' || quote_ident(c.relname)`;
  const from = `FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.relkind OPERATOR(pg_catalog.=) ANY (array['r', 'S', 'v', 'm', 'f', 'p'])`;
  const counted = `c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;
  const tables = anyOf(o.excludeTables);
  return `RESET search_path;
SELECT json_build_object(
  'tables', (SELECT coalesce(json_agg(t ORDER BY t), '[]'::json) FROM (SELECT DISTINCT ${name} AS t ${from} AND (${tables})) x),
  'data', (SELECT coalesce(json_agg(t ORDER BY t), '[]'::json) FROM (SELECT DISTINCT ${name} AS t ${from} AND (${anyOf(o.excludeTableData)}) AND NOT (${tables}) AND ${counted}) x));`;
}

export function parseExclusions(out: string, o: { excludeTables: readonly string[]; excludeTableData: readonly string[] }): PartialInfo {
  const got = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { tables?: string[]; data?: string[] };
  return { exclude_tables: [...o.excludeTables], exclude_table_data: [...o.excludeTableData], tables_excluded: got.tables ?? [], data_excluded: got.data ?? [] };
}
