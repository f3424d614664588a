// A dump far larger than any pipe or stream buffer, backed up and restored through the built CLI
// with the configured container CLI (podman, or docker through podman's Docker API when
// PGF_TEST_CONTAINER_CLI=docker): `exec -i` carries ~100 MB out of the container while its
// stdin stays open (backup), and the compressed dump back in (restore --into), byte for byte.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { TEST_CONTAINER_CLI, TestFleet } from '../helpers.js';
import { fillBigTable, runCli, sha256Of } from './support.js';

const ROWS = 1_000_000; // ~100 bytes a row: a ~100 MB archive out of pg_dump

describe(`a large dump through ${TEST_CONTAINER_CLI} exec (real PostgreSQL 15 in a container)`, () => {
  let fleet: TestFleet;
  const digest = (db: string) =>
    fleet.sql('acme', db, `SELECT count(*) || ':' || sum(length(body)) || ':' || md5(string_agg(md5(body), '' ORDER BY id)) FROM big_payload`).then((s) => s.trim());

  beforeAll(async () => {
    fleet = await TestFleet.create([{ project: 'acme', databases: { production: 'acme_production' }, database: { backup: { compression_level: 1 } } }]);
    await fillBigTable(fleet, 'acme', 'acme_production', ROWS);
  });
  afterAll(() => fleet?.cleanup());

  it('backs up and restores it whole: size and sha256 as recorded, every row back', async () => {
    const b = await runCli(fleet, ['backup', 'acme', 'production']);
    expect(b.code, b.stderr).toBe(0);
    const file = b.stdout.trim().split('\n').at(-1)!;
    const meta = JSON.parse(readFileSync(`${file}.json`, 'utf8'));
    expect(statSync(file).size).toBe(meta.size_bytes);
    expect(sha256Of(file)).toBe(meta.sha256);
    expect(meta.size_bytes).toBeGreaterThan(40e6); // md5 text compresses about 2:1
    expect(meta.tables['public.big_payload']).toBe(ROWS);

    const r = await runCli(fleet, ['restore', 'acme', 'production', file, '--into', 'acme_copy', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await digest('acme_copy')).toBe(await digest('acme_production'));
  });
});
