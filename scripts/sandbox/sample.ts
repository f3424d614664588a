/**
 * A small database that exercises what a dump must carry faithfully: quoted mixed-case
 * identifiers, non-ASCII text, a partitioned table, a large object, sequences at odd positions,
 * an enum, jsonb, arrays, a view, foreign keys. Run as the tenant's owner role (`SET ROLE`), so the
 * owner can dump everything in it.
 */
import { ident } from '../../lib/postgres/psql.js';

export function sampleSql(owner: string, scale = 1): string {
  const n = Math.max(1, Math.round(200 * scale));
  return `
SET ROLE ${ident(owner)};
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE "Customer" ("Id" serial PRIMARY KEY, "FullName" text NOT NULL, city text, mood mood, tags text[], created timestamptz NOT NULL DEFAULT '2025-01-01 00:00:00+00');
INSERT INTO "Customer" ("FullName", city, mood, tags)
  SELECT (ARRAY['Zoë Ångström', '山田 太郎', 'Ольга Петрова', 'Łukasz Żółć', 'O''Brien "quoted"', 'emoji 🐘 elephant'])[1 + g % 6] || ' #' || g,
         (ARRAY['Kraków', 'São Paulo', 'Zürich', '東京'])[1 + g % 4], (ARRAY['sad','ok','happy']::mood[])[1 + g % 3], ARRAY['a' || g, 'b']
  FROM generate_series(1, ${n}) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES "Customer"("Id"), total numeric(12,2) NOT NULL, details jsonb);
INSERT INTO orders (customer_id, total, details)
  SELECT 1 + g % ${n}, (g * 7 % 1000) / 3.0, jsonb_build_object('items', g % 5, 'note', 'naïve café ' || g) FROM generate_series(1, ${n * 3}) g;
CREATE TABLE measurements (id bigserial, logdate date NOT NULL, value double precision) PARTITION BY RANGE (logdate);
CREATE TABLE measurements_2025_01 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
CREATE TABLE measurements_2025_02 PARTITION OF measurements FOR VALUES FROM ('2025-02-01') TO ('2025-03-01');
CREATE TABLE measurements_other PARTITION OF measurements DEFAULT;
INSERT INTO measurements (logdate, value) SELECT DATE '2025-01-01' + (g % 75), g * 0.5 FROM generate_series(1, ${n * 2}) g;
CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL, body oid);
INSERT INTO documents (title, body) VALUES ('lo payload', lo_from_bytea(0, convert_to(repeat('large object ✓ ', 500), 'UTF8')));
CREATE SEQUENCE invoice_no START 1000 INCREMENT 7;
SELECT nextval('invoice_no') FROM generate_series(1, 5);
CREATE VIEW "HappyCustomers" AS SELECT "Id", "FullName" FROM "Customer" WHERE mood = 'happy';
CREATE INDEX orders_customer ON orders (customer_id);
COMMENT ON TABLE "Customer" IS 'Kunden — clients — 顧客';
RESET ROLE;
`;
}
