// The fleet verbs: scheduled-backup, prune, status. Each parses its arguments and maps the outcome to an exit code;
// scheduled-backup and prune run between monitoring pings (platform.notify.ping_url_env).
import { runPrune } from '../../lib/commands/prune.js';
import { runScheduledBackup } from '../../lib/commands/scheduled-backup.js';
import { runStatus } from '../../lib/commands/status.js';
import { UsageError } from '../../lib/core/errors.js';
import { withPings } from '../../lib/fleet/notify.js';
import type { Verb } from './types.js';

export const scheduledBackup: Verb = {
  name: 'scheduled-backup',
  usage: 'scheduled-backup [--project P] [--env E] [--dry-run] [--concurrency N] [--allow-empty]',
  summary: 'back up every enabled target, a bounded number at once, then apply retention; exit 1 names failed targets',
  options: { project: { type: 'string' }, env: { type: 'string' }, 'dry-run': { type: 'boolean' }, concurrency: { type: 'string' }, 'allow-empty': { type: 'boolean' } },
  positionals: [0, 0],
  run: (ctx, v) => withPings(ctx, 'scheduled-backup', async () => {
    const c = v.concurrency as string | undefined;
    if (c !== undefined && !/^[1-9]\d?$/.test(c)) throw new UsageError(`--concurrency must be a whole number from 1 to 99, not ${JSON.stringify(c)}`);
    const r = await runScheduledBackup(ctx, {
      project: v.project as string | undefined,
      environment: v.env as string | undefined,
      dryRun: !!v['dry-run'],
      concurrency: c ? Number(c) : undefined,
      allowEmpty: !!v['allow-empty'],
    });
    return r.exitCode;
  }, { skip: !!v['dry-run'], project: v.project as string | undefined }),
};

export const prune: Verb = {
  name: 'prune',
  usage: 'prune [<project> [<env>]] [--dry-run] | prune <project> <env> --remove-damaged <id>',
  summary: 'apply retention (damaged backups listed, never removed); --dry-run lists what would go and which rule keeps each backup that stays; --remove-damaged removes one damaged backup',
  options: { 'dry-run': { type: 'boolean' }, 'remove-damaged': { type: 'string' } },
  positionals: [0, 2],
  run: (ctx, v, [project, environment]) => withPings(ctx, 'prune', async () => (await runPrune(ctx, { project, environment, dryRun: !!v['dry-run'], removeDamaged: v['remove-damaged'] as string | undefined })).exitCode, { skip: !!v['dry-run'], project }),
};

export const status: Verb = {
  name: 'status',
  usage: 'status [--json] [--allow-empty]',
  summary: 'per target: age of the latest good backup, size against the previous, last verification, damaged backups; exit 1 when one is too old, failed verification or is damaged',
  options: { json: { type: 'boolean' }, 'allow-empty': { type: 'boolean' } },
  positionals: [0, 0],
  run: async (ctx, v) => (await runStatus(ctx, { json: !!v.json, allowEmpty: !!v['allow-empty'] })).exitCode,
};
