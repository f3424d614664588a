/**
 * Database-level administration where a target's database lives, for the restore engine: names of
 * scratch and kept databases, create and drop, the properties a swap must keep, and the swap.
 * Everything runs on the maintenance database `postgres`; identifiers are quoted with ident() and
 * values with literal(), never spliced raw.
 */
import { randomBytes } from 'node:crypto';
import type { TargetShell } from '../process/container.js';
import { PgfleetError } from '../core/errors.js';
import { ident, literal, psql, PsqlSession } from './psql.js';

export const MAINTENANCE_DB = 'postgres';
/** PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1). */
export const MAX_IDENT_BYTES = 63;
export const SCRATCH_MARK = '__pgfleet_scratch_';
export const BEFORE_MARK = '__before_';

/** The longest prefix of s that fits in max UTF-8 bytes, never splitting a character. */
export function truncateBytes(s: string, max: number): string {
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/** 20250106_020000 (UTC). */
export function compactStamp(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').slice(0, 15).replace('T', '_');
}

/** `<db>__pgfleet_scratch_<stamp>_<rand>`, at most 63 bytes: unique per call, recognisable as ours. */
export function scratchName(database: string, at: Date, rand = randomBytes(2).toString('hex')): string {
  const suffix = `${SCRATCH_MARK}${compactStamp(at)}_${rand}`;
  return truncateBytes(database, MAX_IDENT_BYTES - suffix.length) + suffix;
}

/** The prefix every kept database of `database` starts with (room left for a stamp and `_NN`). */
export function beforePrefix(database: string): string {
  return truncateBytes(database, MAX_IDENT_BYTES - BEFORE_MARK.length - 15 - 3) + BEFORE_MARK;
}

/** `<db>__before_<stamp>` (with `_n` when that name is taken), at most 63 bytes. */
export function beforeName(database: string, at: Date, n = 1): string {
  return beforePrefix(database) + compactStamp(at) + (n > 1 ? `_${n}` : '');
}

const LIST_GUCS = new Set(['search_path', 'temp_tablespaces', 'session_preload_libraries', 'local_preload_libraries', 'shared_preload_libraries']);

/** One `name=value` entry of pg_db_role_setting as `SET name TO …` (list settings item by item). */
export function settingClause(entry: string): string {
  const at = entry.indexOf('=');
  if (at <= 0) throw new PgfleetError(`unexpected database setting ${JSON.stringify(entry)}`);
  const name = entry.slice(0, at);
  const value = entry.slice(at + 1);
  if (!LIST_GUCS.has(name.toLowerCase())) return `SET ${ident(name)} TO ${literal(value)}`;
  return `SET ${ident(name)} TO ${splitGucList(value).map(literal).join(', ')}`;
}

/** A list setting's items: split at commas outside double quotes, quotes removed ("" → "). */
export function splitGucList(value: string): string[] {
  const items: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '"' && value[i + 1] === '"') [cur, i] = [cur + '"', i + 1];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') [items.push(cur.trim()), (cur = '')];
    else cur += c;
  }
  items.push(quoted ? cur : cur.trim());
  return items;
}

/** What a database carries beyond its content, and a swap must keep. */
export interface DbProps {
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
  conn_limit: number;
  settings: string[];
  /** null: the default privileges (datacl NULL). */
  grants: { grantee: string | null; privilege: string; grantable: boolean }[] | null;
  comment: string | null;
  /** libc, icu or builtin; absent or null: a server without providers (before 15). */
  locale_provider?: 'libc' | 'icu' | 'builtin' | null;
  /** The ICU (or builtin) locale; null: none. */
  icu_locale?: string | null;
  /** ICU tailoring rules (16+); null: none. */
  icu_rules?: string | null;
  /** Its default tablespace. */
  tablespace?: string;
  allow_connections?: boolean;
  is_template?: boolean;
  /** ALTER ROLE … IN DATABASE … SET: per role, its settings in this database (keyed by the database, so a swap must carry them). */
  role_settings?: { role: string; settings: string[] }[];
  /** SECURITY LABEL … ON DATABASE, per provider. */
  security_labels?: { provider: string; label: string }[];
}

const PROVIDERS: Record<string, DbProps['locale_provider']> = { c: 'libc', i: 'icu', b: 'builtin' };

/** The properties of `database`, or null when it does not exist. */
export async function dbProps(sh: TargetShell, database: string, o: { signal?: AbortSignal; session?: PsqlSession } = {}): Promise<DbProps | null> {
  const out = await onMaintenance(
    sh,
    `SELECT json_build_object('owner', pg_get_userbyid(d.datdba), 'encoding', pg_encoding_to_char(d.encoding), 'collate', d.datcollate, 'ctype', d.datctype,
       'conn_limit', d.datconnlimit,
       'settings', coalesce((SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}'),
       'grants', CASE WHEN d.datacl IS NULL THEN NULL ELSE coalesce((SELECT json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
                  'privilege', a.privilege_type, 'grantable', a.is_grantable)) FROM aclexplode(d.datacl) a), '[]') END,
       'comment', shobj_description(d.oid, 'pg_database'),
       -- Columns by server version (15: datlocprovider, daticulocale; 16: daticurules; 17: datlocale), read by name.
       'provider', to_jsonb(d) ->> 'datlocprovider', 'icu_locale', coalesce(to_jsonb(d) ->> 'daticulocale', to_jsonb(d) ->> 'datlocale'),
       'icu_rules', to_jsonb(d) ->> 'daticurules',
       'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = d.dattablespace),
       'allow_connections', d.datallowconn, 'is_template', d.datistemplate,
       'role_settings', coalesce((SELECT json_agg(json_build_object('role', pg_get_userbyid(s.setrole), 'settings', s.setconfig) ORDER BY pg_get_userbyid(s.setrole))
                                  FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole <> 0), '[]'),
       'security_labels', coalesce((SELECT json_agg(json_build_object('provider', l.provider, 'label', l.label) ORDER BY l.provider)
                                  FROM pg_shseclabel l WHERE l.objoid = d.oid AND l.classoid = 'pg_database'::regclass), '[]'))
     FROM pg_database d WHERE d.datname = ${literal(database)}`,
    o,
  );
  if (!out.trim()) return null;
  const { provider, ...props } = JSON.parse(out.trim()) as DbProps & { provider: string | null };
  // A property pgfleet cannot carry is an error before anything is touched, never a silent difference.
  if (provider !== null && !(provider in PROVIDERS)) throw new PgfleetError(`database "${database}": locale provider ${JSON.stringify(provider)} is not one pgfleet can carry (libc, icu, builtin)`);
  return { ...props, locale_provider: provider === null ? null : PROVIDERS[provider] };
}

/**
 * Run `fn` with a psql session on the maintenance database, opened before the statements that will
 * use it (while a dump is staged): each of them then costs a round trip, not a `docker exec` and a
 * connection. The session is not under a signal (a query given one is interruptible on its own)
 * and ends after `fn`, whatever happens.
 */
export async function withMaintenanceSession<T>(sh: TargetShell, fn: (admin: PsqlSession) => Promise<T>): Promise<T> {
  const admin = PsqlSession.open(sh, MAINTENANCE_DB);
  try {
    return await fn(admin);
  } finally {
    await admin.close().catch(() => admin.kill());
  }
}

/** SQL on the maintenance database: through `session` (see withMaintenanceSession) when given, else one psql. */
function onMaintenance(sh: TargetShell, sql: string, o: { session?: PsqlSession; signal?: AbortSignal } = {}): Promise<string> {
  return o.session ? o.session.query(sql, o.signal) : psql(sh, MAINTENANCE_DB, sql, o.signal);
}

/** Which of `names` exist. */
export async function existing(sh: TargetShell, names: string[]): Promise<string[]> {
  const out = await psql(sh, MAINTENANCE_DB, `SELECT datname FROM pg_database WHERE datname IN (${names.map(literal).join(', ')}) ORDER BY 1`);
  return out.split('\n').filter(Boolean);
}

/** Databases whose name starts with `prefix`, sorted. */
export async function databasesStartingWith(sh: TargetShell, prefix: string, session?: PsqlSession): Promise<string[]> {
  const out = await onMaintenance(sh, `SELECT datname FROM pg_database WHERE starts_with(datname, ${literal(prefix)}) ORDER BY 1`, { session });
  return out.split('\n').filter(Boolean);
}

/** May the connecting role create (and so rename) databases? */
export async function canCreateDatabases(sh: TargetShell, session?: PsqlSession): Promise<boolean> {
  const out = await onMaintenance(sh, `SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user`, { session });
  return out.trim() === 't';
}

/** SQLSTATE duplicate_database: CREATE DATABASE of a name that is taken. */
export const DUPLICATE_DATABASE = '42P04';

/** What CREATE DATABASE did: created, or refused by the server with its SQLSTATE and message. */
export type CreateOutcome = { created: true } | { created: false; sqlstate: string; message: string };

/**
 * An empty database from template0 (as pg_restore wants), with the encoding and locale of `like`.
 * A refusal by the server is returned, not thrown: `created: false` with the statement's own
 * SQLSTATE (DUPLICATE_DATABASE: the name is taken), read from psql's SQLSTATE variable (psql 11+),
 * never from the message text. A refused statement created nothing, so the caller knows race-free
 * that a database of that name is not its own. A failed psql (or an interrupt) throws as ever:
 * then whether the database was created is not known. Through `session` when given, which stays
 * usable after a refusal.
 */
export async function createDatabase(sh: TargetShell, name: string, o: { owner?: string; like?: DbProps | null; signal?: AbortSignal; session?: PsqlSession }): Promise<CreateOutcome> {
  const parts = [`CREATE DATABASE ${ident(name)} TEMPLATE template0`];
  if (o.owner) parts.push(`OWNER ${ident(o.owner)}`);
  if (o.like) parts.push(...likeClauses(o.like));
  // Only this statement may fail without ending psql; its outcome is then printed as data.
  const script = [`\\set ON_ERROR_STOP 0`, `${parts.join(' ')};`, `\\set ON_ERROR_STOP 1`, `SELECT json_build_array(:'SQLSTATE', :'LAST_ERROR_MESSAGE');`].join('\n');
  const run = (session: PsqlSession) => session.query(script, o.signal);
  const out = await (o.session ? run(o.session) : withMaintenanceSession(sh, run));
  const [sqlstate, message] = JSON.parse(out.trim().split('\n').pop() ?? '') as [string, string];
  return sqlstate === '00000' ? { created: true } : { created: false, sqlstate, message };
}

/** CREATE DATABASE clauses for the encoding, locale (provider, ICU locale and rules) and tablespace of `like`. */
export function likeClauses(like: DbProps): string[] {
  const out = [`ENCODING ${literal(like.encoding)} LC_COLLATE ${literal(like.collate)} LC_CTYPE ${literal(like.ctype)}`];
  if (like.locale_provider) out.push(`LOCALE_PROVIDER ${like.locale_provider}`);
  if (like.locale_provider === 'icu' && like.icu_locale) out.push(`ICU_LOCALE ${literal(like.icu_locale)}`);
  if (like.locale_provider === 'builtin' && like.icu_locale) out.push(`BUILTIN_LOCALE ${literal(like.icu_locale)}`);
  if (like.icu_rules) out.push(`ICU_RULES ${literal(like.icu_rules)}`);
  if (like.tablespace && like.tablespace !== 'pg_default') out.push(`TABLESPACE ${ident(like.tablespace)}`);
  return out;
}

/** Drop if it exists, ending its sessions. Idempotent: through `session` when given, and a fresh psql if that fails. */
export async function dropDatabase(sh: TargetShell, name: string, session?: PsqlSession): Promise<void> {
  const sql = `DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`;
  if (session) {
    try {
      await session.query(sql);
      return;
    } catch {
      /* the session is gone: once more on a connection of its own */
    }
  }
  await psql(sh, MAINTENANCE_DB, sql);
}

/**
 * The statements that give `name` the settings, privileges, connection limit, comment,
 * role-in-database settings, security labels and template/connection flags of `props`. Applied after the restore: a setting such as default_transaction_read_only must not
 * apply to pg_restore itself.
 */
export function propsStatements(name: string, props: DbProps): string[] {
  const db = ident(name);
  const stmts = props.settings.map((s) => `ALTER DATABASE ${db} ${settingClause(s)};`);
  if (props.grants) {
    stmts.push(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC;`, `REVOKE ALL ON DATABASE ${db} FROM ${ident(props.owner)};`);
    for (const g of props.grants) stmts.push(`GRANT ${g.privilege} ON DATABASE ${db} TO ${g.grantee === null ? 'PUBLIC' : ident(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''};`);
  }
  if (props.conn_limit !== -1) stmts.push(`ALTER DATABASE ${db} CONNECTION LIMIT ${Math.trunc(props.conn_limit)};`);
  if (props.comment !== null) stmts.push(`COMMENT ON DATABASE ${db} IS ${literal(props.comment)};`);
  for (const r of props.role_settings ?? []) for (const x of r.settings) stmts.push(`ALTER ROLE ${ident(r.role)} IN DATABASE ${db} ${settingClause(x)};`);
  for (const l of props.security_labels ?? []) stmts.push(`SECURITY LABEL FOR ${ident(l.provider)} ON DATABASE ${db} IS ${literal(l.label)};`);
  if (props.is_template) stmts.push(`ALTER DATABASE ${db} WITH IS_TEMPLATE true;`);
  if (props.allow_connections === false) stmts.push(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS false;`);
  return stmts;
}

/**
 * Atomically (one transaction: all of it or nothing): give `incoming` the properties `props` (when
 * given), end the client sessions on `live` and `incoming`, rename `live` → `keepAs` and
 * `incoming` → `live`. Never under a signal: an interrupt waits for the transaction to end.
 */
export async function swapDatabases(sh: TargetShell, live: string, incoming: string, keepAs: string, props?: DbProps, session?: PsqlSession): Promise<void> {
  await onMaintenance(
    sh,
    `BEGIN;
     ${props ? propsStatements(incoming, props).join('\n     ') : ''}
     SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
       WHERE datname IN (${literal(live)}, ${literal(incoming)}) AND pid <> pg_backend_pid() AND backend_type = 'client backend';
     ALTER DATABASE ${ident(live)} RENAME TO ${ident(keepAs)};
     ALTER DATABASE ${ident(incoming)} RENAME TO ${ident(live)};
     COMMIT;`,
    { session },
  );
}
