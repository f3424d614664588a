// The report verb: the fleet's history as pictures (--html) or a table of its flags.
import { runReport } from '../../lib/commands/report.js';
import { UsageError } from '../../lib/core/errors.js';
import type { Verb } from './types.js';

export const report: Verb = {
  name: 'report',
  usage: 'report [--html FILE] [--days N]',
  summary: 'per target over the last N days (default 365): dump size and backup time, restore proofs, offsite lag, and flags (a dump far off its recent median, a backup time trending past the window); --html writes a self-contained page',
  options: { html: { type: 'string' }, days: { type: 'string' } },
  positionals: [0, 0],
  run: async (ctx, v) => {
    const days = v.days === undefined ? undefined : Number(v.days);
    if (days !== undefined && !Number.isInteger(days)) throw new UsageError(`--days must be a whole number, not ${JSON.stringify(v.days)}`);
    await runReport(ctx, { html: v.html as string | undefined, days });
  },
};
