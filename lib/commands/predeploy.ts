/**
 * `pgfleet predeploy <project> <env> --release R [--force]`: what a deploy hook calls before it
 * deploys. Under the target's lock:
 *
 *   check the release id → refuse an existing manifest for it (unless --force)
 *   → take a `pre-deploy` backup → record the images the app containers run
 *   → write deployments/<release>.json atomically → print its path (last stdout line)
 *
 * Promises: if the backup fails, no manifest is written and the error propagates (non-zero exit),
 * so the deploy hook can abort the deploy. An existing manifest is never overwritten without
 * --force: its backup is the state before the first attempt at that release, the one to go back to.
 */
import { takeBackup } from '../backup/take.js';
import { findTarget, type Target } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import { manifestPath, previousRelease, readManifest, saveManifest, scanManifests, type DeploymentManifest } from '../storage/manifests.js';
import { UsageError } from '../core/errors.js';
import { checkRelease } from '../deployments/release.js';
import { retainAfterBackup } from './prune.js';
import { withLock } from '../storage/lock.js';
import { targetLogger } from '../core/log.js';
import { VERSION } from '../core/package.js';

export interface PredeployOptions {
  project: string;
  environment: string;
  release: string;
  force?: boolean;
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

export async function runPredeploy(ctx: Context, o: PredeployOptions): Promise<{ file: string; manifest: DeploymentManifest }> {
  const release = checkRelease(o.release);
  const target = findTarget(ctx.config, o.project, o.environment);
  const { project, environment } = target;
  const log = targetLogger(ctx.logger, target);
  const file = manifestPath(ctx.repo, project, environment, release);

  return withLock(ctx.repo.targetDir(project, environment), target, `predeploy --release ${release}`, async () => {
    // An existing manifest (valid or not) for this release is kept unless --force.
    if (!o.force) {
      const existing = await readManifest(ctx.repo, project, environment, file).catch(() => 'unreadable' as const);
      if (existing)
        throw new UsageError(
          `${project}/${environment}: release ${release} already has a deployment manifest (${file}${existing === 'unreadable' ? ', not valid' : `, created ${existing.created_at}`}); ` +
            'its pre-deploy backup is the state to roll back to. Use a new release id, or --force to take a new backup and replace the manifest',
        );
    }
    const { manifests, bad } = await scanManifests(ctx.repo, project, environment);
    for (const b of bad) log.warn({ file: b.file, problem: b.problem }, 'ignoring an unusable deployment manifest');

    const backup = await takeBackup(ctx, target, { type: 'pre-deploy', release });
    const manifest: DeploymentManifest = {
      format_version: 1,
      project,
      environment,
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
    await saveManifest(ctx.repo, manifest);
    await retainAfterBackup(ctx, target); // after the manifest: it pins the new backup and the previous release's
    log.info({ release, previous_release: manifest.previous_release, backup: manifest.backup, manifest: file }, 'pre-deploy backup and manifest written');
    ctx.out(file);
    return { file, manifest };
  });
}
