/**
 * Deployment manifests (<root>/<project>/<env>/deployments/<release>.json): reading them as
 * untrusted input, ordering them, writing them atomically, and the backups they pin.
 *
 * Promises:
 * - a manifest is used only when it is valid JSON, matches schemas/deployment-manifest.schema.json,
 *   names the project, environment and release of its own file, and its `database_backup` is
 *   exactly the dump of its `backup` id in that target's database dir (never a path elsewhere);
 *   anything else is a ManifestError (exit 2) naming the file and the problem;
 * - "latest" is by created_at, then release name (numeric-aware), never by file mtime;
 * - saves are atomic (temp, fsync, rename) at 0600: a reader sees the old manifest or the new.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EXIT, InternalError, PgfleetError, type TargetRef } from '../core/errors.js';
import { ensureDir, TEMP_PREFIX, writeFileAtomic } from '../core/fsutil.js';
import type { DeploymentManifest } from '../formats/manifest.js';
import type { Repository } from './repository.js';
import { schemaProblems } from '../core/schema-files.js';

export type { DeploymentManifest } from '../formats/manifest.js';

export interface StoredManifest {
  manifest: DeploymentManifest;
  file: string;
}

/** A manifest on disk that cannot be used, and why. */
export interface BadManifest {
  file: string;
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

export function manifestPath(repo: Repository, project: string, environment: string, release: string): string {
  return path.join(repo.deploymentsDir(project, environment), `${release}.json`);
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

/** Read and check one manifest. Throws ManifestError naming the file; ENOENT is returned as null. */
export async function readManifest(repo: Repository, project: string, environment: string, file: string): Promise<DeploymentManifest | null> {
  const ref = { project, environment };
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
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
  const dir = repo.deploymentsDir(project, environment);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { manifests: [], bad: [] };
    throw e;
  }
  const manifests: StoredManifest[] = [];
  const bad: BadManifest[] = [];
  for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith(TEMP_PREFIX)).sort()) {
    const file = path.join(dir, name);
    try {
      const m = await readManifest(repo, project, environment, file);
      if (m) manifests.push({ manifest: m, file });
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
      bad.push({ file, problem: e.problem });
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
  const file = manifestPath(repo, m.project, m.environment, m.release);
  const problems = manifestProblems(repo, m.project, m.environment, file, m);
  if (problems.length) throw new InternalError(`manifest does not pass its checks: ${problems.join('; ')}`);
  await ensureDir(path.dirname(file));
  await writeFileAtomic(file, JSON.stringify(m, null, 2) + '\n');
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
    const id = await fs
      .readFile(b.file, 'utf8')
      .then((t) => (JSON.parse(t) as { backup?: unknown }).backup)
      .catch(() => undefined);
    if (typeof id === 'string' && !pinned.has(id)) pinned.set(id, `named by the unusable manifest ${path.basename(b.file)} (${b.problem}); kept until it is fixed`);
  }
  return pinned;
}
