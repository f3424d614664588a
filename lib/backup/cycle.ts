/**
 * One backup under the target's lock, then retention: what `backup`, `predeploy` and
 * `scheduled-backup` share (ARCHITECTURE.md "The shape of a backup").
 *
 *   lock (held by another run: LockBusyError, exit 3, never waited on) → the caller's checks
 *   → free space on backup_root against the expected size (lib/fleet/space.ts; too little:
 *   InsufficientSpaceError, exit 1, nothing dumped) → the pre_backup hook (lib/backup/hooks.ts; failing: nothing dumped, exit 1) → takeBackup → what the caller records about it (a deployment manifest), before retention
 *   sees it → its offsite copy (when the target has offsite) → retention for that target → unlock
 *
 * Promises: retention runs only after the new backup is complete (and recorded), so it counts it
 * and never removes it (it is the newest). A failure before or during the backup is thrown as it
 * is, with nothing kept (takeBackup's promise). THE rule for a retention failure: the new backup
 * is complete and stays, and the run fails: the outcome carries a RetentionError (exit 1,
 * "backup <id> kept, but retention failed: …") which the caller gives after printing what it made
 * (backup, predeploy: the path is still the last stdout line) or records as the target's failure
 * (scheduled-backup). The offsite copy (lib/offsite/copy.ts streamedCopy) is uploaded while the
 * dump is taken (a second destination of its bytes, lib/backup/pipeline.ts) and completed (its
 * metadata object) once the backup and its record are; a failed backup or record gives it up
 * (multipart aborted, nothing left that looks like a copy). It never fails the cycle: a failed
 * upload leaves the backup complete and 'offsite pending' (a warning; `offsite sync` catches up);
 * only an interruption throws (exit 130, the multipart upload aborted, the backup kept, pending).
 * After a confirmed copy, offsite retention runs too, best effort: its failure is a warning (the
 * backup and its copy are fine; `prune` applies it again and fails loudly).
 * The post_backup hook runs last under the lock (after retention), and also after a failed
 * backup; its failure follows the retention rule (backup kept, run fails: the outcome's
 * retentionError, "backup <id> kept, but its post_backup hook failed: …").
 * Lock released however it ends.
 */
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { pruneTarget } from '../fleet/prune.js';
import { streamedCopy, type CopyOutcome } from '../offsite/copy.js';
import { pruneOffsite } from '../offsite/prune.js';
import type { Context } from '../runtime/context.js';
import { withLock } from '../storage/lock.js';
import type { StoredBackup } from '../storage/repository.js';
import { backupHooks } from './hooks.js';
import { checkSpace } from '../fleet/space.js';
import { takeBackup, type BackupOptions } from './take.js';

/** The backup is complete and kept; the retention after it failed (exit 1). */
export class RetentionError extends PgfleetError {
  /** "backup <id> kept, but retention failed: …", without the target (for a per-target row). */
  readonly reason: string;
  constructor(
    target: Target,
    readonly backup: StoredBackup,
    cause: unknown,
    /** What failed after the backup: retention, or its post_backup hook (the same rule). */
    what = 'retention',
  ) {
    const reason = `backup ${backup.meta.id} kept, but ${what} failed: ${(cause as Error)?.message ?? String(cause)}`;
    super(`${target.project}/${target.environment}: ${reason}`, EXIT.FAILED, { project: target.project, environment: target.environment }, { cause });
    this.reason = reason;
  }
}

export interface CycleOptions<T> {
  /** What the lock says holds it, e.g. "backup --type manual". */
  command: string;
  backup: BackupOptions;
  /** Checks under the lock before anything is dumped; throwing ends the cycle with nothing done. */
  before?: () => Promise<void>;
  /** Records what belongs with the new backup (a manifest) before retention; throwing keeps the backup and skips retention. */
  record?: (b: StoredBackup) => Promise<T>;
  /** Show progress lines (default ctx.progress; off where dumps run in parallel). */
  progress?: boolean;
}

export interface CycleOutcome<T> {
  backup: StoredBackup;
  recorded: T;
  /** The offsite copy's outcome (null: the target has no offsite); the backup's metadata carries its state. */
  offsite: CopyOutcome | null;
  /** Ids retention removed after the backup. */
  removed: string[];
  /** Set when retention or the post_backup hook failed: the backup stands, the run must fail with this. */
  retentionError?: RetentionError;
}

export async function backupCycle<T = undefined>(ctx: Context, target: Target, o: CycleOptions<T>): Promise<CycleOutcome<T>> {
  return withLock(ctx.repo.lockDir(target.project, target.environment), target, o.command, async () => {
    await o.before?.();
    await checkSpace(ctx, target);
    const hooks = backupHooks(ctx, target, o.backup);
    await hooks.pre();
    // The offsite copy is uploaded while the dump is taken (its second destination), finished once the backup is complete.
    const copy = await streamedCopy(ctx, target);
    let taken: StoredBackup;
    try {
      taken = await takeBackup(o.progress === undefined ? ctx : { ...ctx, progress: o.progress }, target, copy ? { ...o.backup, tee: (id) => copy.tee(id) } : o.backup);
    } catch (e) {
      await copy?.cancel();
      if (!ctx.signal?.aborted) await hooks.after({ error: e }).catch(() => undefined);
      throw e;
    }
    let recorded: T;
    try {
      recorded = (await o.record?.(taken)) as T;
    } catch (e) {
      await copy?.cancel();
      throw e;
    }
    const offsite = copy ? await copy.finish(taken) : null;
    const backup = offsite ? { ...taken, meta: { ...taken.meta, offsite: offsite.state } } : taken;
    let outcome: CycleOutcome<T>;
    try {
      const removed = (await pruneTarget(ctx, target)).remove.map((r) => r.id);
      if (offsite?.state.status === 'uploaded') await offsiteRetention(ctx, target);
      outcome = { backup, recorded, offsite, removed };
    } catch (e) {
      const retentionError = new RetentionError(target, backup, e);
      targetLogger(ctx.logger, target).error({ id: backup.meta.id, err: retentionError.reason }, 'retention after the backup failed; the backup is kept, the run fails');
      outcome = { backup, recorded, offsite, removed: [], retentionError };
    }
    const hookError = await hooks.after({ backup });
    return hookError && !outcome.retentionError ? { ...outcome, retentionError: new RetentionError(target, backup, hookError, 'its post_backup hook') } : outcome;
  });
}

/** Offsite retention after a backup (lib/offsite/prune.ts); never fails the cycle. */
async function offsiteRetention(ctx: Context, target: Target): Promise<void> {
  try {
    await pruneOffsite(ctx, target);
  } catch (e) {
    targetLogger(ctx.logger, target).warn({ err: (e as Error)?.message ?? String(e) }, 'offsite retention after the backup failed; prune applies it again');
  }
}
