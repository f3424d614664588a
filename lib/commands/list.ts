/**
 * `pgfleet list [<project> [<env>]] [--offsite] [--json]`: the backups of the selected targets.
 *
 *   select the targets → each one's survey (lib/storage/repository.ts): complete and damaged
 *   → newest first → --json: an array of ListedBackup · else a table (target, id, state, type,
 *   time, size, verification, path) and, below it, each damaged backup's problem
 *
 * Read-only: takes no lock, writes nothing. A damaged backup (metadata whose dump is missing or
 * of another size, metadata that cannot be read, a dump left without metadata for over a day) is
 * listed with state `damaged` and its problem, never hidden; it is never restored.
 * --offsite also lists the base backups the bucket holds of each PITR target's cluster (type
 * `base`), and, under the table, the WAL range there (first … last, gaps).
 */
import { selectTargets, type Target } from '../config/load.js';
import { offsiteBackups } from '../offsite/catalog.js';
import { clusterOf } from '../pitr/cluster.js';
import { bucketCatalog, type BucketBase, type BucketCluster } from '../pitr/offsite.js';
import type { Context } from '../runtime/context.js';
import type { DamagedBackup, StoredBackup } from '../storage/repository.js';
import { newestFirst, partialOf, type PartialInfo } from '../formats/metadata.js';
import { humanSize, renderTable } from '../core/text.js';

export interface ListedBackup {
  id: string;
  /** complete: restorable; damaged: not (see `problem`). */
  state: 'complete' | 'damaged';
  /** Why a damaged backup is not complete. */
  problem?: string;
  project: string;
  environment: string;
  /** null only for a damaged backup whose metadata is missing or unreadable (as are type, created_at, size_bytes, sha256). */
  database: string | null;
  type: string | null;
  release: string | null;
  created_at: string | null;
  size_bytes: number | null;
  sha256: string | null;
  path: string;
  verification: { status: string; verified_at: string; error?: string } | null;
  /** A partial backup's exclusions (patterns and what they matched, as in its metadata); null: a full backup. */
  partial: PartialInfo | null;
  /** --offsite only: how the copy in the bucket is encrypted (size_bytes and sha256 are then the stored bytes'). */
  encryption?: { algorithm: string; recipients: string[] } | null;
}

export function listed(b: StoredBackup): ListedBackup {
  const m = b.meta;
  return {
    id: m.id,
    state: 'complete',
    project: m.project,
    environment: m.environment,
    database: m.database,
    type: m.type,
    release: m.release,
    created_at: m.created_at,
    size_bytes: m.size_bytes,
    sha256: m.sha256,
    path: b.path,
    verification: m.verification ? { status: m.verification.status, verified_at: m.verification.verified_at, ...(m.verification.error ? { error: m.verification.error } : {}) } : null,
    partial: partialOf(m),
  };
}

/** A damaged backup as listed: what its metadata says when it could be read (size_bytes: the recorded size). */
export function listedDamaged(d: DamagedBackup, project: string, environment: string): ListedBackup {
  if (d.meta) return { ...listed({ meta: d.meta, path: d.path, metaPath: '', key: d.key, metaKey: d.metaKey }), state: 'damaged', problem: d.problem };
  return { id: d.id, state: 'damaged', problem: d.problem, project, environment, database: null, type: null, release: null, created_at: null, size_bytes: null, sha256: null, path: d.path, verification: null, partial: null };
}

/** The creation time to order by: the metadata's, else the one the id names (db_YYYYMMDD_HHMMSSZ). */
const createdAt = (b: ListedBackup) => b.created_at ?? b.id.replace(/^db_(\d{4})(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)Z.*$/, '$1-$2-$3T$4:$5:$6Z');

/**
 * --offsite: the copies in each target's bucket, read from the bucket alone (lib/offsite/catalog.ts);
 * path is the object's s3:// location; what is not a complete copy is listed as damaged with its
 * problem (offsite prune removes day-old objects without metadata). A target named on the command
 * line must have offsite configured.
 */
async function offsiteListed(ctx: Context, targets: Target[], named: boolean): Promise<{ all: ListedBackup[]; clusters: BucketCluster[] }> {
  const found = await offsiteBackups(targets, ctx.env, named, ctx.clock());
  const clusters = await bucketCatalog(ctx, targets, (t) => clusterOf(ctx.config, t));
  return { all: [...clusters.flatMap((c) => c.bases.map((b) => listedBase(c, b))), ...dumpsListed(found)], clusters };
}

/**
 * --offsite: a base backup of a PITR target's cluster in its bucket (type `base`, database null,
 * created_at its finished_at), with `container` and `wal`: the WAL there it can replay, from its
 * start segment to the last before a gap (null: none of it is there).
 */
function listedBase(c: BucketCluster, b: BucketBase): ListedBackup & { container: string; wal: BucketBase['wal'] } {
  const m = b.meta;
  const v = m.verification;
  return {
    id: m.id,
    state: 'complete',
    project: c.target.project,
    environment: c.target.environment,
    database: null,
    type: 'base',
    release: null,
    created_at: m.finished_at,
    size_bytes: m.size_bytes,
    sha256: m.sha256,
    path: b.path,
    verification: v ? { status: v.status, verified_at: v.verified_at, ...(v.error ? { error: v.error } : {}) } : null,
    partial: null,
    encryption: m.encryption ? { algorithm: m.encryption.algorithm, recipients: m.encryption.recipients } : null,
    container: c.container,
    wal: b.wal,
  };
}

/** The WAL a bucket holds of a cluster, and what is wrong there, as lines under the table. */
function clusterLines(c: BucketCluster): string[] {
  const w = c.wal;
  const lines = [
    `cluster ${c.container} in ${c.location}/_clusters/${c.container}/: ${c.bases.length} base backup(s); WAL ${w ? `${w.first} … ${w.last} (${w.segments} segment(s), ${w.history} history file(s)${w.newest_archived_at ? `, newest archived ${w.newest_archived_at}` : ''})` : 'none'}`,
  ];
  if (w?.missing.length) lines.push(`  WAL gap: ${w.missing.slice(0, 5).join(', ')}${w.missing.length > 5 ? ` and ${w.missing.length - 5} more` : ''} missing (recovery stops before it)`);
  for (const b of c.bases) if (!b.wal) lines.push(`  ${b.meta.id}: the segment it starts from is not in the bucket: not restorable from there`);
  for (const p of c.problems) lines.push(`  damaged: ${p}`);
  return lines;
}

function dumpsListed(found: Awaited<ReturnType<typeof offsiteBackups>>): ListedBackup[] {
  return found.flatMap((r) => [
    ...r.backups.map((b) => ({ ...listed(b), encryption: b.meta.encryption ? { algorithm: b.meta.encryption.algorithm, recipients: b.meta.encryption.recipients } : null })),
    // Objects without their metadata (a day old: an interrupted upload's), or metadata that does not match: incomplete, never a copy.
    ...r.damaged.map((d) => listedDamaged(d, r.target.project, r.target.environment)),
  ]);
}

export async function runList(ctx: Context, o: { project?: string; environment?: string; json?: boolean; offsite?: boolean }): Promise<ListedBackup[]> {
  const targets = selectTargets(ctx.config, o.project, o.environment);
  const now = ctx.clock();
  const surveys = o.offsite ? [] : await Promise.all(targets.map(async (t) => ({ t, s: await ctx.repo.survey(t.project, t.environment, now) })));
  const bucket = o.offsite ? await offsiteListed(ctx, targets, !!o.project) : null;
  const all = bucket ? bucket.all : surveys.flatMap(({ t, s }) => [...s.complete.map(listed), ...s.damaged.map((d) => listedDamaged(d, t.project, t.environment))]);
  const keys = new Map(all.map((b) => [b, { id: b.id, created_at: createdAt(b) }])); // each computed once, not per comparison
  all.sort((a, b) => newestFirst(keys.get(a)!, keys.get(b)!));
  if (o.json) {
    ctx.out(JSON.stringify(all, null, 2));
    return all;
  }
  const below = (bucket?.clusters ?? []).flatMap(clusterLines);
  if (!all.length) {
    ctx.out('no backups');
    for (const l of below) ctx.out(l);
    return all;
  }
  // The STATE column appears when something is damaged (a listing of complete backups reads as it always has).
  const anyDamaged = all.some((b) => b.state === 'damaged');
  // Likewise PARTIAL, when a backup was taken with exclusions (show <id> tells which).
  const anyPartial = all.some((b) => b.partial);
  const rows = all.map((b) => [
    `${b.project}/${b.environment}`,
    b.id,
    ...(anyDamaged ? [b.state === 'complete' ? 'complete' : 'DAMAGED'] : []),
    b.type ?? '-',
    ...(anyPartial ? [b.partial ? 'partial' : '-'] : []),
    b.created_at ? b.created_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-',
    b.size_bytes === null ? '-' : humanSize(b.size_bytes),
    b.verification ? `${b.verification.status} ${b.verification.verified_at.slice(0, 10)}` : 'unverified',
    b.path,
  ]);
  for (const l of renderTable(['TARGET', 'ID', ...(anyDamaged ? ['STATE'] : []), 'TYPE', ...(anyPartial ? ['PARTIAL'] : []), 'CREATED (UTC)', 'SIZE', 'VERIFIED', 'PATH'], rows)) ctx.out(l);
  const damaged = all.filter((b) => b.state === 'damaged');
  if (damaged.length) ctx.out(`${damaged.length} damaged backup(s), never restored (prune --remove-damaged <id> removes one):\n  ${damaged.map((b) => `${b.project}/${b.environment} ${b.id}: ${b.problem}`).join('\n  ')}`);
  for (const l of below) ctx.out(l);
  return all;
}
