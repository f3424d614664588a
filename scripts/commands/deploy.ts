// The deployment verbs: predeploy, deployment-status, rollback.
import { runDeploymentStatus } from '../../lib/commands/deployment-status.js';
import { runPredeploy } from '../../lib/commands/predeploy.js';
import { runRollback } from '../../lib/commands/rollback.js';
import type { Verb } from './types.js';

export const predeploy: Verb = {
  name: 'predeploy',
  usage: 'predeploy <project> <env> --release R [--force]',
  summary: "pre-deployment backup plus its deployment manifest; prints the manifest's path as the last line of stdout",
  options: { release: { type: 'string' }, force: { type: 'boolean' } },
  positionals: [2, 2],
  run: async (ctx, v, [project, environment]) => {
    await runPredeploy(ctx, { project, environment, release: v.release as string, force: !!v.force });
  },
};

export const deploymentStatus: Verb = {
  name: 'deployment-status',
  usage: 'deployment-status <project> <env> [--release R] [--json]',
  summary: 'the latest (or the named) deployment manifest and the recent history; --json prints the manifest',
  options: { release: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [2, 2],
  run: (ctx, v, [project, environment]) => runDeploymentStatus(ctx, { project, environment, release: v.release as string | undefined, json: !!v.json }),
};

export const rollback: Verb = {
  name: 'rollback',
  usage: 'rollback <project> <env> [--release R] [--yes] [--dry-run] [--allow-partial]',
  summary: 'restore the pre-deployment backup of a release (default: the latest), then run the rollback hook',
  options: { release: { type: 'string' }, yes: { type: 'boolean', short: 'y' }, 'dry-run': { type: 'boolean' }, 'allow-partial': { type: 'boolean' } },
  positionals: [2, 2],
  run: async (ctx, v, [project, environment]) => {
    await runRollback(ctx, { project, environment, release: v.release as string | undefined, yes: !!v.yes, dryRun: !!v['dry-run'], allowPartial: !!v['allow-partial'] });
  },
};
