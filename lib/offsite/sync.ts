/**
 * Catching one target's offsite copies up (`offsite sync`): every complete local backup that is
 * "offsite pending" (its local metadata says `offsite.status: pending`) gets its copy, and the
 * multipart uploads interrupted runs left under the target's keys are aborted (every upload of a
 * target runs under its lock, which sync holds: an unfinished one is no live run's; a dry run,
 * which takes no lock, lists only those older than a day).
 *
 *   the local backups → the bucket's copies (one listing) → plan: upload / already there
 *   → each upload (lib/offsite/copy.ts) → the day-old unfinished uploads aborted
 *
 * Promises:
 * - Idempotent: a backup whose complete copy is already in the bucket (same plaintext sha256, as
 *   after an upload whose local record failed) is marked uploaded, never uploaded again; a second
 *   run finds nothing to do.
 * - A dry run (ctx over readOnly(), the bucket wrapped in readOnly()) reads the same way and plans
 *   the same, and writes nothing: the wrappers refuse any write as a bug.
 * - A failed upload is recorded (pending, with its error) and reported; the others go on. An
 *   interruption throws (exit 130). The caller holds the target's lock for a real run.
 */
import type { Target } from '../config/load.js';
import type { Context } from '../runtime/context.js';
import { isReadOnly, readOnly } from '../storage/dryrun.js';
import { Repository, type StoredBackup } from '../storage/repository.js';
import type { S3Store } from '../storage/s3.js';
import type { Store } from '../storage/store.js';
import { offsiteKey, offsiteStore } from './bucket.js';
import { copyOffsite } from './copy.js';
import { recordOffsite } from './upload.js';

const ABANDONED_AGE_MS = 86_400_000;

export type SyncAction = 'upload' | 'already there';

export interface SyncItem {
  id: string;
  action: SyncAction;
  /** After a real run: the copy's state ('uploaded', or 'pending' with the error). */
  status?: 'uploaded' | 'pending';
  error?: string;
}

export interface TargetSync {
  project: string;
  environment: string;
  dryRun: boolean;
  location: string;
  items: SyncItem[];
  /** Unfinished multipart uploads of the target: aborted (in a dry run: those older than a day, that would be). */
  abandoned: string[];
}

/** The pending backups of a target and what sync does with each (reads only). */
async function plan(local: Repository, bucket: Repository, target: Target): Promise<{ b: StoredBackup; action: SyncAction }[]> {
  const pending = (await local.list(target.project, target.environment)).filter((b) => b.meta.offsite?.status === 'pending');
  if (!pending.length) return [];
  const there = new Map((await bucket.list(target.project, target.environment)).map((c) => [c.meta.id, c.meta]));
  return pending.reverse().map((b) => {
    const c = there.get(b.meta.id);
    const same = c && (c.encryption ? c.encryption.plaintext_sha256 : c.sha256) === b.meta.sha256 && c.file === offsiteKey(target, b.meta.id).split('/').pop();
    return { b, action: same ? 'already there' : 'upload' };
  });
}

export async function syncTarget(ctx: Context, target: Target, o: { bucket?: S3Store } = {}): Promise<TargetSync> {
  const dryRun = isReadOnly(ctx.repo.store);
  const s3 = o.bucket ?? (await offsiteStore(target, {}, ctx.env));
  const store: Store = dryRun ? readOnly(s3) : s3;
  const steps = await plan(ctx.repo, new Repository(store), target);
  const prefix = `${target.project}/${target.environment}/`;
  const abandoned = await store.abandoned(prefix, dryRun ? new Date(Date.now() - ABANDONED_AGE_MS) : new Date());
  const result: TargetSync = { project: target.project, environment: target.environment, dryRun, location: s3.location, items: steps.map(({ b, action }) => ({ id: b.meta.id, action })), abandoned: abandoned.map((a) => a.key) };
  if (dryRun) return result;
  for (const [i, { b, action }] of steps.entries()) {
    const item = result.items[i]!;
    if (action === 'already there') {
      await recordOffsite(ctx.repo, b, { status: 'uploaded', key: offsiteKey(target, b.meta.id), uploaded_at: ctx.clock().toISOString() });
      item.status = 'uploaded';
      continue;
    }
    const r = (await copyOffsite(ctx, target, b, { bucket: s3 }))!;
    item.status = r.state.status;
    if (r.state.error) item.error = r.state.error;
  }
  for (const a of abandoned) await store.removeAbandoned(a);
  return result;
}
