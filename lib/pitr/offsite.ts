/**
 * A cluster's point-in-time recovery files offsite: base backups and WAL go to the bucket like
 * dumps, under the same keys as at backup_root (`_clusters/<container>/base/…`, `wal/…`; `.age`
 * after the object's name when it is encrypted, its record or metadata that key + `.json`), are
 * kept there by the PITR retention rules, and a tenant is recovered to a point in time from the
 * bucket alone.
 *
 *   syncCluster() (after `basebackup`, after each WAL intake of `pitr archive` and
 *   `scheduled-backup`, and `offsite sync`), per destination (the distinct buckets of the
 *   cluster's targets):
 *     each local base backup not yet uploaded (its metadata without `offsite`, or 'pending') →
 *     streamed through age to the recipients (when configured) into the bucket, the plaintext's
 *     sha256 and size against the local metadata, the stored bytes confirmed (ETag or read back)
 *     → its metadata object, LAST → the local metadata marked 'uploaded' (a failure: 'pending'
 *     with the error; the local base backup stays as it was)
 *     → each local WAL file whose record the bucket lacks and that a base backup in the bucket
 *     needs (all, when it holds none; history files always), in name order: object, then record
 *   pruneBucketCluster(): planCluster() of lib/pitr/retention.ts over the bucket's copies, the
 *     removals through lib/offsite/prune.ts's removeUnlessLocked (object lock, refused deletes);
 *     a base backup a lock keeps keeps the WAL it needs
 *   bucketCatalog(): what the bucket holds, for list --offsite
 *   planFromBucket() → withBucketRecovery(): restore --to --from-offsite: lib/pitr/recover.ts's
 *     own planning over the bucket's records; the base backup and WAL the plan needs fetched,
 *     checked and decrypted into a private directory (0700) under backup_root; then recover.ts's
 *     recovery over that directory; the directory removed always, also on failure and SIGINT
 *
 * Promises: sync never throws for an upload's failure (it is recorded and logged, the next run
 * catches up: idempotent, what the bucket holds is not sent again) but for an interruption. A
 * dry run (a read-only repository) reads the bucket and writes nothing. The identity is a path
 * only, checked before anything is fetched.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Target } from '../config/load.js';
import { EXIT, InterruptedError, PgfleetError, VerificationError } from '../core/errors.js';
import { humanSize } from '../core/text.js';
import { WAL_NAME, type BaseBackupMetadata, type WalRecord } from '../formats/pitr.js';
import type { OffsiteStatus } from '../formats/metadata.js';
import { offsiteStore } from '../offsite/bucket.js';
import { checkIdentity, openRemote } from '../offsite/fetch.js';
import { removeUnlessLocked } from '../offsite/prune.js';
import { uploadObject } from '../offsite/upload.js';
import type { Context } from '../runtime/context.js';
import { isReadOnly, readOnly } from '../storage/dryrun.js';
import { LocalStore } from '../storage/local.js';
import { Repository } from '../storage/repository.js';
import type { S3Store } from '../storage/s3.js';
import { ClusterArchive } from './archive.js';
import { archiveOf, ref, type Cluster } from './cluster.js';
import { planRecovery, RecoveryRefused, withRecoveredDump, type RecoveryPlan } from './recover.js';
import { planCluster, planWal, type ClusterPlan } from './retention.js';
import { findGaps, segmentName, segmentNumber, segmentOfLsn } from './segments.js';

const JSON_EXT = '.json';
const DEFAULT_SEGMENT = 16 << 20;

/** The distinct offsite buckets of a cluster's targets (url and endpoint), each with the first target naming it (its credentials and recipients). */
export function destinations(c: Cluster): Target[] {
  const seen = new Map<string, Target>();
  for (const t of c.targets) if (t.offsite && !seen.has(`${t.offsite.url}|${t.offsite.endpoint ?? ''}`)) seen.set(`${t.offsite.url}|${t.offsite.endpoint ?? ''}`, t);
  return [...seen.values()];
}

type Uploaded = { sha256: string; bytes: number };

/** A local WAL record as its copy in the bucket says it (pure): `stored` the uploaded object's, `encryption` when encrypted. */
export function bucketRecord(r: WalRecord, up: Uploaded, recipients?: readonly string[]): WalRecord {
  const { encryption: _none, ...rest } = r;
  const enc = !!recipients?.length;
  return { ...rest, stored: { ...r.stored, file: r.stored.file + (enc ? '.age' : ''), size_bytes: up.bytes, sha256: up.sha256 }, ...(enc ? { encryption: { algorithm: 'age' as const, recipients: [...recipients!], plaintext_sha256: r.stored.sha256, plaintext_size_bytes: r.stored.size_bytes } } : {}) };
}

/** A copy's WAL record as the local one it came from (pure; the inverse of bucketRecord). */
export function localRecord(r: WalRecord): WalRecord {
  if (!r.encryption) return r;
  const { encryption: e, ...rest } = r;
  return { ...rest, stored: { ...r.stored, file: r.stored.file.replace(/\.age$/, ''), size_bytes: e.plaintext_size_bytes, sha256: e.plaintext_sha256 } };
}

/** A local base backup's metadata as its copy in the bucket says it (pure): no local `offsite` state. */
export function bucketBase(m: BaseBackupMetadata, up: Uploaded, recipients?: readonly string[]): BaseBackupMetadata {
  const { offsite: _local, encryption: _none, ...rest } = m;
  const enc = !!recipients?.length;
  return { ...rest, file: m.file + (enc ? '.age' : ''), size_bytes: up.bytes, sha256: up.sha256, ...(enc ? { encryption: { algorithm: 'age' as const, recipients: [...recipients!], plaintext_sha256: m.sha256, plaintext_size_bytes: m.size_bytes } } : {}) };
}

/** A copy's base backup metadata as the local one (pure; the inverse of bucketBase). */
export function localBase(m: BaseBackupMetadata): BaseBackupMetadata {
  if (!m.encryption) return m;
  const { encryption: e, ...rest } = m;
  return { ...rest, file: m.file.replace(/\.age$/, ''), size_bytes: e.plaintext_size_bytes, sha256: e.plaintext_sha256 };
}

/** The WAL file a bucket key's record is of (`<name>.zst[.age].json`), or null. */
export function walNameOfKey(key: string): string | null {
  const base = key.slice(key.lastIndexOf('/') + 1);
  if (!base.endsWith(JSON_EXT) || !base.includes('.zst')) return null;
  return base.slice(0, base.lastIndexOf('.zst'));
}

/**
 * The local WAL a bucket should receive (pure): what it lacks (`have`: the names it holds
 * records of) among what its base backups (`bases`, those it holds and those being sent) need,
 * all of it when it holds none; history files always; in name order.
 */
export function walToSend(local: readonly WalRecord[], have: ReadonlySet<string>, bases: readonly BaseBackupMetadata[]): WalRecord[] {
  const unneeded = new Set(planWal(bases, local).remove.map((r) => r.name));
  return local.filter((r) => !have.has(r.name) && !unneeded.has(r.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
}

export interface ClusterSync {
  container: string;
  location: string;
  dryRun: boolean;
  /** Base backups sent (in a dry run: to send), with the outcome; 'already there': the bucket held it, only marked. */
  bases: { id: string; action: 'upload' | 'already there'; status?: 'uploaded' | 'pending'; error?: string }[];
  /** WAL files sent (in a dry run: to send), in order. */
  wal: string[];
  /** In a dry run: how many WAL files would be sent. */
  walPending: number;
  /** The WAL file whose upload failed (the rest wait for the next run), and why. */
  walFailed?: { name: string; error: string };
  /** The bucket could not be read at all. */
  error?: string;
}

/**
 * See the header. Never throws for an upload's failure; an interruption throws InterruptedError.
 * `bases: false` (the intake's hook, every minute): the WAL only, so a base backup still being
 * uploaded by its own run is not sent again alongside; offsite sync and the next base backup's
 * run catch up a pending one.
 */
export async function syncCluster(ctx: Context, c: Cluster, o: { bases?: boolean } = {}): Promise<ClusterSync[]> {
  const dests = destinations(c);
  if (!dests.length) return [];
  const local = archiveOf(ctx, c);
  const [bases, recs] = await Promise.all([local.baseBackups(), local.walRecords()]);
  const results: ClusterSync[] = [];
  for (const t of dests) results.push(await syncTo(ctx, c, t, o.bases === false ? [] : bases.items, recs.items));
  // The local base backups' state: uploaded once every bucket holds it, else pending with the last error.
  if (!isReadOnly(ctx.repo.store) && o.bases !== false)
    for (const b of bases.items) {
      const outcomes = results.map((r) => (r.error ? (b.offsite?.status === 'uploaded' ? undefined : { status: 'pending' as const, error: r.error }) : r.bases.find((x) => x.id === b.id))).filter((x) => x !== undefined);
      if (!outcomes.length) continue;
      const failed = outcomes.find((x) => x.status !== 'uploaded');
      const key = local.baseStoredKey(bucketBase(b, { sha256: b.sha256, bytes: b.size_bytes }, dests[0].encryption?.ageRecipients));
      await markBase(local, b.id, failed ? { status: 'pending', key, error: failed.error ?? 'not uploaded' } : { status: 'uploaded', key, uploaded_at: ctx.clock().toISOString() });
    }
  return results;
}

/** Rewrite a local base backup's metadata with its offsite state (freshly read: a verification recorded meanwhile is kept). */
async function markBase(local: ClusterArchive, id: string, state: OffsiteStatus): Promise<void> {
  const fresh = (await local.baseBackups()).items.find((b) => b.id === id);
  if (fresh) await local.saveBaseMeta({ ...fresh, offsite: state });
}

async function syncTo(ctx: Context, c: Cluster, t: Target, bases: readonly BaseBackupMetadata[], recs: readonly WalRecord[]): Promise<ClusterSync> {
  const dryRun = isReadOnly(ctx.repo.store);
  const log = ctx.logger.child({ container: c.container, ...ref(c) });
  const recipients = t.encryption?.ageRecipients;
  const local = archiveOf(ctx, c);
  let s3: S3Store | undefined;
  const result: ClusterSync = { container: c.container, location: t.offsite!.url, dryRun, bases: [], wal: [], walPending: 0 };
  try {
    s3 = await offsiteStore(t, {}, ctx.env);
    result.location = s3.location;
    const bucket = new ClusterArchive(dryRun ? readOnly(s3) : s3, c.container);
    const there = (await bucket.baseBackups()).items;
    const keys = await bucket.store.list(bucket.walPrefix);
    const have = new Set(keys.map((k) => walNameOfKey(k.key)).filter((n): n is string => n !== null));
    const sending: BaseBackupMetadata[] = [];
    for (const b of bases) {
      const copy = there.find((x) => x.id === b.id);
      if (copy && localBase(copy).sha256 === b.sha256) {
        if (b.offsite?.status !== 'uploaded') result.bases.push({ id: b.id, action: 'already there', status: 'uploaded' });
        continue;
      }
      if (b.offsite?.status === 'uploaded') continue; // sent before, and since removed by the bucket's retention
      sending.push(b);
      const item: ClusterSync['bases'][number] = { id: b.id, action: 'upload' };
      result.bases.push(item);
      if (dryRun) continue;
      try {
        const meta = bucketBase(b, { sha256: b.sha256, bytes: b.size_bytes }, recipients);
        const up = await uploadObject(ctx.runner, s3, bucket.baseStoredKey(meta), await local.store.load(local.baseStoredKey(b), { signal: ctx.signal }), { recipients, expect: { sha256: b.sha256, bytes: b.size_bytes }, signal: ctx.signal, target: ref(c) });
        await lastly(s3, bucket.baseStoredKey(meta), () => bucket.saveBaseMeta(bucketBase(b, up, recipients)));
        item.status = 'uploaded';
        log.info({ id: b.id, key: `${s3.location}/${bucket.baseStoredKey(meta)}`, bytes: up.bytes, encrypted: !!recipients, verified_by: up.verifiedBy }, 'base backup copied offsite');
      } catch (e) {
        if (e instanceof InterruptedError || ctx.signal?.aborted) throw interrupted(ctx, e);
        item.status = 'pending';
        item.error = (e as Error).message;
        log.warn({ id: b.id, err: item.error }, 'base backup upload failed; the local base backup is complete, offsite pending (offsite sync catches up)');
      }
    }
    const send = walToSend(recs, have, [...there, ...sending]);
    result.walPending = send.length;
    if (dryRun) {
      result.wal = send.map((r) => r.name);
      return result;
    }
    for (const r of send) {
      try {
        const copyKey = bucket.walStoredKey({ stored: { ...r.stored, file: r.stored.file + (recipients?.length ? '.age' : '') } });
        const up = await uploadObject(ctx.runner, s3, copyKey, await local.store.load(local.walStoredKey(r), { signal: ctx.signal }), { recipients, expect: { sha256: r.stored.sha256, bytes: r.stored.size_bytes }, signal: ctx.signal, target: ref(c) });
        await lastly(s3, copyKey, () => bucket.saveWalRecord(bucketRecord(r, up, recipients)));
        result.wal.push(r.name);
      } catch (e) {
        if (e instanceof InterruptedError || ctx.signal?.aborted) throw interrupted(ctx, e);
        result.walFailed = { name: r.name, error: (e as Error).message };
        log.warn({ wal: r.name, err: result.walFailed.error, waiting: send.length - result.wal.length }, 'WAL upload failed; it and the WAL after it are offsite pending (the next intake or offsite sync catches up)');
        break;
      }
    }
    if (result.wal.length) log.info({ files: result.wal.length, first: result.wal[0], last: result.wal.at(-1), location: s3.location, encrypted: !!recipients }, 'WAL copied offsite');
  } catch (e) {
    if (e instanceof InterruptedError || ctx.signal?.aborted) throw interrupted(ctx, e);
    result.error = (e as Error).message;
    log.warn({ location: result.location, err: result.error }, 'offsite copy of the cluster\'s PITR files failed; offsite pending');
  }
  return result;
}

/** Write a copy's record or metadata, LAST; when that fails, its object is removed (best effort): no object without metadata is left. */
async function lastly(s3: S3Store, objectKey: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    await s3.remove(objectKey).catch(() => undefined);
    throw e;
  }
}

const interrupted = (ctx: Context, e: unknown) => (e instanceof InterruptedError ? e : new InterruptedError(String(ctx.signal?.reason ?? 'SIGINT')));

/** syncCluster for every cluster given, never throwing but for an interruption (the hooks after an intake or a base backup). */
export async function syncClusters(ctx: Context, clusters: readonly Cluster[]): Promise<ClusterSync[]> {
  const all: ClusterSync[] = [];
  for (const c of clusters) all.push(...(await syncCluster(ctx, c)));
  return all;
}

/** One line for a cluster's sync (offsite sync, pitr archive). */
export function clusterSyncLine(r: ClusterSync): string {
  if (r.error) return `cluster ${r.container}: offsite FAILED: ${r.error} → ${r.location}`;
  const up = r.bases.filter((b) => b.action === 'upload');
  const failed = up.filter((b) => b.status === 'pending');
  const bases = r.dryRun ? `would upload ${up.length} base backup(s)` : `uploaded ${up.length - failed.length} base backup(s)${failed.length ? `, FAILED ${failed.length} (${failed[0].error})` : ''}`;
  const wal = r.dryRun ? `${r.walPending} WAL file(s)` : `${r.wal.length} WAL file(s)${r.walFailed ? `, FAILED at ${r.walFailed.name} (${r.walFailed.error}; ${r.walPending - r.wal.length} still pending)` : ''}`;
  return `cluster ${r.container}: ${bases} and ${wal}${r.dryRun ? ' (dry run)' : ''} → ${r.location}`;
}

export const clusterSyncFailed = (r: ClusterSync) => !!r.error || !!r.walFailed || r.bases.some((b) => b.status === 'pending');

export interface BucketClusterPrune {
  container: string;
  location: string;
  dryRun: boolean;
  keep: ClusterPlan['keep'];
  /** Removed (in a dry run: would be), and kept by a lock or a refused delete, with the reason. */
  removed: { id: string; reason: string }[];
  locked: { id: string; reason: string }[];
  wal: { removed: number; locked: number; kept: number; why: string; first?: string; last?: string };
  blocked?: string;
}

/** The cluster's PITR retention over its copies in `t`'s bucket; see the header. The caller holds the cluster's lock for a real run. */
export async function pruneBucketCluster(ctx: Context, c: Cluster, t: Target): Promise<BucketClusterPrune> {
  const dryRun = isReadOnly(ctx.repo.store);
  const s3 = await offsiteStore(t, {}, ctx.env);
  const a = new ClusterArchive(dryRun ? readOnly(s3) : s3, c.container);
  const [bases, recs] = await Promise.all([a.baseBackups(), a.walRecords()]);
  const plan = planCluster(bases.items, recs.items, c, ctx.clock(), [...bases.problems, ...recs.problems]);
  const byId = new Map(bases.items.map((b) => [b.id, b]));
  const b = await removeUnlessLocked(s3, a.store, plan.remove.map((r) => ({ ...r, keys: [a.baseStoredKey(byId.get(r.id)!) + JSON_EXT, a.baseStoredKey(byId.get(r.id)!)] })), dryRun);
  // A base backup a lock (or a refused delete) keeps still needs its WAL: the WAL planned again with it kept.
  const kept = new Set([...plan.keep.map((k) => k.id), ...b.locked.map((l) => l.id)]);
  const wal = b.locked.length ? planWal(bases.items.filter((x) => kept.has(x.id)), recs.items) : plan.wal;
  const byName = new Map(recs.items.map((r) => [r.name, r]));
  const w = await removeUnlessLocked(s3, a.store, wal.remove.map((x) => ({ id: x.name, reason: x.reason, keys: [a.walStoredKey(byName.get(x.name)!) + JSON_EXT, a.walStoredKey(byName.get(x.name)!)] })), dryRun);
  const log = ctx.logger.child({ container: c.container, ...ref(c), location: s3.location });
  if (!dryRun) {
    for (const r of b.removed) log.info({ id: r.id, reason: r.reason }, 'offsite base backup removed by retention');
    if (w.removed.length) log.info({ files: w.removed.length, first: w.removed[0].id, last: w.removed.at(-1)!.id }, 'offsite WAL removed by retention');
  }
  return {
    container: c.container,
    location: s3.location,
    dryRun,
    keep: plan.keep,
    removed: b.removed,
    locked: b.locked,
    wal: { removed: w.removed.length, locked: w.locked.length, kept: recs.items.length - w.removed.length, why: wal.why, first: w.removed[0]?.id, last: w.removed.at(-1)?.id },
    ...(plan.blocked ? { blocked: plan.blocked } : {}),
  };
}

/** prune's lines for a cluster's copies in a bucket. */
export function bucketPruneLines(r: BucketClusterPrune): string[] {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = [`  offsite ${r.location} cluster ${r.container}: ${verb} ${r.removed.length} base backup(s) and ${r.wal.removed} WAL file(s), ${r.dryRun ? 'would keep' : 'kept'} ${r.keep.length + r.locked.length} and ${r.wal.kept}${r.locked.length + r.wal.locked ? ` (${r.locked.length + r.wal.locked} under lock)` : ''}`];
  if (r.blocked) lines.push(`    ${r.blocked}`);
  for (const x of r.removed) lines.push(`    ${r.dryRun ? 'remove' : 'removed'}  ${x.id}  ${x.reason}`);
  if (r.wal.removed) lines.push(`    ${r.dryRun ? 'remove' : 'removed'}  WAL ${r.wal.first}${r.wal.removed > 1 ? ` … ${r.wal.last}` : ''} (${r.wal.removed} file(s))`);
  for (const x of r.locked) lines.push(`    keep    ${x.id}  ${x.reason}`);
  if (r.dryRun) {
    for (const k of r.keep) lines.push(`    keep    ${k.id}  ${k.reasons.join('; ')}`);
    lines.push(`    keep    WAL (${r.wal.kept} file(s))  ${r.wal.why}`);
  }
  return lines;
}

/** A base backup in the bucket, with the WAL it can replay there (from its start segment to the last before a gap). */
export interface BucketBase {
  meta: BaseBackupMetadata;
  path: string;
  wal: { first: string; last: string; segments: number } | null;
}

export interface BucketCluster {
  target: Target;
  container: string;
  location: string;
  bases: BucketBase[];
  /** The WAL the bucket holds: its first and last segment, how many, history files, gaps; null: none. */
  wal: { first: string; last: string; segments: number; history: number; missing: string[]; newest_archived_at: string | null } | null;
  problems: string[];
}

/**
 * What each selected target's bucket holds of its cluster (read from the bucket alone; one entry
 * per bucket and cluster): base backups whose metadata is valid and whose object has the recorded
 * size, and the WAL range from the records' keys (one record read: the newest's). Read-only.
 */
export async function bucketCatalog(ctx: Context, targets: readonly Target[], clusterOfTarget: (t: Target) => Cluster): Promise<BucketCluster[]> {
  const seen = new Set<string>();
  const out: BucketCluster[] = [];
  for (const t of targets) {
    if (!t.pitr || !t.offsite || !t.container) continue;
    const c = clusterOfTarget(t);
    const s3 = await offsiteStore(t, {}, ctx.env);
    if (seen.has(`${s3.location}|${c.container}`)) continue;
    seen.add(`${s3.location}|${c.container}`);
    const a = new ClusterArchive(readOnly(s3), c.container);
    const bases = await a.baseBackups();
    const recordKeys = (await a.store.list(a.walPrefix)).map((o) => o.key).filter((k) => k.endsWith(JSON_EXT));
    const names = recordKeys.map(walNameOfKey).filter((n): n is string => n !== null);
    const segs = names.filter((n) => WAL_NAME.segment.test(n)).sort();
    let size = DEFAULT_SEGMENT;
    let newestAt: string | null = null;
    const problems = [...bases.problems];
    if (segs.length) {
      const key = recordKeys.find((k) => walNameOfKey(k) === segs.at(-1));
      try {
        const r = JSON.parse((await a.store.read(key!)).toString('utf8')) as WalRecord;
        size = r.size_bytes;
        newestAt = r.archived_at;
      } catch (e) {
        problems.push(`${key}: unreadable (${(e as Error).message})`);
      }
    }
    const have = new Set(segs);
    const runFrom = (b: BaseBackupMetadata): BucketBase['wal'] => {
      const first = segmentOfLsn(b.start_lsn, b.timeline, size);
      let n = 0;
      while (have.has(segmentName(b.timeline, segmentNumber(first, size) + n, size))) n++;
      return n ? { first, last: segmentName(b.timeline, segmentNumber(first, size) + n - 1, size), segments: n } : null;
    };
    out.push({
      target: t,
      container: c.container,
      location: s3.location,
      bases: bases.items.sort((x, y) => (x.finished_at < y.finished_at ? 1 : -1)).map((m) => ({ meta: m, path: `${s3.location}/${a.baseStoredKey(m)}`, wal: runFrom(m) })),
      wal: segs.length ? { first: segs[0], last: segs.at(-1)!, segments: segs.length, history: names.filter((n) => WAL_NAME.history.test(n)).length, missing: findGaps(segs, size), newest_archived_at: newestAt } : null,
      problems,
    });
  }
  return out;
}

/** What restore --to --from-offsite will fetch and recover, planned from the bucket alone. */
export interface BucketPlan {
  /** recover.ts's plan, its base backup and WAL as the local files they were (plaintext names, sizes, sha256). */
  plan: RecoveryPlan;
  /** The copies in the bucket of the plan's base backup and WAL files, by id or name. */
  copies: { base: BaseBackupMetadata; wal: Map<string, WalRecord> };
  cluster: Cluster;
  location: string;
  s3: S3Store;
  /** The plaintext bytes fetched onto this host, and the free space where they go. */
  bytes: number;
  available: number;
  identityFile: string | null;
}

/** A private directory (0700) under backup_root for `use`, removed always, also on failure and an abort. */
async function withScratch<T>(ctx: Context, use: (store: LocalStore, dir: string) => Promise<T>): Promise<T> {
  const root = ctx.config.platform.backupRoot;
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const dir = await fs.mkdtemp(path.join(root, '.pitr-offsite-'));
  try {
    await fs.chmod(dir, 0o700);
    return await use(new LocalStore(dir), dir);
  } catch (e) {
    throw ctx.signal?.aborted ? interrupted(ctx, e) : e;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * One copy fetched from the bucket into `store` under its local key: the stored bytes checked
 * against the copy's record (size, sha256), decrypted when encrypted, the result against the
 * local file's (`plain`); a difference is a VerificationError (exit 4), nothing used.
 */
async function fetchCopy(ctx: Context, bp: Pick<BucketPlan, 's3' | 'location' | 'identityFile' | 'cluster'>, key: string, stored: { size_bytes: number; sha256: string; encryption?: BaseBackupMetadata['encryption'] }, plain: { size_bytes: number; sha256: string }, store: LocalStore, localKey: string): Promise<void> {
  const read = openRemote(ctx.runner, bp.s3, key, `${bp.location}/${key}`, stored, bp.identityFile, ctx.signal, ref(bp.cluster));
  try {
    await store.save(localKey, read.stream, { signal: ctx.signal });
  } finally {
    read.destroy();
  }
  const got = await read.digest();
  if (got.sha256 !== plain.sha256 || got.bytes !== plain.size_bytes)
    throw new VerificationError(`${bp.location}/${key}: decrypted it is ${got.bytes} bytes with sha256 ${got.sha256}, the copy's record says ${plain.size_bytes} and ${plain.sha256}: the copy in the bucket is damaged; nothing restored`, ref(bp.cluster));
}

/**
 * The recovery planned from the bucket alone, by lib/pitr/recover.ts's own planRecovery (the
 * window, the point, a gap, the timelines, the base backup and its WAL) over a scratch archive
 * that mirrors the bucket's: every WAL record and base backup metadata as the local one it came
 * from, the timeline history files fetched (small), and each base backup's tar a sparse
 * placeholder of its recorded size (planning reads no tar or segment; nothing but the
 * placeholder's size is ever read of it, and the scratch directory is removed when planning
 * ends). The identity is checked first (it must read the copies), and this host's space for the
 * files to fetch. Refused (exit 2) as recover.ts refuses. Nothing of the repository is touched.
 */
export async function planFromBucket(ctx: Context, t: Target, c: Cluster, to: Date | 'latest'): Promise<BucketPlan> {
  const s3 = await offsiteStore(t, {}, ctx.env);
  const bucket = new ClusterArchive(readOnly(s3), c.container);
  const [bases, recs] = await Promise.all([bucket.baseBackups(), bucket.walRecords()]);
  const encrypted = [...bases.items, ...recs.items].find((x) => x.encryption);
  const identityFile = encrypted ? await checkIdentity(ctx.runner, { id: 'id' in encrypted ? encrypted.id : encrypted.name, encryption: encrypted.encryption! }, ctx.env, ref(c)) : null;
  const copies = { bases: new Map(bases.items.map((b) => [b.id, b])), wal: new Map(recs.items.map((r) => [r.name, r])) };
  const plan = await withScratch(ctx, async (store, dir) => {
    const cluster: Cluster = { ...c, archiveDir: path.join(dir, 'no-landing') };
    const scratch = new ClusterArchive(store, c.container);
    const probe = { s3, location: s3.location, identityFile, cluster };
    for (const b of bases.items) {
      const l = localBase(b);
      const file = store.pathOf(scratch.baseKey(l.id));
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const fh = await fs.open(file, 'w', 0o600);
      await fh.truncate(l.size_bytes).finally(() => fh.close());
      await scratch.saveBaseMeta(l);
    }
    for (const r of recs.items) {
      const l = localRecord(r);
      if (r.kind === 'history') await fetchCopy(ctx, probe, bucket.walStoredKey(r), { ...r.stored, encryption: r.encryption }, l.stored, store, scratch.walKey(l.name));
      await scratch.saveWalRecord(l);
    }
    return planRecovery({ ...ctx, repo: new Repository(readOnly(store)) }, cluster, to);
  });
  const bytes = plan.base.size_bytes + plan.wal.reduce((n, r) => n + r.stored.size_bytes, 0);
  const root = ctx.config.platform.backupRoot;
  let at = root;
  while (!(await fs.stat(at).catch(() => null))) at = path.dirname(at);
  const st = await fs.statfs(at);
  const available = Number(st.bavail) * Number(st.bsize);
  if (available < bytes + (64 << 20)) throw new RecoveryRefused(`${root}: ${humanSize(available)} free; fetching base backup ${plan.base.id} and ${plan.wal.length} WAL file(s) from the bucket needs ${humanSize(bytes)} and 64 MiB of room: free space there first; nothing was fetched`, c);
  return { plan, copies: { base: copies.bases.get(plan.base.id)!, wal: copies.wal }, cluster: c, location: s3.location, s3, bytes, available, identityFile };
}

/**
 * The plan's base backup and WAL fetched from the bucket (fetchCopy: each checked, decrypted)
 * into a private directory under backup_root (`.pitr-offsite-<random>`, 0700, files 0600), laid
 * out as the local archive; then withRecoveredDump (lib/pitr/recover.ts) over it, `use` called
 * with the recovered dump's path. The directory is removed always, also on failure and an abort.
 */
export async function withBucketRecovery<T>(ctx: Context, database: string, bp: BucketPlan, use: (file: string) => Promise<T>): Promise<T> {
  return withScratch(ctx, async (store, dir) => {
    const cluster: Cluster = { ...bp.cluster, archiveDir: path.join(dir, 'no-landing') };
    const scratch = new ClusterArchive(store, cluster.container);
    const bucket = new ClusterArchive(bp.s3, cluster.container);
    await fetchCopy(ctx, bp, bucket.baseStoredKey(bp.copies.base), bp.copies.base, bp.plan.base, store, scratch.baseKey(bp.plan.base.id));
    await scratch.saveBaseMeta(bp.plan.base);
    for (const l of bp.plan.wal) {
      const r = bp.copies.wal.get(l.name)!;
      await fetchCopy(ctx, bp, bucket.walStoredKey(r), { ...r.stored, encryption: r.encryption }, l.stored, store, scratch.walKey(l.name));
      await scratch.saveWalRecord(l);
    }
    ctx.logger.info({ container: cluster.container, base: bp.plan.base.id, wal: bp.plan.wal.length, bytes: bp.bytes, location: bp.location }, 'base backup and WAL fetched from the bucket');
    return withRecoveredDump({ ...ctx, repo: new Repository(store) }, cluster, { plan: bp.plan, database }, (file) => use(file));
  });
}

/** A target without offsite asked for --from-offsite. */
export function noOffsite(t: Target): PgfleetError {
  return new PgfleetError(`${t.project}/${t.environment}: no offsite configured (platform.offsite or database.offsite): --from-offsite has no bucket to read`, EXIT.USAGE, { project: t.project, environment: t.environment });
}
