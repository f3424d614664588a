/**
 * A cluster: the projects whose `container` is the same, when they enable database.pitr. Its WAL
 * and base backups are the cluster's, not a target's: one landing directory, one archive under
 * `_clusters/<container>/` (lib/pitr/archive.ts), one lock. Cluster-wide SQL (settings,
 * pg_switch_wal, pg_basebackup) runs inside the container as the `postgres` superuser over the
 * local socket, which initdb's and the official image's pg_hba.conf trust.
 */
import type { LoadedConfig, Target } from '../config/load.js';
import { EXIT, PgfleetError, UsageError } from '../core/errors.js';
import type { Context } from '../runtime/context.js';
import { withLock } from '../storage/lock.js';
import { ClusterArchive } from './archive.js';

export const SUPERUSER = 'postgres';

export interface Cluster {
  container: string;
  archiveDir: string;
  maxWalAgeMs: number;
  baseBackupEveryMs: number;
  /** Base backup retention: its targets' most keeping values (the most base backups, the longest age). */
  keepBaseBackups: number;
  baseBackupRetentionMs: number;
  /** Its PITR targets; the first is the one asked about (its shell runs cluster SQL). */
  targets: Target[];
}

function build(config: LoadedConfig, first: Target): Cluster {
  const targets = [first, ...config.targets.filter((t) => t !== first && t.pitr && t.container === first.container)];
  return { container: first.container!, archiveDir: first.pitr!.archiveDir, maxWalAgeMs: Math.min(...targets.map((t) => t.pitr!.maxWalAgeMs)), baseBackupEveryMs: Math.min(...targets.map((t) => t.pitr!.baseBackupEveryMs)), keepBaseBackups: Math.max(...targets.map((t) => t.pitr!.keepBaseBackups)), baseBackupRetentionMs: Math.max(...targets.map((t) => t.pitr!.baseBackupRetentionMs)), targets };
}

/** The cluster `target` lives in; a UsageError when the target has no point-in-time recovery. */
export function clusterOf(config: LoadedConfig, target: Target): Cluster {
  if (!target.pitr || !target.container) throw new UsageError(`${target.project}/${target.environment}: point-in-time recovery is not enabled (database.pitr: {enabled: true, archive_dir: …} in ${config.file})`);
  return build(config, target);
}

/** The distinct clusters of the PITR targets among `targets`, in their order. */
export function pitrClusters(config: LoadedConfig, targets: readonly Target[]): Cluster[] {
  const seen = new Map<string, Cluster>();
  for (const t of targets) if (t.pitr && t.container && !seen.has(t.container)) seen.set(t.container, build(config, t));
  return [...seen.values()];
}

export const archiveOf = (ctx: Context, c: Cluster) => new ClusterArchive(ctx.repo.store, c.container);

/** Unaligned tuples of `sql` run as the superuser in the cluster's container. Throws CommandError. */
export async function clusterSql(ctx: Context, c: Cluster, sql: string): Promise<string> {
  const shell = ctx.shellFor(c.targets[0]);
  const r = await shell.run('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-U', SUPERUSER, '-d', 'postgres'], { input: sql, role: 'query', signal: ctx.signal });
  return r.stdout.trim();
}

/** The container's mounts (docker and podman inspect both say Source and Destination). */
export async function mountsOf(ctx: Context, c: Cluster): Promise<{ source: string; destination: string }[]> {
  const inspect = ctx.containers.command(['container', 'inspect', '--format', '{{json .Mounts}}', c.container], ref(c)); // on the target's container_host
  const r = await ctx.runner.run(inspect.argv, { what: `${ctx.containers.cli} inspect`, role: 'inspect', target: ref(c), env: inspect.env });
  const list = JSON.parse(r.stdout.trim() || '[]') as { Source?: string; Destination?: string }[];
  return (list ?? []).map((m) => ({ source: m.Source ?? '', destination: m.Destination ?? '' }));
}

export const ref = (c: Cluster) => ({ project: c.targets[0].project, environment: c.targets[0].environment });

/** Run `fn` holding the cluster's lock (a local file in the archive's directory); busy: LockBusyError at once. */
export function withClusterLock<T>(ctx: Context, c: Cluster, command: string, fn: () => Promise<T>): Promise<T> {
  const a = archiveOf(ctx, c);
  if (!a.store.pathOf) throw new PgfleetError(`the cluster lock needs a local directory; ${a.store.location} is not one`, EXIT.FAILED);
  return withLock(a.store.pathOf(a.prefix), ref(c), command, fn);
}
