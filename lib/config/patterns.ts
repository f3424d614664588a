/**
 * Table patterns as pg_dump takes them (`--exclude-table`, `--exclude-table-data`): `name` or
 * `schema.name`, `*` and `?` as wildcards, double quotes for an exact (case-kept) part, `""` for a
 * quote inside them. Checked here so a typo is a config error, not a dump that silently excludes
 * something else; lib/backup/exclusions.ts resolves them on the server the way pg_dump does.
 */
import { z } from 'zod';
import { segmentName } from './names.js';

/** The parts of a pattern split at the dots outside double quotes; `unclosed` when a quote is left open. */
export function patternParts(pattern: string): { parts: string[]; unclosed: boolean } {
  const parts = [''];
  let inQuotes = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '"') {
      if (inQuotes && pattern[i + 1] === '"') {
        parts[parts.length - 1] += '""';
        i++;
        continue;
      }
      inQuotes = !inQuotes;
    }
    if (ch === '.' && !inQuotes) parts.push('');
    else parts[parts.length - 1] += ch;
  }
  return { parts, unclosed: inQuotes };
}

/** Why `pattern` is not a table pattern pgfleet passes to pg_dump, or undefined when it is one. */
export function patternProblem(pattern: string): string | undefined {
  if (!pattern.trim()) return 'an empty pattern';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'a control character (newline, tab…) in a pattern';
  if (pattern.length > 200) return 'a pattern longer than 200 characters';
  const { parts, unclosed } = patternParts(pattern);
  if (unclosed) return 'a double quote is not closed (write "" for a quote inside quotes)';
  if (parts.length > 2) return 'more than one dot outside double quotes (expected table or schema.table; quote a dot that is part of a name)';
  if (parts.some((p) => p === '')) return 'an empty schema or table part around the dot';
  return undefined;
}

export const tablePattern = z.string().superRefine((s, ctx) => {
  const why = patternProblem(s);
  if (why) ctx.addIssue({ code: 'custom', message: `not a pg_dump table pattern (${JSON.stringify(s)}): ${why}` });
});

const patternList = z.array(tablePattern);

/**
 * `exclude_tables` / `exclude_table_data`: a list (every environment of the project), or a
 * mapping of environment names to lists (an environment not named gets none).
 */
export const tablePatterns = z.union([patternList, z.record(segmentName('environment name'), patternList)], {
  error: 'expected a list of table patterns, or a mapping of environment names to such lists',
});

export type TablePatterns = z.infer<typeof tablePatterns>;

/** The patterns that apply to `environment`, without duplicates, in their order. */
export function patternsFor(value: TablePatterns | undefined, environment: string): string[] {
  if (!value) return [];
  const list = Array.isArray(value) ? value : (Object.hasOwn(value, environment) ? value[environment] : []);
  return [...new Set(list)];
}
