// The restore verbs: restore, verify-backups.
import { runRestore } from '../../lib/commands/restore.js';
import { runVerifyBackups } from '../../lib/commands/verify-backups.js';
import { UsageError } from '../../lib/core/errors.js';
import type { Verb, Values } from './types.js';

function jobsOf(v: Values): number | undefined {
  if (v.jobs === undefined) return undefined;
  const n = Number(v.jobs);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--jobs must be a whole number from 1 to 64, not ${JSON.stringify(v.jobs)}`);
  return n;
}

export const restore: Verb = {
  name: 'restore',
  usage: 'restore <project> <env> (<id> | <path> | --latest) [--yes] [--dry-run] [--no-safety-backup] [--into <database>] [--jobs N]',
  summary: 'restore over the live database safely (safety backup, scratch copy checked, swap by renaming); --into: into a new database',
  options: {
    latest: { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    'dry-run': { type: 'boolean' },
    'no-safety-backup': { type: 'boolean' },
    into: { type: 'string' },
    jobs: { type: 'string' },
  },
  positionals: [2, 3],
  run: async (ctx, v, [project, environment, source]) => {
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
    });
  },
};

export const verifyBackups: Verb = {
  name: 'verify-backups',
  usage: 'verify-backups [<project> [<env>]] [--all] [--backup <id>] [--dry-run] [--jobs N] [--allow-empty]',
  summary: 'restore backups into a scratch database, compare with what was recorded, drop it, record the result; exit 4 when one fails',
  options: { all: { type: 'boolean' }, backup: { type: 'string' }, 'dry-run': { type: 'boolean' }, jobs: { type: 'string' }, 'allow-empty': { type: 'boolean' } },
  positionals: [0, 2],
  run: async (ctx, v, [project, environment]) => {
    const r = await runVerifyBackups(ctx, { project, environment, all: !!v.all, backup: v.backup as string | undefined, dryRun: !!v['dry-run'], jobs: jobsOf(v), allowEmpty: !!v['allow-empty'] });
    return r.exitCode;
  },
};
