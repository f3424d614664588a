/**
 * `pgfleet predeploy <project> <env> --release R [--force]`: what a deploy hook calls before it
 * deploys. Under the target's lock (lib/backup/cycle.ts):
 *
 *   1. check the release id; refuse an existing manifest for it (unless --force)
 *   2. take a `pre-deploy` backup
 *   3. record the images the app containers run; write deployments/<release>.json atomically
 *   4. retention (after the manifest: it pins the new backup and the previous release's)
 *   5. print the manifest's path (the last stdout line)
 *
 * Promises: if the backup fails, no manifest is written and the error propagates (non-zero exit),
 * so the deploy hook can abort the deploy. An existing manifest is never overwritten without
 * --force. A retention failure keeps backup and manifest, still prints the path, then exits 1.
 */
import { backupCycle } from '../backup/cycle.js';
import { findTarget } from '../config/load.js';
import { targetLogger } from '../core/log.js';
import { deploymentManifest, refuseExistingManifest } from '../deployments/predeploy.js';
import { checkRelease } from '../deployments/release.js';
import type { Context } from '../runtime/context.js';
import { manifestPath, saveManifest, scanManifests, type DeploymentManifest, type StoredManifest } from '../storage/manifests.js';

export interface PredeployOptions {
  project: string;
  environment: string;
  release: string;
  force?: boolean;
}

export async function runPredeploy(ctx: Context, o: PredeployOptions): Promise<{ file: string; manifest: DeploymentManifest }> {
  const release = checkRelease(o.release);
  const target = findTarget(ctx.config, o.project, o.environment);
  const { project, environment } = target;
  const log = targetLogger(ctx.logger, target);
  const file = manifestPath(ctx.repo, project, environment, release);

  let manifests: StoredManifest[] = [];
  const run = await backupCycle(ctx, target, {
    command: `predeploy --release ${release}`,
    backup: { type: 'pre-deploy', release },
    before: async () => {
      if (!o.force) await refuseExistingManifest(ctx, target, release);
      const scan = await scanManifests(ctx.repo, project, environment);
      for (const b of scan.bad) log.warn({ file: b.file, problem: b.problem }, 'ignoring an unusable deployment manifest');
      manifests = scan.manifests;
    },
    record: async (backup) => {
      const manifest = await deploymentManifest(ctx, target, release, backup, manifests);
      await saveManifest(ctx.repo, manifest);
      return manifest;
    },
  });
  const manifest = run.recorded;
  log.info({ release, previous_release: manifest.previous_release, backup: manifest.backup, manifest: file }, 'pre-deploy backup and manifest written');
  ctx.out(file);
  if (run.retentionError) throw run.retentionError;
  return { file, manifest };
}
