/**
 * One local backup's offsite copy, as the backup cycle and `offsite sync` make it: upload
 * (lib/offsite/upload.ts), then record the outcome in the LOCAL metadata.
 *
 * Promises:
 * - The local backup stays complete whatever happens here (only its metadata's `offsite` changes,
 *   rewritten whole and atomically).
 * - A failed upload (unreachable endpoint, refused credentials, missing bucket, a damaged local
 *   dump, …) never throws: it is recorded as `{status: 'pending', error}` and logged as a
 *   warning, and returned; the bounded timeouts and attempts of the S3 client bound how long it
 *   takes. An interruption (the signal) is the exception: it throws InterruptedError (exit 130),
 *   the multipart upload aborted, the backup left 'pending'.
 * - A target without offsite configured: nothing is done, null returned.
 */
import type { Target } from '../config/load.js';
import type { Writable } from 'node:stream';
import { InternalError, InterruptedError } from '../core/errors.js';
import { targetLogger } from '../core/log.js';
import type { OffsiteStatus } from '../formats/metadata.js';
import type { Context } from '../runtime/context.js';
import type { StoredBackup } from '../storage/repository.js';
import type { S3Store } from '../storage/s3.js';
import { offsiteKey, offsiteStore } from './bucket.js';
import { recordOffsite, startUpload, uploadBackup, type Uploaded, type UploadOptions, type UploadSession } from './upload.js';

export interface CopyOutcome {
  state: OffsiteStatus;
  durationMs: number;
}

export async function copyOffsite(ctx: Context, target: Target, local: StoredBackup, o: UploadOptions & { bucket?: S3Store } = {}): Promise<CopyOutcome | null> {
  if (!target.offsite) return null;
  const t0 = performance.now();
  return settle(ctx, target, local, t0, async () => {
    const bucket = o.bucket ?? (await offsiteStore(target, {}, ctx.env));
    // On a terminal, a bar: the local dump's bytes read into the upload, of its known size.
    const bar = ctx.progress ? ctx.term.progress(`upload ${local.meta.id}`, { total: local.meta.size_bytes }) : null;
    const up = await uploadBackup(ctx.runner, target, local, ctx.repo.store, bucket, { signal: ctx.signal, onBytes: bar ? (n) => bar.set(n) : undefined, ...o }).finally(() => bar?.stop());
    return { up, location: bucket.location, streamed: false };
  });
}

/**
 * The offsite copy of the backup being taken, uploaded while it is dumped (the backup cycle):
 * tee() opens the upload of the new backup as its id is named and gives the dump's second
 * destination (BackupOptions.tee); finish() ends it once the local backup is complete, with
 * copyOffsite's promises (never throws but for an interruption; a failure is 'offsite pending').
 * The dump never waits on a failed upload: its sink closes and the dump goes on alone.
 */
export interface StreamedCopy {
  tee(id: string): Writable | null;
  finish(local: StoredBackup): Promise<CopyOutcome>;
  /** The local backup failed (or was interrupted): the upload given up, nothing left that looks like a copy. Never rejects. */
  cancel(): Promise<void>;
}

/** A StreamedCopy for `target`; null when it has no offsite. */
export async function streamedCopy(ctx: Context, target: Target): Promise<StreamedCopy | null> {
  if (!target.offsite) return null;
  let bucket: S3Store | null = null;
  let unreachable: unknown;
  try {
    bucket = await offsiteStore(target, {}, ctx.env);
  } catch (e) {
    unreachable = e; // recorded as pending by finish()
  }
  let session: UploadSession | null = null;
  let t0 = performance.now();
  return {
    tee(id) {
      if (!bucket) return null;
      t0 = performance.now();
      session = startUpload(ctx.runner, target, id, bucket, { signal: ctx.signal });
      return session.sink;
    },
    finish(local) {
      return settle(ctx, target, local, t0, async () => {
        if (!bucket) throw unreachable;
        if (!session) throw new InternalError(`the offsite upload of ${local.meta.id} was never opened`);
        return { up: await session.finish(local, ctx.repo.store), location: bucket.location, streamed: true };
      }) as Promise<CopyOutcome>;
    },
    async cancel() {
      await session?.cancel();
    },
  };
}

/** Run one upload and record its outcome in the local metadata (see the header's promises). */
async function settle(ctx: Context, target: Target, local: StoredBackup, t0: number, upload: () => Promise<{ up: Uploaded; location: string; streamed: boolean }>): Promise<CopyOutcome> {
  const log = targetLogger(ctx.logger, target);
  const key = offsiteKey(target, local.meta.id);
  try {
    const { up, location, streamed } = await upload();
    const durationMs = Math.round(performance.now() - t0);
    const state = await recordOffsite(ctx.repo, local, { status: 'uploaded', key, uploaded_at: ctx.clock().toISOString() });
    log.info({ id: local.meta.id, key: `${location}/${up.key}`, bytes: up.stored.size_bytes, encrypted: !!up.stored.encryption, verified_by: up.verifiedBy, streamed, duration_ms: durationMs }, 'offsite copy uploaded');
    return { state, durationMs };
  } catch (e) {
    if (e instanceof InterruptedError || ctx.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError(String(ctx.signal?.reason ?? 'SIGINT'));
    const error = (e as Error)?.message ?? String(e);
    const state = await recordOffsite(ctx.repo, local, { status: 'pending', key, error });
    log.warn({ id: local.meta.id, err: error }, 'offsite upload failed; the local backup is complete, the target is offsite pending (offsite sync catches up)');
    return { state, durationMs: Math.round(performance.now() - t0) };
  }
}
