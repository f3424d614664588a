// The foundation's verbs: config check, backup, list.
import { runBackup } from '../../lib/commands/backup.js';
import { runConfigCheck } from '../../lib/commands/config-check.js';
import { runList } from '../../lib/commands/list.js';
import { parseDuration } from '../../lib/config/load.js';
import { UsageError } from '../../lib/core/errors.js';
import { BACKUP_TYPES, type BackupType } from '../../lib/formats/metadata.js';
import type { Verb } from './types.js';

export const configCheck: Verb = {
  name: 'config check',
  usage: 'config check [--allow-empty]',
  summary: 'validate projects.yml and the env files; list projects × environments; exit 2 when no target is enabled',
  options: { 'allow-empty': { type: 'boolean' } },
  positionals: [0, 0],
  bare: true,
  run: async () => undefined,
  runBare: (deps, v, _p, config) => runConfigCheck(deps, { config, allowEmpty: !!v['allow-empty'] }),
};

export const backup: Verb = {
  name: 'backup',
  usage: 'backup <project> <env> [--type manual|scheduled|pre-deploy|pre-migration|safety] [--release R] [--lock-wait-timeout 5m]',
  summary: "one backup; prints the dump's path as the last line of stdout",
  options: { type: { type: 'string' }, release: { type: 'string' }, 'lock-wait-timeout': { type: 'string' } },
  positionals: [2, 2],
  run: async (ctx, v, [project, environment]) => {
    const type = (v.type as string | undefined) ?? 'manual';
    if (!(BACKUP_TYPES as readonly string[]).includes(type)) throw new UsageError(`--type must be one of ${BACKUP_TYPES.join(', ')}, not ${JSON.stringify(type)}`);
    const lw = v['lock-wait-timeout'] as string | undefined;
    await runBackup(ctx, {
      project,
      environment,
      type: type as BackupType,
      release: (v.release as string | undefined) ?? null,
      lockWaitTimeoutMs: lw ? parseDuration(lw) : undefined,
    });
  },
};

export const list: Verb = {
  name: 'list',
  usage: 'list [<project> [<env>]] [--offsite] [--json]',
  summary: 'backups, newest first: complete ones and damaged ones (with their problem)',
  options: { json: { type: 'boolean' }, offsite: { type: 'boolean' } },
  positionals: [0, 2],
  run: async (ctx, v, [project, environment]) => {
    await runList(ctx, { project, environment, json: !!v.json, offsite: !!v.offsite });
  },
};
