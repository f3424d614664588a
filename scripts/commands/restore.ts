// The restore verbs: restore, verify-backups.
import { runRestore } from '../../lib/commands/restore.js';
import { runRestoreTables } from '../../lib/commands/restore-tables.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { UsageError } from '../../lib/core/errors.js';
import { withPings } from '../../lib/fleet/notify.js';
import type { Verb, Values } from './types.js';

function jobsOf(v: Values): number | undefined {
  if (v.jobs === undefined) return undefined;
  const n = Number(v.jobs);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--jobs must be a whole number from 1 to 64, not ${JSON.stringify(v.jobs)}`);
  return n;
}

export const restore: Verb = {
  name: 'restore',
  usage:
    'restore <project> <env> (<id> | <path> | --latest) [--yes] [--dry-run] [--no-safety-backup] [--into <database>] [--jobs N] [--from-offsite] [--allow-partial]\n' +
    '        restore <project> <env> --to <ISO-8601 time | latest> [--into <database>] [--from-offsite] [--yes] [--dry-run]\n' +
    '        restore <project> <env> (<id> | <path> | --latest) --table <schema.table> [--table …] [--schema <name>] [--as <schema>] [--into <database>] [--yes] [--dry-run]',
  summary: 'restore over the live database safely (safety backup, scratch copy checked, swap by renaming); --to: the database as it was at that time (point-in-time recovery); --into: into a new database; --table/--schema: those tables, beside the live data in a new schema (--as)',
  options: {
    latest: { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    'dry-run': { type: 'boolean' },
    'no-safety-backup': { type: 'boolean' },
    into: { type: 'string' },
    jobs: { type: 'string' },
    'from-offsite': { type: 'boolean' },
    'allow-partial': { type: 'boolean' },
    table: { type: 'string', multiple: true },
    schema: { type: 'string', multiple: true },
    as: { type: 'string' },
    to: { type: 'string' },
  },
  positionals: [2, 3],
  run: async (ctx, v, [project, environment, source]) => {
    const tables = (v.table as string[] | undefined) ?? [];
    const schemas = (v.schema as string[] | undefined) ?? [];
    if (tables.length || schemas.length) {
      if (v.to !== undefined) throw new UsageError('--to restores a whole database as it was at that time; for tables, restore it --into a new database first, then restore tables from it');
      if (v['from-offsite']) throw new UsageError('--from-offsite restores a whole database; for tables, restore the copy --into a new database first, then restore tables from it with pg_dump/pg_restore');
      if (v['no-safety-backup']) throw new UsageError('--no-safety-backup: a table restore replaces nothing and takes no safety backup');
      await runRestoreTables(ctx, { project, environment, source, latest: !!v.latest, tables, schemas, as: v.as as string | undefined, into: v.into as string | undefined, yes: !!v.yes, dryRun: !!v['dry-run'], jobs: jobsOf(v) });
      return;
    }
    if (v.as !== undefined) throw new UsageError('--as names the schema of a table restore: give --table or --schema too');
    await runRestore(ctx, {
      project,
      environment,
      source,
      latest: !!v.latest,
      yes: !!v.yes,
      dryRun: !!v['dry-run'],
      safetyBackup: !v['no-safety-backup'],
      into: v.into as string | undefined,
      jobs: jobsOf(v),
      fromOffsite: !!v['from-offsite'],
      allowPartial: !!v['allow-partial'],
      to: v.to as string | undefined,
    });
  },
};

export const verifyBackups: Verb = {
  name: 'verify-backups',
  usage: 'verify-backups [<project> [<env>]] [--all] [--backup <id>] [--dry-run] [--offsite] [--jobs N] [--allow-empty] | verify-backups [<project> [<env>]] --checksums [--backup <id>] [--dry-run]',
  summary: 'restore backups into a scratch database, compare with what was recorded, drop it, record the result; --checksums: re-hash every stored dump against its metadata instead; exit 4 when one fails',
  options: { all: { type: 'boolean' }, offsite: { type: 'boolean' }, backup: { type: 'string' }, 'dry-run': { type: 'boolean' }, jobs: { type: 'string' }, 'allow-empty': { type: 'boolean' }, checksums: { type: 'boolean' } },
  positionals: [0, 2],
  run: (ctx, v, [project, environment]) => withPings(ctx, 'verify-backups', async () => {
    const r = await runVerifyBackups(ctx, { project, environment, all: !!v.all, backup: v.backup as string | undefined, dryRun: !!v['dry-run'], jobs: jobsOf(v), allowEmpty: !!v['allow-empty'], offsite: !!v.offsite, checksums: !!v.checksums });
    return r.exitCode;
  }, { skip: !!v['dry-run'], project }),
};
