/**
 * Copying one complete local backup to its target's offsite bucket (ARCHITECTURE "Offsite copies
 * and encryption"), as a runbook:
 *
 *   read the local dump → sha256 of the plaintext on the way → age to the recipients (when the
 *   target has them) → sha256, size and per-part MD5 of the stored bytes → S3 multipart upload
 *   → the plaintext must be the local backup's (sha256, size) → the service must hold what was
 *   sent (its ETag against the MD5s of what was sent; else the object read back and hashed)
 *   → the copy's metadata object, LAST → the deployment manifests the bucket lacks
 *
 * Promises:
 * - Streamed: no plaintext or ciphertext temp file, memory flat (S3Store's parts).
 * - The copy is complete only once its metadata object is written, and that happens only after
 *   the object's bytes are confirmed; any failure before removes the dump object (best effort:
 *   under object lock it stays, an object without metadata, which no reader takes for a copy).
 *   A failed or aborted upload aborts its multipart upload (S3Store.save).
 * - Idempotent: a copy written again replaces the same keys with the same content.
 * - The local backup is only read, never changed here (recordOffsite() writes its state).
 * - An aborted signal rejects with InterruptedError (exit 130), the multipart upload aborted.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { Target } from '../config/load.js';
import { VerificationError } from '../core/errors.js';
import type { BackupMetadata, OffsiteStatus } from '../formats/metadata.js';
import { Age } from '../process/age.js';
import type { Runner } from '../process/runner.js';
import { Repository, type StoredBackup } from '../storage/repository.js';
import type { S3Store } from '../storage/s3.js';
import type { Store } from '../storage/store.js';
import { offsiteKey } from './bucket.js';

export const PART_SIZE = 8 * 1024 * 1024;

export interface UploadOptions {
  signal?: AbortSignal;
  /** How the stored bytes are confirmed: 'etag' (the service's MD5s, read back when they differ) or 'read-back' (always). */
  verify?: 'etag' | 'read-back';
  /** Told the bytes of the local dump read so far, as they are read (a terminal's bar). */
  onBytes?: (n: number) => void;
}

export interface Uploaded {
  key: string;
  metaKey: string;
  /** The copy's metadata, as written to the bucket. */
  stored: BackupMetadata;
  verifiedBy: 'etag' | 'read-back';
}

/**
 * A pass-through that hashes what flows: sha256 and size, and the ETags an S3 service gives those
 * bytes: the MD5 of the whole (a single PutObject) and the MD5 of the `partSize` parts' MD5s with
 * their count (a multipart upload).
 */
function hasher(partSize: number) {
  const sha = createHash('sha256');
  const whole = createHash('md5');
  const parts: Buffer[] = [];
  let md5 = createHash('md5');
  let inPart = 0;
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha.update(chunk);
      whole.update(chunk);
      bytes += chunk.length;
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(partSize - inPart, chunk.length - at);
        md5.update(chunk.subarray(at, at + n));
        inPart += n;
        at += n;
        if (inPart === partSize) {
          parts.push(md5.digest());
          md5 = createHash('md5');
          inPart = 0;
        }
      }
      cb(null, chunk);
    },
  });
  return {
    stream,
    /** Once the stream has ended. */
    result() {
      const all = inPart > 0 ? [...parts, md5.digest()] : parts;
      const multipart = `${createHash('md5').update(Buffer.concat(all)).digest('hex')}-${all.length}`;
      return { sha256: sha.digest('hex'), bytes, etags: [whole.digest('hex'), multipart] };
    },
  };
}

async function sha256Of(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    h.update(c);
    bytes += c.length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/** Whether the bucket holds exactly what was sent under `key`: its size, then its ETag, else its bytes read back. */
async function confirm(bucket: S3Store, key: string, sent: { sha256: string; bytes: number; etags: string[] }, o: UploadOptions): Promise<'etag' | 'read-back'> {
  const head = await bucket.head(key, { signal: o.signal });
  if (head.size !== sent.bytes) throw new VerificationError(`${bucket.location}/${key}: the bucket holds ${head.size} bytes, ${sent.bytes} were sent`);
  if (o.verify !== 'read-back' && sent.etags.includes(head.etag)) return 'etag';
  // An ETag that is not the MD5 of what was sent (server-side KMS encryption, another part size): read it back.
  const back = await sha256Of(await bucket.load(key, { signal: o.signal }));
  if (back.sha256 !== sent.sha256 || back.bytes !== sent.bytes) throw new VerificationError(`${bucket.location}/${key}: the object read back is not what was sent (sha256 ${back.sha256}, ${back.bytes} bytes)`);
  return 'read-back';
}

/** Upload `local` (a complete backup in `localStore`) to `bucket`. See the header for the promises. */
export async function uploadBackup(runner: Runner, target: Target, local: StoredBackup, localStore: Store, bucket: S3Store, o: UploadOptions = {}): Promise<Uploaded> {
  const ref = { project: target.project, environment: target.environment };
  const key = offsiteKey(target, local.meta.id);
  const recipients = target.encryption?.ageRecipients;
  const plain = hasher(PART_SIZE);
  const stored = hasher(PART_SIZE);
  const source = await localStore.load(local.key);
  source.once('error', (e) => plain.stream.destroy(e));
  source.pipe(plain.stream);
  let read = 0;
  if (o.onBytes) source.on('data', (c: Buffer) => o.onBytes!((read += c.length)));
  const bytes = recipients ? new Age(runner).encrypt(plain.stream, recipients, { signal: o.signal, target: ref }) : plain.stream;
  bytes.once('error', (e) => stored.stream.destroy(e));
  bytes.pipe(stored.stream);
  try {
    await bucket.save(key, stored.stream, { signal: o.signal });
  } catch (e) {
    // Stop what feeds the upload: the local read, and age (it would wait on its input forever).
    source.destroy();
    plain.stream.destroy(new Error('the upload ended'));
    throw e;
  }
  try {
    const p = plain.result();
    if (p.sha256 !== local.meta.sha256 || p.bytes !== local.meta.size_bytes)
      throw new VerificationError(`${local.path}: the local dump read for upload is not the backup (sha256 ${p.sha256}, ${p.bytes} bytes; metadata says ${local.meta.sha256}, ${local.meta.size_bytes}); nothing kept offsite`, ref);
    const s = stored.result();
    const verifiedBy = await confirm(bucket, key, s, o);
    const { offsite: _local, ...rest } = local.meta;
    const meta: BackupMetadata = {
      ...rest,
      file: key.slice(key.lastIndexOf('/') + 1),
      size_bytes: s.bytes,
      sha256: s.sha256,
      encryption: recipients ? { algorithm: 'age', recipients: [...recipients], plaintext_sha256: p.sha256, plaintext_size_bytes: p.bytes } : null,
    };
    const repo = new Repository(bucket);
    await repo.saveMetadata(meta);
    const { metaKey } = repo.stored(meta);
    await copyManifests(localStore, bucket, target);
    return { key, metaKey, stored: meta, verifiedBy };
  } catch (e) {
    await bucket.remove(key).catch(() => undefined);
    throw e;
  }
}

/**
 * The target's deployment manifests that the bucket lacks or holds otherwise, copied (small
 * objects, read whole). Idempotent.
 */
export async function copyManifests(localStore: Store, bucket: Store, target: Target): Promise<number> {
  const prefix = `${target.project}/${target.environment}/deployments/`;
  const there = new Map((await bucket.list(prefix)).map((o) => [o.key, o.size]));
  let n = 0;
  for (const o of await localStore.list(prefix)) {
    if (o.key.includes('/', prefix.length) || !o.key.endsWith('.json')) continue;
    const body = await localStore.read(o.key);
    if (there.get(o.key) === body.length && (await bucket.read(o.key)).equals(body)) continue;
    await bucket.save(o.key, body);
    n++;
  }
  return n;
}

/**
 * Write a local backup's offsite state into its local metadata (re-read first, rewritten whole and
 * atomically, so a verification recorded meanwhile is kept). Returns the state.
 */
export async function recordOffsite(repo: Repository, local: StoredBackup, state: OffsiteStatus): Promise<OffsiteStatus> {
  const now = (await repo.find(local.meta.project, local.meta.environment, local.meta.id))?.meta ?? local.meta;
  await repo.saveMetadata({ ...now, offsite: state });
  return state;
}
