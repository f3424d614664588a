/**
 * What the offsite bucket holds, read from the bucket alone (no local file is consulted: on a new
 * host, projects.yml, the credentials and the identity are all it takes): each target's copies
 * through the same Repository code as the local backups (`new Repository(bucket)`), so a copy is
 * listed only when its metadata object exists, is valid, names its own object and that object has
 * the recorded size. Anything else is damage with its problem (Repository.survey): a metadata
 * object that does not match its object, or an object without metadata for more than a day (an
 * upload interrupted after its object completed, whose removal failed; offsite prune sweeps it).
 * Read-only.
 */
import type { Target } from '../config/load.js';
import { UsageError } from '../core/errors.js';
import { Repository, type DamagedBackup, type StoredBackup } from '../storage/repository.js';
import { offsiteStore } from './bucket.js';

/** UsageError when the target has no offsite configured. */
function requireOffsite(target: Target): void {
  if (!target.offsite) throw new UsageError(`${target.project}/${target.environment}: no offsite configured (platform.offsite or database.offsite)`);
}

/** The repository of a target's offsite copies (UsageError when the target has no offsite configured). */
export async function offsiteRepository(target: Target, env: NodeJS.ProcessEnv): Promise<Repository> {
  requireOffsite(target);
  return new Repository(await offsiteStore(target, {}, env));
}

/**
 * The complete copies in the bucket of each selected target that has offsite configured, newest
 * first per target. `named`: the caller named the target(s), so one without offsite is an error
 * rather than skipped; selecting none with offsite is one too.
 */
export async function offsiteBackups(targets: Target[], env: NodeJS.ProcessEnv, named: boolean, now: Date = new Date()): Promise<{ target: Target; repo: Repository; backups: StoredBackup[]; damaged: DamagedBackup[] }[]> {
  const withOffsite = targets.filter((t) => t.offsite);
  if (named || !withOffsite.length) for (const t of targets) requireOffsite(t);
  return Promise.all(
    withOffsite.map(async (target) => {
      const repo = await offsiteRepository(target, env);
      const { complete, damaged } = await repo.survey(target.project, target.environment, now);
      return { target, repo, backups: complete, damaged };
    }),
  );
}
