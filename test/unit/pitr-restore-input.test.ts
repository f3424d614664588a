// restore --to's input and pg_basebackup's refusals, as pure functions: the point in time read from
// --to, and a missing replication right told as what to grant.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/core/errors.js';
import { replicationRightsError } from '../../lib/pitr/basebackup.js';
import { parsePointInTime } from '../../lib/pitr/recover.js';

describe('parsePointInTime (--to)', () => {
  it('reads an ISO-8601 time with its zone, or latest', () => {
    expect(parsePointInTime('latest')).toBe('latest');
    expect((parsePointInTime('2026-03-01T14:32:00Z') as Date).toISOString()).toBe('2026-03-01T14:32:00.000Z');
    expect((parsePointInTime('2026-03-01T16:32:00.250+02:00') as Date).toISOString()).toBe('2026-03-01T14:32:00.250Z');
  });
  it('refuses a time without a zone, a date alone, a word, an impossible date (exit 2)', () => {
    for (const bad of ['2026-03-01T14:32:00', '2026-03-01', 'yesterday', 'LATEST', '2026-13-01T00:00:00Z', '']) {
      const e = (() => {
        try {
          parsePointInTime(bad);
        } catch (x) {
          return x;
        }
      })();
      expect(e, bad).toBeInstanceOf(UsageError);
      expect((e as UsageError).exitCode).toBe(2);
      expect((e as Error).message).toContain(JSON.stringify(bad));
    }
  });
});

describe('replicationRightsError (pg_basebackup refused)', () => {
  it('names the role and what to grant, for each way PostgreSQL refuses', () => {
    const role = replicationRightsError('pg_basebackup: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  must be superuser or replication role to start walsender', 'pg-1', 'postgres');
    expect(role).toBe('pg-1: role postgres may not take a base backup: it lacks the REPLICATION attribute; run in pg-1: ALTER ROLE postgres REPLICATION; and let it connect for replication over the local socket with a pg_hba.conf line "local replication postgres peer" (or trust, as initdb writes), then SELECT pg_reload_conf()');
    const hba = replicationRightsError('FATAL:  no pg_hba.conf entry for replication connection from host "[local]", user "postgres", no encryption', 'pg-1', 'postgres');
    expect(hba).toMatch(/^pg-1: role postgres may not take a base backup: pg_hba\.conf allows it no replication connection; run in pg-1: ALTER ROLE postgres REPLICATION;/);
    const senders = replicationRightsError('FATAL:  number of requested standby connections exceeds max_wal_senders (currently 0)', 'pg-1', 'postgres');
    expect(senders).toContain('max_wal_senders');
  });
  it('is null for any other failure (the raw error stands)', () => {
    expect(replicationRightsError('pg_basebackup: error: could not connect to server: No such file or directory', 'pg-1', 'postgres')).toBeNull();
    expect(replicationRightsError('', 'pg-1', 'postgres')).toBeNull();
  });
});
