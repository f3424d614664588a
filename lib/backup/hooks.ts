/**
 * The hooks around a backup (database.hooks.pre_backup / post_backup), run by lib/backup/cycle.ts
 * under the target's lock through runHook (argv, no shell, bounded by database.hooks.timeout).
 *
 *   pre_backup  → (failure: BackupHookError, nothing dumped; post_backup still runs, result failure)
 *   the backup  → post_backup with PGFLEET_RESULT success (PGFLEET_BACKUP_PATH: the dump) or failure
 *
 * Promises: pre() throws BackupHookError (exit 1) when the pre_backup hook fails, after running
 * post_backup with the failure, so a hook pair that stops a writer can start it again. after()
 * never throws for the hook's own failure: it returns it (the backup stands; the cycle fails the
 * run), and returns null when it succeeded or none is configured. Both throw InterruptedError
 * when pgfleet is interrupted. Every hook's outcome is logged, its output tail redacted.
 *
 * Variables (beside pgfleet's environment): PGFLEET_HOOK (pre_backup|post_backup), PGFLEET_PROJECT,
 * PGFLEET_ENVIRONMENT, PGFLEET_DATABASE, PGFLEET_BACKUP_TYPE; post_backup adds PGFLEET_RESULT
 * (success|failure), and on success PGFLEET_BACKUP_ID, PGFLEET_BACKUP_PATH, PGFLEET_BACKUP_SIZE,
 * PGFLEET_BACKUP_SHA256; on failure PGFLEET_ERROR (the error's message).
 */
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { howEnded } from '../core/text.js';
import type { HookResult } from '../formats/manifest.js';
import type { Context } from '../runtime/context.js';
import { hookFailed, runHook } from '../runtime/hooks.js';
import type { StoredBackup } from '../storage/repository.js';
import type { BackupOptions } from './take.js';

/** "<name> hook <argv>: exit code N", then its output tail, indented. */
export function backupHookReport(name: string, h: HookResult): string {
  return `${name} hook ${h.argv.join(' ')}: ${howEnded(h.exit_code, h.signal)}${h.output_tail ? `\n${h.output_tail.replace(/^/gm, '  | ')}` : ''}`;
}

/** A backup hook failed (exit 1). `hook`: its outcome. */
export class BackupHookError extends PgfleetError {
  constructor(
    target: Target,
    readonly hook: HookResult,
    what: string,
  ) {
    super(`${target.project}/${target.environment}: ${what}: ${backupHookReport(what.split(' ')[0], hook)}`, EXIT.FAILED, { project: target.project, environment: target.environment });
  }
}

export function backupHooks(ctx: Context, target: Target, o: Pick<BackupOptions, 'type'>) {
  const log = targetLogger(ctx.logger, target);
  const base = { PGFLEET_PROJECT: target.project, PGFLEET_ENVIRONMENT: target.environment, PGFLEET_DATABASE: target.database, PGFLEET_BACKUP_TYPE: o.type };
  const run = async (name: 'pre_backup' | 'post_backup', env: Record<string, string>): Promise<HookResult | null> => {
    const argv = target.hooks[name];
    if (!argv) return null;
    const h = await runHook(ctx, target, name, argv, { ...base, PGFLEET_HOOK: name, ...env });
    if (hookFailed(h)) log.error({ hook: name, argv: h.argv, exit_code: h.exit_code, signal: h.signal, output: h.output_tail }, `${name} hook failed`);
    else log.info({ hook: name, duration_ms: h.duration_ms }, `${name} hook done`);
    return h;
  };
  const post = async (env: Record<string, string>): Promise<BackupHookError | null> => {
    const h = await run('post_backup', env);
    return h && hookFailed(h) ? new BackupHookError(target, h, env.PGFLEET_RESULT === 'success' ? 'post_backup hook failed (the backup is kept)' : 'post_backup hook failed') : null;
  };
  return {
    /** Before the dump; throws BackupHookError (after post_backup with the failure) when it fails. */
    async pre(): Promise<void> {
      const h = await run('pre_backup', {});
      if (!h || !hookFailed(h)) return;
      const e = new BackupHookError(target, h, 'pre_backup hook failed, nothing dumped');
      await post({ PGFLEET_RESULT: 'failure', PGFLEET_ERROR: e.message });
      throw e;
    },
    /** After the backup (or its failure): the post_backup hook's failure, or null. */
    after(r: { backup: StoredBackup } | { error: unknown }): Promise<BackupHookError | null> {
      if ('backup' in r) {
        const m = r.backup.meta;
        return post({ PGFLEET_RESULT: 'success', PGFLEET_BACKUP_ID: m.id, PGFLEET_BACKUP_PATH: r.backup.path, PGFLEET_BACKUP_SIZE: String(m.size_bytes), PGFLEET_BACKUP_SHA256: m.sha256 });
      }
      return post({ PGFLEET_RESULT: 'failure', PGFLEET_ERROR: String((r.error as Error)?.message ?? r.error) });
    },
  };
}
