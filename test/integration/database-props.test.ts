import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../lib/commands/backup.js';
import { runRestore } from '../../lib/commands/restore.js';
import { TestFleet } from '../helpers.js';

/**
 * The whole database, exactly: an ICU database with ALTER DATABASE and ALTER ROLE … IN DATABASE
 * settings, a comment, a connection limit and grants, restored over the live one and --into,
 * compared row by row with the original's pg_database, pg_db_role_setting, pg_shdescription and
 * pg_shseclabel rows.
 */
describe('database properties survive a restore (real PostgreSQL 15 in containers)', () => {
  let fleet: TestFleet;
  const sql = (db: string, q: string) => fleet.sql('intl', db, q);
  /** Everything that defines database `db` but its name and oid. */
  const props = (db: string) =>
    sql(
      'postgres',
      `SELECT json_build_object('owner', pg_get_userbyid(d.datdba), 'encoding', pg_encoding_to_char(d.encoding), 'provider', d.datlocprovider,
         'icu', d.daticulocale, 'collate', d.datcollate, 'ctype', d.datctype, 'tablespace', d.dattablespace, 'connlimit', d.datconnlimit,
         'allowconn', d.datallowconn, 'template', d.datistemplate,
         'acl', (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(d.datacl) x),
         'settings', (SELECT json_agg(json_build_array(CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, s.setconfig) ORDER BY s.setrole <> 0, pg_get_userbyid(s.setrole)) FROM pg_db_role_setting s WHERE s.setdatabase = d.oid),
         'comment', (SELECT description FROM pg_shdescription WHERE objoid = d.oid AND classoid = 'pg_database'::regclass),
         'labels', (SELECT json_agg(json_build_array(provider, label)) FROM pg_shseclabel WHERE objoid = d.oid AND classoid = 'pg_database'::regclass))
       FROM pg_database d WHERE datname = '${db}'`,
    ).then((s) => JSON.parse(s.trim()));
  const order = async (db: string) => (await sql(db, 'SELECT string_agg(w, \',\' ORDER BY w) FROM words')).trim();

  beforeAll(async () => {
    fleet = await TestFleet.create([{ project: 'intl', databases: { production: 'intl_production' }, user: 'intl', password: 'Pw-intl-5x2q-secret' }]);
    // CREATEROLE: ALTER ROLE … IN DATABASE for another role needs it, in the swap as when it was set.
    await sql('postgres', `ALTER ROLE intl CREATEDB CREATEROLE; CREATE ROLE reporter LOGIN; DROP DATABASE intl_production;
      CREATE DATABASE intl_production OWNER intl TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE';
      ALTER DATABASE intl_production SET work_mem = '6MB';
      ALTER ROLE reporter IN DATABASE intl_production SET statement_timeout = '9s';
      ALTER ROLE intl IN DATABASE intl_production SET search_path = "$user", public, "Odd ""Schema""";
      COMMENT ON DATABASE intl_production IS 'international — ICU';
      ALTER DATABASE intl_production CONNECTION LIMIT 20;
      GRANT CONNECT ON DATABASE intl_production TO reporter;`);
    await sql('intl_production', `SET ROLE intl; CREATE TABLE words (w text); INSERT INTO words VALUES ('a'), ('B'), ('b'), ('A');`);
  });
  afterAll(() => fleet?.cleanup());

  it('restored over the live database and --into: provider, ICU locale, collation, settings per role, comment, grants as they were', async () => {
    const before = await props('intl_production');
    expect(before).toMatchObject({ provider: 'i', icu: 'de-DE', connlimit: 20, comment: 'international — ICU' });
    expect(before.settings).toHaveLength(3);
    expect(await order('intl_production')).toBe('a,A,b,B');
    const { ctx } = fleet.context();
    const b = await runBackup(ctx, { project: 'intl', environment: 'production', type: 'manual' });

    const r = await runRestore(fleet.context().ctx, { project: 'intl', environment: 'production', source: b.meta.id, yes: true, safetyBackup: false });
    expect(await props('intl_production')).toEqual(before);
    expect(await order('intl_production')).toBe('a,A,b,B');
    // The kept database keeps its own properties; the role settings of the live name are the live database's.
    expect((await props(r.previousDatabase!)).provider).toBe('i');

    await runRestore(fleet.context().ctx, { project: 'intl', environment: 'production', source: b.meta.id, into: 'intl_copy', yes: true });
    const copy = await props('intl_copy');
    expect(copy).toEqual(before);
    expect(await order('intl_copy')).toBe('a,A,b,B');
  });
});
