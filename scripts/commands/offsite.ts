// The offsite verbs: offsite sync. Each parses its arguments and maps the outcome to an exit code.
import { runOffsiteSync } from '../../lib/commands/offsite-sync.js';
import type { Verb } from './types.js';

export const offsiteSync: Verb = {
  name: 'offsite sync',
  usage: 'offsite sync [<project> [<env>]] [--dry-run]',
  summary: 'upload the backups that are offsite pending (catch-up after an outage); idempotent; --dry-run lists them',
  options: { 'dry-run': { type: 'boolean' } },
  positionals: [0, 2],
  run: async (ctx, v, [project, environment]) => (await runOffsiteSync(ctx, { project, environment, dryRun: !!v['dry-run'] })).exitCode,
};
