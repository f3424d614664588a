/**
 * `pgfleet rollback <project> <env> [--release R] [--yes] [--dry-run]`: after a bad release, put
 * the database back to that release's pre-deploy backup, then let the project's rollback hook
 * bring the application back.
 *
 *   1. choose the manifest (named, or the latest: every manifest must be readable to know which)
 *   2. refuse one already rolled back; find its pre-deploy backup
 *   3. print the plan; confirm (--dry-run stops here)
 *   4. under the lock: re-check the manifest, restore through the restore engine (checksum,
 *      safety backup, app containers stopped and started, swap by rename), mark it rolled back
 *   5. after the lock (the hook may call pgfleet itself): run database.hooks.rollback, record it
 *
 * The machinery of each step is in lib/deployments/ (choose.ts, rollback.ts).
 *
 * Promises: nothing changes before confirmation or with --dry-run; a failed restore leaves the
 * live database as it was (the restore engine's promise) and the manifest still "deployed", with
 * the failed attempt recorded; a release is rolled back at most once, and the default target is
 * the latest manifest even when it is rolled back, so an older state is never restored by
 * surprise. A failing hook is exit 1 with its output tail; the database stays restored.
 */
import { findTarget } from '../config/load.js';
import { confirmOrExit, type ConfirmOptions } from '../runtime/confirm.js';
import type { Context } from '../runtime/context.js';
import type { DeploymentManifest } from '../storage/manifests.js';
import { withLock } from '../storage/lock.js';
import { targetLogger } from '../core/log.js';
import type { HookResult } from '../formats/manifest.js';
import { chooseManifest } from '../deployments/choose.js';
import { describePartial } from '../formats/metadata.js';
import { partialGate } from '../restore/partial.js';
import { hookFailure, hookReport, preDeployBackup, refuseRolledBack, restoreRelease, rollbackPlan, runRollbackHook } from '../deployments/rollback.js';

export interface RollbackOptions {
  project: string;
  environment: string;
  release?: string;
  yes?: boolean;
  dryRun?: boolean;
  /** Roll back to a partial pre-deploy backup (taken with exclusions) anyway. */
  allowPartial?: boolean;
  /** Tests: how confirmation is asked (see lib/runtime/confirm.ts). */
  confirm?: Pick<ConfirmOptions, 'tty' | 'ask'>;
}

export interface RollbackResult {
  manifest: DeploymentManifest;
  file: string;
  hook: HookResult | null;
  dryRun: boolean;
}

export async function runRollback(ctx: Context, o: RollbackOptions): Promise<RollbackResult> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const { project, environment, database } = target;
  const log = targetLogger(ctx.logger, target);

  // 1. Which release: the named one, or the latest (which needs every manifest readable).
  const { chosen, manifests } = await chooseManifest(ctx, target, { release: o.release, strict: true, nothingMeans: 'nothing to roll back' });
  const { manifest: m, file } = chosen;

  // 2. Rolled back at most once; the backup must be that release's own pre-deploy backup.
  refuseRolledBack(chosen);
  const backup = await preDeployBackup(ctx, target, chosen);
  const partial = await partialGate(backup, { allowPartial: o.allowPartial, target: { project: target.project, environment: target.environment }, what: 'a rollback' });

  // 3. The plan, printed before anything changes; then consent.
  for (const l of rollbackPlan(target, chosen, backup, manifests)) ctx.out(l);
  if (partial) ctx.out(`  PARTIAL           ${describePartial(partial)} (--allow-partial)`);
  const go = await confirmOrExit(ctx, `Replace the live database ${database} of ${project}/${environment} with its state before release ${m.release}?`, { yes: o.yes, dryRun: o.dryRun, ...o.confirm });
  if (!go) {
    ctx.out('dry run: nothing changed');
    return { manifest: m, file, hook: null, dryRun: true };
  }

  // 4. Under the lock: the restore, with the manifest kept in step (state checked again there).
  const startedAt = ctx.clock().toISOString();
  const restored = await withLock(ctx.repo.lockDir(project, environment), target, `rollback --release ${m.release}`, () => restoreRelease(ctx, target, chosen, backup, startedAt));
  const kept = restored.rollback?.previous_database;
  ctx.out(`database ${database} restored to before release ${m.release}${kept ? `; the replaced database is kept as ${kept}` : ''}`);
  if (!target.hooks.rollback) {
    log.info({ release: m.release }, 'rollback complete (no rollback hook configured)');
    return { manifest: restored, file, hook: null, dryRun: false };
  }

  // 5. The hook, without the lock (it may call pgfleet for this target), its outcome recorded.
  const { manifest, hook, failed } = await runRollbackHook(ctx, target, restored, file);
  ctx.out(hookReport(hook));
  if (failed) throw hookFailure(target, m.release, hook);
  log.info({ release: m.release, hook_ms: hook.duration_ms }, 'rollback complete');
  return { manifest, file, hook, dryRun: false };
}
