/**
 * The machinery of `pgfleet rollback` (lib/commands/rollback.ts is its runbook): the checks on a
 * release before it is rolled back, the plan shown before consent, the restore of its pre-deploy
 * backup with the manifest kept in step, and the rollback hook with its result recorded.
 *
 * Promises: every manifest change is an atomic save (lib/storage/manifests.ts); a failed restore
 * leaves the manifest "deployed" with the failed attempt recorded; a manifest already rolled back
 * is refused, also when another run rolled it back meanwhile (checked again under the lock).
 */
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { howEnded } from '../core/text.js';
import type { HookResult } from '../formats/manifest.js';
import { restoreOver } from '../restore/over.js';
import type { Context } from '../runtime/context.js';
import { hookFailed, runHook } from '../runtime/hooks.js';
import { ManifestError, readManifest, saveManifest, type DeploymentManifest, type StoredManifest } from '../storage/manifests.js';
import type { StoredBackup } from '../storage/repository.js';

/** Throws UsageError when the release was rolled back already: doing it twice loses what was written since. */
export function refuseRolledBack(s: StoredManifest): void {
  if (s.manifest.status !== 'rolled-back') return;
  const r = s.manifest.rollback;
  throw new UsageError(
    `${s.manifest.project}/${s.manifest.environment}: release ${s.manifest.release} was already rolled back (${r?.started_at ?? '?'}, ${r?.outcome ?? '?'}; ${s.file}); nothing done. ` +
      'Rolling back again would throw away everything written since. To go further back, name an older release with --release, or use restore',
  );
}

/** The release's pre-deploy backup, complete and truly its own (a ManifestError when the manifest names another). */
export async function preDeployBackup(ctx: Context, target: Target, s: StoredManifest): Promise<StoredBackup> {
  const { project, environment } = target;
  const m = s.manifest;
  const backup = await ctx.repo.find(project, environment, m.backup);
  if (!backup) throw new PgfleetError(`${project}/${environment}: the pre-deploy backup ${m.backup} of release ${m.release} (${m.database_backup}) is missing or incomplete; cannot roll back`, EXIT.FAILED, { project, environment });
  if (backup.meta.type !== 'pre-deploy' || backup.meta.release !== m.release)
    throw new ManifestError(s.file, `backup ${m.backup} is a ${backup.meta.type} backup of release ${backup.meta.release ?? '(none)'}, not the pre-deploy backup of ${m.release}`, { project, environment });
  return backup;
}

/** What the rollback will do, line by line, before anything changes. */
export function rollbackPlan(target: Target, s: StoredManifest, backup: StoredBackup, manifests: readonly StoredManifest[]): string[] {
  const m = s.manifest;
  const later = manifests.filter((x) => x.manifest.status !== 'rolled-back' && x.manifest.release !== m.release && Date.parse(x.manifest.created_at) > Date.parse(m.created_at));
  return [
    `rollback plan for ${target.project}/${target.environment}:`,
    `  release           ${m.release} (deployed ${m.created_at}); previous release ${m.previous_release ?? '(none)'}`,
    `  restore database  ${target.database} from pre-deploy backup ${backup.meta.id} (${backup.meta.created_at}, ${backup.meta.total_rows} rows)`,
    `                    ${backup.path}`,
    `  safety backup     of the live database first; the replaced database is kept under another name`,
    `  app containers    ${target.appContainers.join(', ') || '(none configured)'} stopped, then started again`,
    `  rollback hook     ${target.hooks.rollback ? target.hooks.rollback.join(' ') : '(none configured)'}`,
    ...(later.length ? [`  also undone       later release${later.length > 1 ? 's' : ''} ${later.map((x) => x.manifest.release).join(', ')} (their manifests are left as they are)`] : []),
  ];
}

/**
 * Restore the release's pre-deploy backup over the live database and mark the manifest rolled
 * back ("hook-pending" when a hook is to run). The caller holds the target's lock. On a failed
 * restore the attempt is recorded (outcome restore-failed, status unchanged) and the error rethrown.
 */
export async function restoreRelease(ctx: Context, target: Target, s: StoredManifest, backup: StoredBackup, startedAt: string): Promise<DeploymentManifest> {
  const log = targetLogger(ctx.logger, target);
  const now = await readManifest(ctx.repo, target.project, target.environment, s.file);
  if (!now) throw new PgfleetError(`${s.file} disappeared; nothing done`, EXIT.FAILED, { project: target.project, environment: target.environment });
  refuseRolledBack({ manifest: now, file: s.file });
  log.info({ release: now.release, backup: backup.meta.id }, 'rollback: restoring the pre-deploy backup');
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
  const hook = !!target.hooks.rollback;
  const marked: DeploymentManifest = {
    ...now,
    status: 'rolled-back',
    rollback: {
      started_at: startedAt,
      finished_at: hook ? null : ctx.clock().toISOString(),
      outcome: hook ? 'hook-pending' : 'succeeded',
      safety_backup: r.safetyBackup?.meta.id ?? null,
      previous_database: r.previousDatabase ?? null,
      hook: null,
    },
  };
  await saveManifest(ctx.repo, marked);
  return marked;
}

/**
 * Run database.hooks.rollback (without the lock: it may call pgfleet for this target) with the
 * release in its environment, and record its outcome in the manifest. Never throws for the hook's
 * own failure: `failed` says so, and hookFailure() is the error to give.
 */
export async function runRollbackHook(ctx: Context, target: Target, restored: DeploymentManifest, file: string): Promise<{ manifest: DeploymentManifest; hook: HookResult; failed: boolean }> {
  const hook = await runHook(ctx, target, 'rollback', target.hooks.rollback!, {
    PGFLEET_PROJECT: target.project,
    PGFLEET_ENVIRONMENT: target.environment,
    PGFLEET_RELEASE: restored.release,
    PGFLEET_PREVIOUS_RELEASE: restored.previous_release ?? '',
    PGFLEET_MANIFEST: file,
  });
  const failed = hookFailed(hook);
  const manifest: DeploymentManifest = { ...restored, rollback: { ...restored.rollback!, finished_at: ctx.clock().toISOString(), outcome: failed ? 'hook-failed' : 'succeeded', hook } };
  await saveManifest(ctx.repo, manifest);
  return { manifest, hook, failed };
}

/** "rollback hook <argv>: exit code N", then its output tail, indented. */
export function hookReport(hook: HookResult): string {
  return `rollback hook ${hook.argv.join(' ')}: ${howEnded(hook.exit_code, hook.signal)}${hook.output_tail ? `\n${hook.output_tail.replace(/^/gm, '  | ')}` : ''}`;
}

/** Exit 1: the database is restored, the application is not back. */
export function hookFailure(target: Target, release: string, hook: HookResult): PgfleetError {
  return new PgfleetError(
    `${target.project}/${target.environment}: the database is restored to before release ${release}, but the rollback hook ${hook.argv.join(' ')} failed (${howEnded(hook.exit_code, hook.signal)})` +
      (hook.output_tail ? `: ${hook.output_tail}` : '') + '; bring the application back by hand',
    EXIT.FAILED,
    { project: target.project, environment: target.environment },
  );
}
