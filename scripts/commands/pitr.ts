// The point-in-time recovery verbs: pitr check, pitr archive, basebackup.
import { runBasebackup } from '../../lib/commands/basebackup.js';
import { runPitrArchive } from '../../lib/commands/pitr-archive.js';
import { runPitrCheck } from '../../lib/commands/pitr-check.js';
import { runPitrRecover } from '../../lib/commands/pitr-recover.js';
import { UsageError } from '../../lib/core/errors.js';
import { parseDuration } from '../../lib/config/load.js';
import type { Verb } from './types.js';

export const pitrCheck: Verb = {
  name: 'pitr check',
  usage: 'pitr check <project> <env> [--wait 60s]',
  summary: "the archiving of the cluster the target lives in: settings, archiver failures, the landing directory's mount; forces a segment switch and waits (bounded) for it to land; prints the settings and mount to add; exit 1 when unhealthy",
  options: { wait: { type: 'string' } },
  positionals: [2, 2],
  run: async (ctx, v, [project, environment]) => {
    await runPitrCheck(ctx, { project, environment, waitMs: v.wait ? parseDuration(v.wait as string) : undefined });
  },
};

export const pitrArchive: Verb = {
  name: 'pitr archive',
  usage: 'pitr archive [<project> <env>]',
  summary: 'take the WAL each PITR cluster landed (or that target\'s) into the repository: compressed, a sha256 each; exit 1 on a gap or a conflicting duplicate',
  options: {},
  positionals: [0, 2],
  run: async (ctx, _v, [project, environment]) => (await runPitrArchive(ctx, { project, environment })).exitCode,
};

export const basebackup: Verb = {
  name: 'basebackup',
  usage: 'basebackup <project> <env>',
  summary: "a base backup of the cluster the target lives in (pg_basebackup streamed to the host, zstd, sha256, metadata last); prints the tar's path",
  options: {},
  positionals: [2, 2],
  run: async (ctx, _v, [project, environment]) => {
    await runBasebackup(ctx, { project, environment });
  },
};

export const pitrRecover: Verb = {
  name: 'pitr recover',
  usage: 'pitr recover <project> <env> --to <ISO-8601 time | latest> --out FILE [--from-offsite]',
  summary: "the target's database as it was at that time, as a pg_dump file (a temporary instance in the tenant's container over the newest base backup before it and the archived WAL; always removed); restore it with `restore <project> <env> FILE`; --from-offsite: from the bucket alone",
  options: { to: { type: 'string' }, out: { type: 'string' }, 'from-offsite': { type: 'boolean' } },
  positionals: [2, 2],
  run: async (ctx, v, [project, environment]) => {
    if (!v.to || !v.out) throw new UsageError('pitr recover needs --to <time> and --out FILE');
    await runPitrRecover(ctx, { project, environment, to: v.to as string, out: v.out as string, fromOffsite: !!v['from-offsite'] });
  },
};
