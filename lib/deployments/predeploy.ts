/**
 * The machinery of `pgfleet predeploy` (lib/commands/predeploy.ts is its runbook): the refusal to
 * replace a release's manifest, and the new manifest with the images the app containers run.
 *
 * Promises: an existing manifest for a release (valid or not) is never replaced unless forced: its
 * backup is the state before the first attempt at that release, the one to go back to. Recording
 * an app container's image never fails the deploy: an uninspectable one is recorded as null.
 */
import type { Target } from '../config/load.js';
import { UsageError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import { VERSION } from '../core/package.js';
import type { Context } from '../runtime/context.js';
import { manifestPath, previousRelease, readManifest, type DeploymentManifest, type StoredManifest } from '../storage/manifests.js';
import type { StoredBackup } from '../storage/repository.js';

/** UsageError (exit 2) when `release` already has a manifest, usable or not. */
export async function refuseExistingManifest(ctx: Context, target: Target, release: string): Promise<void> {
  const { project, environment } = target;
  const file = manifestPath(ctx.repo, project, environment, release);
  const existing = await readManifest(ctx.repo, project, environment, file).catch(() => 'unreadable' as const);
  if (existing)
    throw new UsageError(
      `${project}/${environment}: release ${release} already has a deployment manifest (${file}${existing === 'unreadable' ? ', not valid' : `, created ${existing.created_at}`}); ` +
        'its pre-deploy backup is the state to roll back to. Use a new release id, or --force to take a new backup and replace the manifest',
    );
}

/** The image each app container runs now; null (with a warning) for one that cannot be inspected. */
async function appImages(ctx: Context, target: Target): Promise<DeploymentManifest['app_containers']> {
  const log = targetLogger(ctx.logger, target);
  const ref = { project: target.project, environment: target.environment };
  const out: DeploymentManifest['app_containers'] = [];
  for (const name of target.appContainers) {
    try {
      out.push({ name, image: await ctx.containers.image(name, ref) });
    } catch (e) {
      log.warn({ container: name, err: (e as Error).message }, 'cannot inspect app container; its image is recorded as null');
      out.push({ name, image: null });
    }
  }
  return out;
}

/** The manifest of `release` deployed after `manifests` (the target's, newest first), pinning `backup`. */
export async function deploymentManifest(ctx: Context, target: Target, release: string, backup: StoredBackup, manifests: readonly StoredManifest[]): Promise<DeploymentManifest> {
  return {
    format_version: 1,
    project: target.project,
    environment: target.environment,
    release,
    previous_release: previousRelease(manifests, release),
    created_at: ctx.clock().toISOString(),
    database: target.database,
    backup: backup.meta.id,
    database_backup: backup.path,
    app_containers: await appImages(ctx, target),
    status: 'deployed',
    rollback: null,
    pgfleet_version: VERSION,
  };
}
