// The fleet verbs: scheduled-backup, prune, status. Each parses its arguments and maps the outcome to an exit code.
import { runPrune } from '../../lib/commands/prune.js';
import { runScheduledBackup } from '../../lib/commands/scheduled-backup.js';
import { runStatus } from '../../lib/commands/status.js';
import { UsageError } from '../../lib/core/errors.js';
import type { Verb } from './types.js';

export const scheduledBackup: Verb = {
  name: 'scheduled-backup',
  usage: 'scheduled-backup [--project P] [--env E] [--dry-run] [--concurrency N]',
  summary: 'back up every enabled target, a bounded number at once, then apply retention; exit 1 names failed targets',
  options: { project: { type: 'string' }, env: { type: 'string' }, 'dry-run': { type: 'boolean' }, concurrency: { type: 'string' } },
  positionals: [0, 0],
  run: async (ctx, v) => {
    const c = v.concurrency as string | undefined;
    if (c !== undefined && !/^[1-9]\d?$/.test(c)) throw new UsageError(`--concurrency must be a whole number from 1 to 99, not ${JSON.stringify(c)}`);
    const r = await runScheduledBackup(ctx, {
      project: v.project as string | undefined,
      environment: v.env as string | undefined,
      dryRun: !!v['dry-run'],
      concurrency: c ? Number(c) : undefined,
    });
    return r.exitCode;
  },
};

export const prune: Verb = {
  name: 'prune',
  usage: 'prune [<project> [<env>]] [--dry-run]',
  summary: 'apply retention; --dry-run lists what would go and which rule keeps each backup that stays',
  options: { 'dry-run': { type: 'boolean' } },
  positionals: [0, 2],
  run: async (ctx, v, [project, environment]) => (await runPrune(ctx, { project, environment, dryRun: !!v['dry-run'] })).exitCode,
};

export const status: Verb = {
  name: 'status',
  usage: 'status [--json]',
  summary: 'per target: age of the latest good backup, size against the previous, last verification; exit 1 when one is too old or failed verification',
  options: { json: { type: 'boolean' } },
  positionals: [0, 0],
  run: async (ctx, v) => (await runStatus(ctx, { json: !!v.json })).exitCode,
};
