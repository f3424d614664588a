/**
 * Deployment manifests (<project>/<env>/deployments/<release>.json in the repository's store):
 * reading them as untrusted input, ordering them, writing them atomically, and the backups they pin.
 * Every byte goes through the repository's Store; `file` is the manifest's path there (for
 * messages, PGFLEET_MANIFEST, the CLI's output).
 *
 * Promises:
 * - a manifest is used only when it is valid JSON, matches schemas/deployment-manifest.schema.json,
 *   names the project, environment and release of its own file, and its `database_backup` is
 *   exactly the dump of its `backup` id in that target's database dir (never a path elsewhere);
 *   anything else is a ManifestError (exit 2) naming the file and the problem;
 * - "latest" is by created_at, then release name (numeric-aware), never by file mtime;
 * - saves are atomic (the store's save: temp, fsync, rename; 0600): a reader sees the old manifest or the new.
 */
import path from 'node:path';
import { EXIT, InternalError, PgfleetError, type TargetRef } from '../core/errors.js';
import type { DeploymentManifest } from '../formats/manifest.js';
import type { Repository } from './repository.js';
import { schemaProblems } from '../core/schema-files.js';
import { NotFoundError } from './store.js';

export type { DeploymentManifest } from '../formats/manifest.js';

export interface StoredManifest {
  manifest: DeploymentManifest;
  file: string;
}

/** A manifest in the store that cannot be used, and why. */
export interface BadManifest {
  file: string;
  key: string;
  problem: string;
}

export class ManifestError extends PgfleetError {
  constructor(
    readonly file: string,
    readonly problem: string,
    target: TargetRef = {},
  ) {
    super(`deployment manifest ${file}: ${problem}`, EXIT.USAGE, target);
  }
}

export function manifestKey(repo: Repository, project: string, environment: string, release: string): string {
  return `${repo.deploymentsPrefix(project, environment)}${release}.json`;
}

export function manifestPath(repo: Repository, project: string, environment: string, release: string): string {
  return repo.pathOf(manifestKey(repo, project, environment, release));
}

/** Every reason `data` (read from `file`) is not a usable manifest of project/environment; [] when it is. */
export function manifestProblems(repo: Repository, project: string, environment: string, file: string, data: unknown): string[] {
  const schema = schemaProblems('deployment-manifest', data);
  if (schema.length) return schema.slice(0, 5).map((p) => `schema: ${p}`);
  const m = data as DeploymentManifest;
  const problems: string[] = [];
  const expectedName = `${m.release}.json`;
  if (path.basename(file) !== expectedName) problems.push(`release "${m.release}" does not match the file name`);
  if (m.project !== project || m.environment !== environment) problems.push(`names ${m.project}/${m.environment}, but lies under ${project}/${environment}`);
  const root = path.resolve(repo.root);
  const dump = path.resolve(m.database_backup);
  const rel = path.relative(root, dump);
  if (!path.isAbsolute(m.database_backup)) problems.push(`database_backup must be an absolute path (${m.database_backup})`);
  else if (rel.startsWith('..') || path.isAbsolute(rel)) problems.push(`database_backup points outside the backup root ${root} (${m.database_backup})`);
  else if (path.dirname(dump) !== path.resolve(repo.databaseDir(project, environment))) problems.push(`database_backup points outside ${project}/${environment}'s database directory (${m.database_backup})`);
  else if (dump !== path.resolve(repo.dumpPath(project, environment, m.backup))) problems.push(`database_backup (${path.basename(dump)}) is not the dump of backup ${m.backup}`);
  return problems;
}

/** Read and check one manifest, by its path. Throws ManifestError naming the file; a missing one is null. */
export async function readManifest(repo: Repository, project: string, environment: string, file: string): Promise<DeploymentManifest | null> {
  const key = repo.keyOf(file);
  const prefix = repo.deploymentsPrefix(project, environment);
  if (!key || !key.startsWith(prefix) || key.includes('/', prefix.length))
    throw new ManifestError(file, `not a manifest of ${project}/${environment} (they are in ${repo.deploymentsDir(project, environment)})`, { project, environment });
  return readManifestKey(repo, project, environment, key);
}

async function readManifestKey(repo: Repository, project: string, environment: string, key: string): Promise<DeploymentManifest | null> {
  const ref = { project, environment };
  const file = repo.pathOf(key);
  let text: string;
  try {
    text = (await repo.store.read(key)).toString('utf8');
  } catch (e) {
    if (e instanceof NotFoundError) return null;
    throw new ManifestError(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ref);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(file, `not valid JSON: ${(e as Error).message}`, ref);
  }
  const problems = manifestProblems(repo, project, environment, file, data);
  if (problems.length) throw new ManifestError(file, problems.join('; '), ref);
  return data as DeploymentManifest;
}

/** Newest first: created_at, then release name (numeric-aware), both descending. */
export function compareManifests(a: DeploymentManifest, b: DeploymentManifest): number {
  if (a.created_at !== b.created_at) return Date.parse(b.created_at) - Date.parse(a.created_at) || b.created_at.localeCompare(a.created_at);
  return b.release.localeCompare(a.release, 'en', { numeric: true });
}

/** All manifests of a target, newest first, and the files that are not usable manifests. */
export async function scanManifests(repo: Repository, project: string, environment: string): Promise<{ manifests: StoredManifest[]; bad: BadManifest[] }> {
  const prefix = repo.deploymentsPrefix(project, environment);
  const keys = (await repo.store.list(prefix)).map((o) => o.key).filter((k) => k.endsWith('.json') && !k.includes('/', prefix.length));
  const manifests: StoredManifest[] = [];
  const bad: BadManifest[] = [];
  for (const key of keys) {
    const file = repo.pathOf(key);
    try {
      const m = await readManifestKey(repo, project, environment, key);
      if (m) manifests.push({ manifest: m, file });
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
      bad.push({ file, key, problem: e.problem });
    }
  }
  manifests.sort((a, b) => compareManifests(a.manifest, b.manifest));
  return { manifests, bad };
}

/** The release that runs before `release` is deployed: the newest other manifest not rolled back. */
export function previousRelease(manifests: readonly StoredManifest[], release: string): string | null {
  return manifests.find((s) => s.manifest.release !== release && s.manifest.status !== 'rolled-back')?.manifest.release ?? null;
}

/** Write a manifest atomically (0600, dirs 0700). Refuses one that would not pass its own checks. */
export async function saveManifest(repo: Repository, m: DeploymentManifest): Promise<string> {
  const key = manifestKey(repo, m.project, m.environment, m.release);
  const file = repo.pathOf(key);
  const problems = manifestProblems(repo, m.project, m.environment, file, m);
  if (problems.length) throw new InternalError(`manifest does not pass its checks: ${problems.join('; ')}`);
  await repo.store.save(key, JSON.stringify(m, null, 2) + '\n');
  return file;
}

/**
 * Backup id → why it is kept, for the pre-deploy backups of the latest two valid manifests
 * (current and previous release). Unusable manifests pin nothing.
 */
export async function pinnedByDeployments(repo: Repository, project: string, environment: string): Promise<Map<string, string>> {
  const { manifests, bad } = await scanManifests(repo, project, environment);
  const pinned = new Map<string, string>();
  manifests.slice(0, 2).forEach((s, i) => {
    if (!pinned.has(s.manifest.backup)) pinned.set(s.manifest.backup, `pre-deploy backup of release ${s.manifest.release} (${i === 0 ? 'latest' : 'previous'} deployment)`);
  });
  // Fail safe: a manifest that cannot be used (hand-edited, a moved backup root) still keeps the
  // backup it names, until someone fixes or removes it. Keeping too much is the safe mistake.
  for (const b of bad) {
    const id = await repo.store
      .read(b.key)
      .then((t) => (JSON.parse(t.toString('utf8')) as { backup?: unknown }).backup)
      .catch(() => undefined);
    if (typeof id === 'string' && !pinned.has(id)) pinned.set(id, `named by the unusable manifest ${path.basename(b.file)} (${b.problem}); kept until it is fixed`);
  }
  return pinned;
}
