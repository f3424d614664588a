/**
 * `pgfleet rollback <project> <env> [--release R] [--yes] [--dry-run]`: after a bad release, put
 * the database back to that release's pre-deploy backup, then let the project's rollback hook
 * bring the application back.
 *
 *   choose the manifest (named, or the latest: every manifest must be readable to know which)
 *   → refuse one already rolled back → find its pre-deploy backup → print the plan → confirm
 *   → under the lock: re-check the manifest, restore through the restore engine (checksum,
 *     safety backup, app containers stopped and started, swap by rename), mark it rolled back
 *   → after the lock (the hook may call pgfleet itself): run database.hooks.rollback, record it
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
import { ManifestError, manifestPath, readManifest, saveManifest, scanManifests, type DeploymentManifest, type StoredManifest } from '../storage/manifests.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import { hookFailed, runHook } from '../runtime/hooks.js';
import { howEnded } from '../core/text.js';
import { withLock } from '../storage/lock.js';
import { targetLogger } from '../core/log.js';
import type { HookResult } from '../formats/manifest.js';
import { restoreOver } from '../restore/engine.js';
import { checkRelease } from './predeploy.js';

export interface RollbackOptions {
  project: string;
  environment: string;
  release?: string;
  yes?: boolean;
  dryRun?: boolean;
  /** Tests: how confirmation is asked (see lib/confirm.ts). */
  confirm?: Pick<ConfirmOptions, 'tty' | 'ask'>;
}

export interface RollbackResult {
  manifest: DeploymentManifest;
  file: string;
  hook: HookResult | null;
  dryRun: boolean;
}

function alreadyRolledBack(s: StoredManifest): UsageError {
  const r = s.manifest.rollback;
  return new UsageError(
    `${s.manifest.project}/${s.manifest.environment}: release ${s.manifest.release} was already rolled back (${r?.started_at ?? '?'}, ${r?.outcome ?? '?'}; ${s.file}); nothing done. ` +
      'Rolling back again would throw away everything written since. To go further back, name an older release with --release, or use restore',
  );
}

export async function runRollback(ctx: Context, o: RollbackOptions): Promise<RollbackResult> {
  const target = findTarget(ctx.config, o.project, o.environment);
  const { project, environment } = target;
  const ref = { project, environment };
  const log = targetLogger(ctx.logger, target);
  const { manifests, bad } = await scanManifests(ctx.repo, project, environment);

  // Which release: the named one, or the latest (which needs every manifest readable).
  let chosen: StoredManifest;
  if (o.release !== undefined) {
    const release = checkRelease(o.release);
    const file = manifestPath(ctx.repo, project, environment, release);
    const m = await readManifest(ctx.repo, project, environment, file);
    if (!m) throw new UsageError(`${project}/${environment}: no deployment manifest for release ${release} (releases: ${manifests.map((s) => s.manifest.release).join(', ') || 'none'})`);
    chosen = { manifest: m, file };
  } else {
    if (bad.length) throw new ManifestError(bad[0].file, `${bad[0].problem}; cannot tell which release is the latest (${bad.length} unusable manifest${bad.length > 1 ? 's' : ''}); fix or remove it, or name the release with --release`, ref);
    if (!manifests[0]) throw new PgfleetError(`${project}/${environment}: no deployment recorded (no manifests in ${ctx.repo.deploymentsDir(project, environment)}); nothing to roll back`, EXIT.FAILED, ref);
    chosen = manifests[0];
  }
  const m = chosen.manifest;
  if (m.status === 'rolled-back') throw alreadyRolledBack(chosen);

  const backup = await ctx.repo.find(project, environment, m.backup);
  if (!backup) throw new PgfleetError(`${project}/${environment}: the pre-deploy backup ${m.backup} of release ${m.release} (${m.database_backup}) is missing or incomplete; cannot roll back`, EXIT.FAILED, ref);
  if (backup.meta.type !== 'pre-deploy' || backup.meta.release !== m.release)
    throw new ManifestError(chosen.file, `backup ${m.backup} is a ${backup.meta.type} backup of release ${backup.meta.release ?? '(none)'}, not the pre-deploy backup of ${m.release}`, ref);

  // The plan, printed before anything changes.
  const later = manifests.filter((s) => s.manifest.status !== 'rolled-back' && s.manifest.release !== m.release && Date.parse(s.manifest.created_at) > Date.parse(m.created_at));
  ctx.out(`rollback plan for ${project}/${environment}:`);
  ctx.out(`  release           ${m.release} (deployed ${m.created_at}); previous release ${m.previous_release ?? '(none)'}`);
  ctx.out(`  restore database  ${target.database} from pre-deploy backup ${backup.meta.id} (${backup.meta.created_at}, ${backup.meta.total_rows} rows)`);
  ctx.out(`                    ${backup.path}`);
  ctx.out(`  safety backup     of the live database first; the replaced database is kept under another name`);
  ctx.out(`  app containers    ${target.appContainers.join(', ') || '(none configured)'} stopped, then started again`);
  ctx.out(`  rollback hook     ${target.hooks.rollback ? target.hooks.rollback.join(' ') : '(none configured)'}`);
  if (later.length) ctx.out(`  also undone       later release${later.length > 1 ? 's' : ''} ${later.map((s) => s.manifest.release).join(', ')} (their manifests are left as they are)`);

  const go = await confirmOrExit(ctx, `Replace the live database ${target.database} of ${project}/${environment} with its state before release ${m.release}?`, { yes: o.yes, dryRun: o.dryRun, ...o.confirm });
  if (!go) {
    ctx.out('dry run: nothing changed');
    return { manifest: m, file: chosen.file, hook: null, dryRun: true };
  }

  const startedAt = ctx.clock().toISOString();
  const hookArgv = target.hooks.rollback;
  const restored = await withLock(ctx.repo.targetDir(project, environment), target, `rollback --release ${m.release}`, async () => {
    // State checked again under the lock: another run may have rolled it back meanwhile.
    const now = await readManifest(ctx.repo, project, environment, chosen.file);
    if (!now) throw new PgfleetError(`${chosen.file} disappeared; nothing done`, EXIT.FAILED, ref);
    if (now.status === 'rolled-back') throw alreadyRolledBack({ manifest: now, file: chosen.file });
    log.info({ release: m.release, backup: backup.meta.id }, 'rollback: restoring the pre-deploy backup');
    let r: Awaited<ReturnType<typeof restoreOver>>;
    try {
      r = await restoreOver(ctx, target, backup, { safetyBackup: true, signal: ctx.signal });
    } catch (e) {
      const failed: DeploymentManifest = {
        ...now,
        rollback: { started_at: startedAt, finished_at: ctx.clock().toISOString(), outcome: 'restore-failed', safety_backup: null, previous_database: null, hook: null, error: (e as Error)?.message ?? String(e) },
      };
      await saveManifest(ctx.repo, failed).catch((se) => log.error({ err: (se as Error).message }, 'could not record the failed rollback in the manifest'));
      throw e;
    }
    const marked: DeploymentManifest = {
      ...now,
      status: 'rolled-back',
      rollback: {
        started_at: startedAt,
        finished_at: hookArgv ? null : ctx.clock().toISOString(),
        outcome: hookArgv ? 'hook-pending' : 'succeeded',
        safety_backup: r.safetyBackup?.meta.id ?? null,
        previous_database: r.previousDatabase ?? null,
        hook: null,
      },
    };
    await saveManifest(ctx.repo, marked);
    return marked;
  });
  ctx.out(`database ${target.database} restored to before release ${m.release}${restored.rollback?.previous_database ? `; the replaced database is kept as ${restored.rollback.previous_database}` : ''}`);
  if (!hookArgv) {
    log.info({ release: m.release }, 'rollback complete (no rollback hook configured)');
    return { manifest: restored, file: chosen.file, hook: null, dryRun: false };
  }

  // The hook runs without the lock: it may call pgfleet for this target itself.
  const hook = await runHook(ctx, target, 'rollback', hookArgv, {
    PGFLEET_PROJECT: project,
    PGFLEET_ENVIRONMENT: environment,
    PGFLEET_RELEASE: m.release,
    PGFLEET_PREVIOUS_RELEASE: m.previous_release ?? '',
    PGFLEET_MANIFEST: chosen.file,
  });
  const failed = hookFailed(hook);
  const final: DeploymentManifest = { ...restored, rollback: { ...restored.rollback!, finished_at: ctx.clock().toISOString(), outcome: failed ? 'hook-failed' : 'succeeded', hook } };
  await saveManifest(ctx.repo, final);
  ctx.out(`rollback hook ${hookArgv.join(' ')}: ${howEnded(hook.exit_code, hook.signal)}${hook.output_tail ? `\n${hook.output_tail.replace(/^/gm, '  | ')}` : ''}`);
  if (failed) {
    throw new PgfleetError(
      `${project}/${environment}: the database is restored to before release ${m.release}, but the rollback hook ${hookArgv.join(' ')} failed (${howEnded(hook.exit_code, hook.signal)})` +
        (hook.output_tail ? `: ${hook.output_tail}` : '') + '; bring the application back by hand',
      EXIT.FAILED,
      ref,
    );
  }
  log.info({ release: m.release, hook_ms: hook.duration_ms }, 'rollback complete');
  return { manifest: final, file: chosen.file, hook, dryRun: false };
}
