// The verb that tells what a backup holds: show.
import { runShow } from '../../lib/commands/show.js';
import type { Verb } from './types.js';

export const show: Verb = {
  name: 'show',
  usage: 'show <project> <env> <id> [--json]',
  summary: "what a backup holds: schemas, tables with their recorded row counts, exclusions, format, encryption, verification (from its metadata and its archive's table of contents)",
  options: { json: { type: 'boolean' } },
  positionals: [3, 3],
  run: async (ctx, v, [project, environment, id]) => {
    await runShow(ctx, { project, environment, id, json: !!v.json });
  },
};
