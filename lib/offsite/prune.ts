/**
 * Offsite retention for one target: the pure plan of lib/fleet/retention.ts over the complete
 * copies in the bucket (read from the bucket alone) with offsite's own tiers (offsite.keep_*; the
 * target's retention_days and pre_migration_days), the copies pinned by the bucket's deployment
 * manifests kept, then the removals it decides, each only once its object lock has expired.
 *
 *   the bucket's copies → plan → per copy to remove: its lock (dump and metadata) → locked: kept,
 *   with the reason ("under object lock COMPLIANCE until …") → else metadata first, then the dump
 *
 * Promises: only complete copies are counted or removed; the newest and the newest verified never
 * are; a copy goes metadata first (it stops being a copy), so a half-removed one is never taken
 * for whole. A copy whose lock has not expired, or whose delete the bucket refuses (a lock this
 * key may not read, a put-but-not-delete policy), is kept and said why, never an error. A dry run
 * (a readOnly() bucket) plans and reads the locks, and writes nothing. Reading the bucket failing
 * throws (the caller's rule for a retention failure applies).
 * Then the sweep of what interrupted uploads left: an object without its metadata object, last
 * written more than a day ago, is removed (kept and said why under a lock or a refused delete),
 * and a multipart upload unfinished for more than a day is aborted; nothing younger than a day
 * (a live upload's) is touched, nor any object that has metadata.
 */
import type { Target } from '../config/load.js';
import { targetLogger } from '../core/log.js';
import { planRetention, type RetentionPlan } from '../fleet/retention.js';
import type { Context } from '../runtime/context.js';
import { isReadOnly, readOnly } from '../storage/dryrun.js';
import { pinnedByDeployments } from '../storage/manifests.js';
import { Repository, type DamagedBackup, type StoredBackup } from '../storage/repository.js';
import type { S3Store } from '../storage/s3.js';
import type { Store } from '../storage/store.js';
import { offsiteStore } from './bucket.js';

export interface OffsitePrune {
  project: string;
  environment: string;
  location: string;
  dryRun: boolean;
  /** Newest first, with every rule that keeps each. */
  keep: RetentionPlan['keep'];
  /** Removed (or, in a dry run, that would be), with the reason. */
  remove: RetentionPlan['remove'];
  /** Planned for removal but kept: under object lock, or the bucket refused the delete. */
  locked: { id: string; reason: string }[];
  /** Objects without their metadata for more than a day (never a copy): removed (in a dry run, would be), or kept with the reason (a lock, a refused delete). */
  orphans: { key: string; removed: boolean; reason: string }[];
  /** Multipart uploads unfinished for more than a day: aborted (in a dry run, would be). */
  abandoned: string[];
}

/** The object lock on `key` that has not expired yet, as a reason; null when none (or it cannot be read). */
async function lockOf(bucket: S3Store, key: string, now: Date): Promise<string | null> {
  const { lock } = await bucket.head(key);
  if (lock.legalHold) return 'under an object lock legal hold';
  return lock.retainUntil && lock.retainUntil > now ? `under object lock ${lock.mode ?? ''} until ${lock.retainUntil.toISOString()}`.replace('  ', ' ') : null;
}

export async function pruneOffsite(ctx: Context, target: Target, o: { bucket?: S3Store } = {}): Promise<OffsitePrune> {
  const settings = target.offsite!;
  const log = targetLogger(ctx.logger, target);
  const now = ctx.clock();
  const dryRun = isReadOnly(ctx.repo.store);
  const s3 = o.bucket ?? (await offsiteStore(target, {}, ctx.env));
  const repo = new Repository(dryRun ? readOnly(s3) : s3);
  const { complete: copies, damaged } = await repo.survey(target.project, target.environment, now);
  const pinned = await pinnedByDeployments(repo, target.project, target.environment);
  const policy = { ...target.backup, keep_daily: settings.keep.daily, keep_weekly: settings.keep.weekly, keep_monthly: settings.keep.monthly };
  const plan = planRetention(
    copies.map((c) => c.meta),
    policy,
    now,
    pinned,
  );
  const result: OffsitePrune = { project: target.project, environment: target.environment, location: s3.location, dryRun, keep: plan.keep, remove: [], locked: [], orphans: [], abandoned: [] };
  const byId = new Map<string, StoredBackup>(copies.map((c) => [c.meta.id, c]));
  const done = await removeUnlessLocked(s3, repo.store, plan.remove.map((r) => ({ ...r, keys: [byId.get(r.id)!.metaKey, byId.get(r.id)!.key] })), dryRun);
  result.remove.push(...done.removed);
  result.locked.push(...done.locked);
  for (const r of done.removed) if (!dryRun) log.info({ id: r.id, reason: r.reason, location: s3.location }, 'offsite copy removed by retention');
  for (const r of done.refused) log.warn({ id: r.id, err: r.error }, 'offsite copy kept: the bucket refused its delete');
  await sweep(s3, repo.store, damaged, now, dryRun, result, log);
  return result;
}

/**
 * Objects retention decided to remove, each given as its keys in removal order (its metadata or
 * record first: it stops being a copy, so a half-removed one is never taken for whole): each kept
 * instead, with the reason, when a key is under an object lock that has not expired (read
 * against this host's time, not ctx.clock(): the service enforces it by its own) or the bucket
 * refuses the delete. A dry run (`dryRun`, `store` read-only) reads the locks and removes nothing.
 * Shared by the dumps' copies and the PITR files' (lib/pitr/offsite.ts).
 */
export async function removeUnlessLocked(s3: S3Store, store: Store, items: readonly { id: string; reason: string; keys: readonly string[] }[], dryRun: boolean): Promise<{ removed: { id: string; reason: string }[]; locked: { id: string; reason: string }[]; refused: { id: string; error: string }[] }> {
  const out = { removed: [] as { id: string; reason: string }[], locked: [] as { id: string; reason: string }[], refused: [] as { id: string; error: string }[] };
  for (const it of items) {
    let lock: string | null = null;
    for (const k of it.keys) if ((lock = await lockOf(s3, k, new Date()))) break;
    if (lock) {
      out.locked.push({ id: it.id, reason: `${it.reason}, but kept: ${lock}` });
      continue;
    }
    try {
      if (!dryRun) for (const k of it.keys) await store.remove(k);
      out.removed.push({ id: it.id, reason: it.reason });
    } catch (e) {
      out.locked.push({ id: it.id, reason: `${it.reason}, but kept: the bucket refused the delete (${(e as Error).message})` });
      out.refused.push({ id: it.id, error: (e as Error).message });
    }
  }
  return out;
}

/** A day: no live upload is older (an upload runs under the target's lock, for minutes). */
const ORPHAN_GRACE_MS = 86_400_000;

/**
 * What interrupted uploads left: objects without metadata (survey()'s, a day old by `now`), each
 * removed unless its lock holds it, and multipart uploads unfinished for a day, aborted. Never a
 * copy (an object with its metadata) and never anything younger than a day.
 */
async function sweep(s3: S3Store, store: Store, damaged: DamagedBackup[], now: Date, dryRun: boolean, result: OffsitePrune, log: ReturnType<typeof targetLogger>): Promise<void> {
  for (const d of damaged) {
    if (d.meta || !(await s3.stat(d.metaKey).then((m) => m === null))) continue; // only objects with no metadata at all
    const info = await s3.stat(d.key);
    if (!info || now.getTime() - info.mtime.getTime() < ORPHAN_GRACE_MS) continue;
    const lock = await lockOf(s3, d.key, new Date());
    if (lock) {
      result.orphans.push({ key: d.key, removed: false, reason: `${d.problem}, kept: ${lock}` });
      log.info({ key: `${s3.location}/${d.key}`, reason: lock }, 'offsite object without metadata kept: under its lock');
      continue;
    }
    if (dryRun) {
      result.orphans.push({ key: d.key, removed: true, reason: d.problem });
      continue;
    }
    try {
      await store.remove(d.key);
      result.orphans.push({ key: d.key, removed: true, reason: d.problem });
      log.info({ key: `${s3.location}/${d.key}`, reason: d.problem }, 'offsite object without metadata removed');
    } catch (e) {
      result.orphans.push({ key: d.key, removed: false, reason: `${d.problem}, kept: the bucket refused the delete (${(e as Error).message})` });
    }
  }
  const abandoned = await store.abandoned(`${result.project}/${result.environment}/`, new Date(now.getTime() - ORPHAN_GRACE_MS));
  for (const a of abandoned) {
    if (!dryRun) {
      await store.removeAbandoned(a);
      log.info({ key: `${s3.location}/${a.key}`, started_at: a.startedAt.toISOString() }, 'unfinished offsite upload aborted');
    }
    result.abandoned.push(a.key);
  }
}
