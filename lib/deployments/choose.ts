/**
 * Which deployment manifest a command acts on: the release it names, or the target's latest.
 * Reads only (lib/storage/manifests.ts), takes no lock.
 *
 * Promises: a named release is checked (checkRelease) before it reaches a path, and its manifest
 * must be usable (a broken one is a ManifestError naming the file); "the latest" is the newest
 * usable manifest, and with `strict` only when every manifest of the target is usable (an
 * unusable one might be the latest: rollback must not guess). Never a file outside the target's
 * deployments directory.
 */
import type { Target } from '../config/load.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import type { Context } from '../runtime/context.js';
import { ManifestError, manifestPath, readManifest, scanManifests, type BadManifest, type StoredManifest } from '../storage/manifests.js';
import { checkRelease } from './release.js';

export interface ChooseOptions {
  /** The release asked for (--release); undefined: the latest. */
  release?: string;
  /** The latest only when every manifest is usable (rollback); else the newest usable one. */
  strict?: boolean;
  /** Said after "no deployment recorded (…)", e.g. "nothing to roll back". */
  nothingMeans?: string;
  /** Told each unusable manifest first, before any choice or error (to log it). */
  onUnusable?: (b: BadManifest) => void;
}

export interface Chosen {
  chosen: StoredManifest;
  /** Every usable manifest of the target, newest first. */
  manifests: StoredManifest[];
  bad: BadManifest[];
}

/**
 * Throws UsageError for an unknown or invalid release, ManifestError for an unusable named one (or,
 * strict, any unusable one when choosing the latest), exit 1 when nothing is recorded, exit 2 when
 * nothing usable is.
 */
export async function chooseManifest(ctx: Context, target: Target, o: ChooseOptions = {}): Promise<Chosen> {
  const { project, environment } = target;
  const ref = { project, environment };
  const { manifests, bad } = await scanManifests(ctx.repo, project, environment);
  for (const b of bad) o.onUnusable?.(b);
  if (o.release !== undefined) {
    const release = checkRelease(o.release);
    const file = manifestPath(ctx.repo, project, environment, release);
    const m = await readManifest(ctx.repo, project, environment, file);
    if (!m) throw new UsageError(`${project}/${environment}: no deployment manifest for release ${release} (releases: ${manifests.map((s) => s.manifest.release).join(', ') || 'none'})`);
    return { chosen: { manifest: m, file }, manifests, bad };
  }
  if (o.strict && bad.length)
    throw new ManifestError(bad[0].file, `${bad[0].problem}; cannot tell which release is the latest (${bad.length} unusable manifest${bad.length > 1 ? 's' : ''}); fix or remove it, or name the release with --release`, ref);
  const [latest] = manifests;
  if (latest) return { chosen: latest, manifests, bad };
  if (bad.length) throw new PgfleetError(`${project}/${environment}: no usable deployment manifest (${bad.length} unusable, see above)`, EXIT.USAGE, ref);
  throw new PgfleetError(
    `${project}/${environment}: no deployment recorded (no manifests in ${ctx.repo.deploymentsDir(project, environment)})${o.nothingMeans ? `; ${o.nothingMeans}` : ''}`,
    EXIT.FAILED,
    ref,
  );
}
