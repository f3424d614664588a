/**
 * What a table restore must bring back with a table, on top of scripts/sandbox/sample.ts: a
 * trigger and its function, row-level security with a policy, grants, column and constraint
 * comments, CHECK and UNIQUE constraints, an identity column, a foreign key to another table, a
 * table whose schema and name need quoting, and sequences moved to odd positions. Run after
 * sampleSql(owner), by a superuser; the role `reader` must exist.
 */
import { ident } from '../../lib/postgres/psql.js';

export function richSql(owner: string): string {
  return `
SET ROLE ${ident(owner)};
CREATE FUNCTION touch_city() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.city := coalesce(NEW.city, 'unknown'); RETURN NEW; END $$;
CREATE TRIGGER "Customer_touch" BEFORE INSERT OR UPDATE ON "Customer" FOR EACH ROW EXECUTE FUNCTION touch_city();
ALTER TABLE "Customer" ADD CONSTRAINT name_not_blank CHECK (length("FullName") > 0);
CREATE UNIQUE INDEX "Customer_name_uq" ON "Customer" ("FullName");
ALTER TABLE "Customer" ENABLE ROW LEVEL SECURITY;
CREATE POLICY happy_only ON "Customer" FOR SELECT TO reader USING (mood = 'happy');
GRANT SELECT, UPDATE ("city") ON "Customer" TO reader;
COMMENT ON COLUMN "Customer"."FullName" IS 'as written by the customer';
COMMENT ON CONSTRAINT name_not_blank ON "Customer" IS 'never blank';
SELECT setval('"Customer_Id_seq"', 5000);
CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subject text NOT NULL, invoice int DEFAULT nextval('invoice_no'));
INSERT INTO tickets (subject) SELECT 'ticket ' || g FROM generate_series(1, 40) g;
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd ""Name""" ("Key" int PRIMARY KEY, "Value" text);
INSERT INTO "My Schema"."Odd ""Name""" SELECT g, 'v' || g FROM generate_series(1, 25) g;
GRANT USAGE ON SCHEMA "My Schema" TO reader;
GRANT SELECT ON "My Schema"."Odd ""Name""" TO reader;
RESET ROLE;
`;
}
