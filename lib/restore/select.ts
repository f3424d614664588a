/**
 * Choosing what a table restore brings back, from the dump's own table of contents and its
 * dependency graph (lib/postgres/archive.ts TocEntry): a pure planner, every choice with its reason.
 *
 *   the named tables (and every table of a named schema) → their partitions and inheritance
 *   children → their sequences (owned, identity, or used by a column default) → everything that
 *   belongs to them (defaults, data, sequence positions, constraints, indexes, triggers, policies,
 *   row security, rules, statistics, comments, grants, security labels) → the context a new
 *   database needs (schemas, extensions, types, functions, …)
 *
 * An entry that belongs to a restored table but also depends on an object not restored (a foreign
 * key to another table, a policy reading another table) is left out and named in `leftOut`, as is
 * a view or other relation over a restored table: never dropped without a word.
 */
import { UsageError } from '../core/errors.js';
import type { TocEntry } from '../postgres/archive.js';

/** Relations: restored only when chosen (tables) or needed (sequences). */
const RELATIONS = new Set(['TABLE', 'VIEW', 'MATERIALIZED VIEW', 'FOREIGN TABLE', 'SEQUENCE']);
/** Entries that belong to the objects they depend on. */
const BELONGS = new Set([
  'DEFAULT', 'CONSTRAINT', 'CHECK CONSTRAINT', 'FK CONSTRAINT', 'INDEX', 'INDEX ATTACH', 'TRIGGER', 'POLICY', 'ROW SECURITY', 'RULE',
  'STATISTICS', 'COMMENT', 'ACL', 'SECURITY LABEL', 'SEQUENCE OWNED BY', 'SEQUENCE SET', 'TABLE DATA', 'TABLE ATTACH',
]);
/** What a new database needs for the tables to be created in it: never data, never other relations. */
const CONTEXT = new Set([
  'ENCODING', 'STDSTRINGS', 'SEARCHPATH', 'SCHEMA', 'EXTENSION', 'TYPE', 'SHELL TYPE', 'DOMAIN', 'FUNCTION', 'PROCEDURE', 'AGGREGATE',
  'COLLATION', 'CONVERSION', 'OPERATOR', 'OPERATOR CLASS', 'OPERATOR FAMILY', 'CAST', 'TEXT SEARCH PARSER', 'TEXT SEARCH DICTIONARY',
  'TEXT SEARCH TEMPLATE', 'TEXT SEARCH CONFIGURATION', 'PROCEDURAL LANGUAGE', 'TRANSFORM', 'ACCESS METHOD', 'FOREIGN DATA WRAPPER', 'SERVER',
]);

export interface QualifiedName {
  /** null: not qualified. */
  schema: string | null;
  name: string;
}

/**
 * `schema.table` read as PostgreSQL reads a qualified name: an unquoted part folds to lower case,
 * a "quoted" part keeps its case and dots, and "" inside quotes is one ".
 */
export function parseQualified(s: string): QualifiedName {
  const parts: string[] = [];
  let i = 0;
  const bad = (why: string) => new UsageError(`--table ${JSON.stringify(s)}: ${why} (write schema.table; quote a name as PostgreSQL does: '"My Schema"."Odd""Name"')`);
  while (i <= s.length) {
    let part = '';
    if (s[i] === '"') {
      for (i++; ; i++) {
        if (i >= s.length) throw bad('an unclosed quote');
        if (s[i] === '"' && s[i + 1] === '"') [part, i] = [part + '"', i + 1];
        else if (s[i] === '"') break;
        else part += s[i];
      }
      i++;
      if (!part) throw bad('an empty quoted name');
    } else {
      const end = s.indexOf('.', i);
      part = s.slice(i, end < 0 ? s.length : end);
      if (part.includes('"')) throw bad('a quote inside an unquoted name');
      part = part.trim().toLowerCase();
      if (!part) throw bad('an empty name');
      i = end < 0 ? s.length : end;
    }
    parts.push(part);
    if (i >= s.length) break;
    if (s[i] !== '.') throw bad(`unexpected ${JSON.stringify(s[i])} after a quoted name`);
    i++;
    if (i >= s.length) throw bad('nothing after the dot');
  }
  if (parts.length > 2) throw bad('more than schema and table');
  return parts.length === 2 ? { schema: parts[0], name: parts[1] } : { schema: null, name: parts[0] };
}

/** An identifier as PostgreSQL's quote_ident writes it (keywords aside: those it quotes too). */
export function quoteIdent(s: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(s) ? s : '"' + s.replace(/"/g, '""') + '"';
}

export const qualified = (e: Pick<TocEntry, 'namespace' | 'tag'>) => `${quoteIdent(e.namespace ?? '')}.${quoteIdent(e.tag ?? '')}`;

export interface TablePlan {
  /** The tables restored: those named, then their partitions and children; in TOC order. */
  tables: TocEntry[];
  /** Every entry to restore for them (tables, sequences and what belongs to them), in TOC order. */
  entries: TocEntry[];
  /** What a new database needs besides (schemas, extensions, types, functions and their comments and grants), in TOC order. */
  context: TocEntry[];
  /** Entries not restored although they touch a restored table, each with the reason. */
  leftOut: { entry: TocEntry; reason: string }[];
  /** Context and entries together, in TOC order: what a new database is given. */
  all: TocEntry[];
}

export interface TableRequest {
  /** `schema.table` as given on the command line. */
  tables: string[];
  /** Every table of these schemas. */
  schemas: string[];
}

/** Levenshtein distance, for naming the closest tables to one that is not in the dump. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The TABLE entries a request names; a name not in the dump is a UsageError naming the closest ones. */
export function namedTables(toc: TocEntry[], req: TableRequest): TocEntry[] {
  const tables = toc.filter((e) => e.desc === 'TABLE');
  const chosen = new Set<TocEntry>();
  for (const raw of req.tables) {
    const q = parseQualified(raw);
    const hits = tables.filter((e) => e.tag === q.name && (q.schema === null || e.namespace === q.schema));
    if (hits.length > 1) throw new UsageError(`--table ${raw}: tables of that name in several schemas (${hits.map(qualified).join(', ')}); name the schema`);
    if (!hits.length) {
      const want = q.schema === null ? q.name : `${q.schema}.${q.name}`;
      const near = tables
        .map((e) => ({ e, d: Math.min(distance(want.toLowerCase(), `${e.namespace}.${e.tag}`.toLowerCase()), distance(q.name.toLowerCase(), (e.tag ?? '').toLowerCase())) }))
        .sort((a, b) => a.d - b.d)
        .slice(0, 3)
        .map((x) => qualified(x.e));
      throw new UsageError(`--table ${raw}: no table ${q.schema === null ? quoteIdent(q.name) : `${quoteIdent(q.schema)}.${quoteIdent(q.name)}`} in the dump${near.length ? `; the closest: ${near.join(', ')}` : ' (it holds no tables)'}`);
    }
    chosen.add(hits[0]);
  }
  for (const s of req.schemas) {
    const inSchema = tables.filter((e) => e.namespace === s);
    if (!inSchema.length) {
      const schemas = [...new Set(tables.map((e) => e.namespace ?? ''))].sort((a, b) => distance(s, a) - distance(s, b)).slice(0, 3);
      throw new UsageError(`--schema ${s}: no table of schema ${quoteIdent(s)} in the dump${schemas.length ? `; schemas with tables: ${schemas.map(quoteIdent).join(', ')}` : ''}`);
    }
    inSchema.forEach((e) => chosen.add(e));
  }
  if (!chosen.size) throw new UsageError('name the tables to restore: --table schema.table (repeatable) or --schema name');
  return toc.filter((e) => chosen.has(e));
}

export function planTables(toc: TocEntry[], req: TableRequest): TablePlan {
  const byId = new Map(toc.map((e) => [e.dumpId, e]));
  const inc = new Set<number>(namedTables(toc, req).map((e) => e.dumpId));
  const dependsOnInc = (e: TocEntry) => e.deps.some((d) => inc.has(d));
  const grow = (pick: (e: TocEntry) => boolean) => growSet(toc, inc, pick);
  // Partitions and inheritance children depend on their parent table.
  grow((e) => e.desc === 'TABLE' && dependsOnInc(e));
  const tables = toc.filter((e) => inc.has(e.dumpId));
  // Sequences: an owned or identity sequence depends on its table; one a column default uses is a
  // dependency of that DEFAULT (or of the table, when the default is written in its CREATE TABLE).
  for (const e of toc) {
    if ((e.desc === 'TABLE' && inc.has(e.dumpId)) || (e.desc === 'DEFAULT' && dependsOnInc(e)))
      for (const d of e.deps) if (byId.get(d)?.desc === 'SEQUENCE') inc.add(d);
    if (e.desc === 'SEQUENCE' && dependsOnInc(e)) inc.add(e.dumpId);
  }
  // What belongs to them, then out again what also depends on a relation (or its parts) not restored.
  grow((e) => BELONGS.has(e.desc ?? '') && dependsOnInc(e));
  const leftOut: TablePlan['leftOut'] = [];
  const foreign = (d: number) => {
    const x = byId.get(d);
    return !!x && !inc.has(d) && (RELATIONS.has(x.desc ?? '') || BELONGS.has(x.desc ?? ''));
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const e of toc) {
      if (!inc.has(e.dumpId) || RELATIONS.has(e.desc ?? '')) continue;
      const f = e.deps.find(foreign);
      if (f === undefined) continue;
      inc.delete(e.dumpId);
      changed = true;
      leftOut.push({ entry: e, reason: `it refers to ${describeEntry(ownerOf(byId.get(f)!, byId))}, which is not restored` });
    }
  }
  for (const e of toc) if (RELATIONS.has(e.desc ?? '') && !inc.has(e.dumpId) && dependsOnInc(e)) leftOut.push({ entry: e, reason: 'it is built on a restored table; restore it by hand if needed' });
  // The context: objects outside any relation, with their own comments and grants.
  const ctx = new Set<number>();
  const isContext = (e: TocEntry) => CONTEXT.has(e.desc ?? '') || (['COMMENT', 'ACL', 'SECURITY LABEL'].includes(e.desc ?? '') && e.deps.length > 0);
  growSet(toc, ctx, (e) => !inc.has(e.dumpId) && isContext(e) && e.deps.every((d) => !byId.has(d) || ctx.has(d) || inc.has(d)));
  return { tables, entries: toc.filter((e) => inc.has(e.dumpId)), context: toc.filter((e) => ctx.has(e.dumpId)), leftOut, all: toc.filter((e) => inc.has(e.dumpId) || ctx.has(e.dumpId)) };
}

/** Add to `set` every entry `pick` accepts, until none is added. */
function growSet(toc: TocEntry[], set: Set<number>, pick: (e: TocEntry) => boolean): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const e of toc) if (!set.has(e.dumpId) && pick(e)) [set.add(e.dumpId), (changed = true)];
  }
}

/** The relation an entry belongs to (a constraint's table), or the entry itself. */
function ownerOf(e: TocEntry, byId: Map<number, TocEntry>): TocEntry {
  if (RELATIONS.has(e.desc ?? '')) return e;
  const rel = e.deps.map((d) => byId.get(d)).find((x) => x && RELATIONS.has(x.desc ?? ''));
  return rel ?? e;
}

/** `TABLE public.orders`, `FK CONSTRAINT public.orders orders_customer_id_fkey`. */
export function describeEntry(e: TocEntry): string {
  const desc = (e.desc ?? '?').toLowerCase();
  if (e.namespace === null) return `${desc} ${e.tag ?? ''}`.trim();
  return `${desc} ${quoteIdent(e.namespace)}.${e.tag ?? ''}`;
}

/**
 * The list file pg_restore -L reads: one line per entry, in the archive's order, as `pg_restore -l`
 * writes them (pg_restore reads only the id before the `;`).
 */
export function restoreList(entries: TocEntry[]): string {
  return entries.map((e) => `${e.dumpId}; 0 0 ${e.desc ?? ''} ${e.namespace ?? '-'} ${(e.tag ?? '').replace(/[\r\n]/g, ' ')} ${e.owner ?? ''}\n`).join('');
}
