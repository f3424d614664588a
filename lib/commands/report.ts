/**
 * `pgfleet report [--html FILE] [--days N]`: what the fleet's backup history shows.
 *
 *   every target (disabled ones too) → its complete backups and damaged count, read from the
 *   repository's metadata → the findings of lib/fleet/anomaly.ts (a dump far off its recent median,
 *   a backup time whose trend crosses the backup window, never proven restorable, damage)
 *   → --html: the page (lib/fleet/report.ts), written atomically, its path the last stdout line;
 *     else one line per target and its flags
 *
 * Read-only but for the page; takes no lock, makes no request to a database or a bucket (offsite
 * lag is read from the local metadata's `offsite`). Exit 0 whatever it finds: `status` is the alarm.
 * "Now" is ctx.clock() (PGFLEET_NOW), so a simulated history can be drawn.
 */
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { VERSION } from '../core/package.js';
import { renderTable } from '../core/text.js';
import { findings, renderReport, type ReportInput, type ReportTarget } from '../fleet/report.js';
import type { Context } from '../runtime/context.js';

export interface ReportOptions {
  html?: string;
  days?: number;
}

export async function runReport(ctx: Context, o: ReportOptions = {}): Promise<{ input: ReportInput; file: string | null }> {
  const days = o.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3660) throw new UsageError(`--days must be a whole number from 1 to 3660, not ${JSON.stringify(o.days)}`);
  const now = ctx.clock();
  const { anomalyShare, backupWindowMs } = ctx.config.platform.report;
  const targets: ReportTarget[] = await Promise.all(
    ctx.config.targets.map(async (t) => {
      const s = await ctx.repo.survey(t.project, t.environment, now);
      return { project: t.project, environment: t.environment, database: t.database, enabled: t.backup.enabled, backups: s.complete.map((b) => b.meta), damaged: s.damaged.length, offsite: !!t.offsite };
    }),
  );
  const input: ReportInput = {
    now,
    days,
    share: anomalyShare,
    limitMs: backupWindowMs ?? ctx.config.platform.maxBackupAgeMs,
    limitName: backupWindowMs ? 'backup window' : 'max_backup_age',
    version: VERSION,
    targets,
  };
  if (o.html) {
    const file = path.resolve(o.html);
    await writeFileAtomic(file, renderReport(input));
    ctx.out(file);
    return { input, file };
  }
  const rows = targets.map((t) => {
    const f = findings(t, input);
    return [f.key, String(t.backups.length), t.backups[0]?.id ?? '-', f.lastVerified?.slice(0, 10) ?? 'never', f.flags.join('; ') || 'ok'];
  });
  for (const l of renderTable(['TARGET', 'BACKUPS', 'LATEST', 'LAST VERIFIED', 'FLAGS'], rows)) ctx.out(l);
  return { input, file: null };
}
