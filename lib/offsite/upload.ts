/**
 * Copying one complete local backup to its target's offsite bucket (ARCHITECTURE "Offsite copies
 * and encryption"), as a runbook:
 *
 *   the dump as it is taken (startUpload's sink, fed by the backup pipeline) or read back from the
 *   local file (uploadBackup: offsite sync) → sha256 of the plaintext on the way → age to the recipients (when the
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
import { Transform, type Readable, type Writable } from 'node:stream';
import type { Target } from '../config/load.js';
import { VerificationError, type TargetRef } from '../core/errors.js';
import { hashingTap } from '../core/hashing.js';
import type { BackupMetadata, OffsiteStatus } from '../formats/metadata.js';
import { Age } from '../process/age.js';
import type { Runner } from '../process/runner.js';
import { Repository, type StoredBackup } from '../storage/repository.js';
import type { S3Store } from '../storage/s3.js';
import type { Store } from '../storage/store.js';
import { offsiteKey } from './bucket.js';

/** How much of the plaintext an upload holds before its producer waits (memory: at most this, once). */
const SINK_BUFFER = 8 * 1024 * 1024;

export interface UploadOptions {
  signal?: AbortSignal;
  /** How the stored bytes are confirmed: 'etag' (the service's MD5s, read back when they differ) or 'read-back' (always). */
  verify?: 'etag' | 'read-back';
  /** The sink is fed from the local file (uploadBackup), not the dump as it is taken: for messages. */
  fromFile?: boolean;
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
 * bytes: the MD5 of the whole (a single PutObject, of at most one part: that part's MD5) and the
 * MD5 of the `partSize` parts' MD5s with their count (a multipart upload).
 */
function hasher(partSize: number) {
  const sha = createHash('sha256');
  const parts: Buffer[] = [];
  let md5 = createHash('md5');
  let inPart = 0;
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha.update(chunk);
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
      // A single PutObject holds at most one part's bytes: its ETag is that part's MD5 (or the empty one's).
      const whole = all.length > 1 ? [] : [(all[0] ?? createHash('md5').digest()).toString('hex')];
      return { sha256: sha.digest('hex'), bytes, etags: [...whole, multipart] };
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

/**
 * One copy's upload, opened before its bytes exist: what `sink` is given (the plaintext dump, as
 * it is produced or as it is read back from the local file) goes through age into a multipart
 * upload at once; finish() then confirms it and writes its metadata object, LAST.
 */
export interface UploadSession {
  key: string;
  /**
   * Where the plaintext dump goes: written and ended by the caller. Destroying it (with an error)
   * gives up: the multipart upload is aborted. It closes by itself when the upload fails, so a
   * producer that feeds it must stop writing then (and go on with its own work).
   */
  sink: Writable;
  /**
   * Once the sink has ended and `local` is complete (its metadata written): the plaintext must be
   * `local`'s (sha256, size), the service must hold what was sent, then the copy's metadata object,
   * then the manifests. Any failure removes the object (best effort) and rejects.
   */
  finish(local: StoredBackup, localStore: Store): Promise<Uploaded>;
  /** Give up (the local backup failed): the multipart upload aborted, or the object removed if it completed. Never rejects. */
  cancel(): Promise<void>;
}

/** Open the upload of backup `id` of `target` into `bucket`. See UploadSession and the header. */
export function startUpload(runner: Runner, target: Target, id: string, bucket: S3Store, o: UploadOptions = {}): UploadSession {
  const ref = { project: target.project, environment: target.environment };
  const key = offsiteKey(target, id);
  const recipients = target.encryption?.ageRecipients;
  // The sink takes up to SINK_BUFFER before its producer waits: a part's request to the service
  // pausing the upload then does not pause the dump that feeds it (the backup pipeline's tee).
  const plain = hashingTap(undefined, SINK_BUFFER);
  const stored = hasher(bucket.partSize);
  const bytes = recipients ? new Age(runner).encrypt(plain.stream, recipients, { signal: o.signal, target: ref }) : plain.stream;
  bytes.once('error', (e) => stored.stream.destroy(e));
  bytes.pipe(stored.stream);
  let saved = false;
  const saving = bucket.save(key, stored.stream, { signal: o.signal }).then(
    () => {
      saved = true;
    },
    (e: unknown) => {
      // Stop what feeds the upload: the sink closes (its producer stops writing), and age with it.
      plain.stream.destroy(new Error('the upload ended'));
      throw e;
    },
  );
  saving.catch(() => undefined); // finish() or cancel() has it
  const removeObject = () => (saved ? bucket.remove(key).then(() => undefined, () => undefined) : Promise.resolve());
  return {
    key,
    sink: plain.stream,
    async finish(local, localStore) {
      await saving;
      try {
        const p = { sha256: plain.digest(), bytes: plain.bytes() };
        if (p.sha256 !== local.meta.sha256 || p.bytes !== local.meta.size_bytes)
          throw new VerificationError(`${local.path}: the ${o.fromFile ? 'local dump read for upload' : 'dump sent offsite'} is not the backup (sha256 ${p.sha256}, ${p.bytes} bytes; metadata says ${local.meta.sha256}, ${local.meta.size_bytes}); nothing kept offsite`, ref);
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
        await removeObject();
        throw e;
      }
    },
    async cancel() {
      if (!plain.stream.writableEnded) plain.stream.destroy(new Error('the local backup failed'));
      await saving.then(removeObject, () => undefined);
    },
  };
}

/**
 * One object of a local store uploaded whole under `key` (a PITR base backup or WAL file, whose
 * record or metadata object the caller writes after, LAST): `source` streamed through age to
 * `recipients` when given, the plaintext's sha256 and size checked against `expect` (the local
 * record's), the stored bytes confirmed as the dumps' are (ETag, else read back). Any failure
 * removes the object (best effort) and rejects; an aborted signal: InterruptedError.
 */
export async function uploadObject(runner: Runner, bucket: S3Store, key: string, source: Readable, o: UploadOptions & { recipients?: readonly string[]; expect: { sha256: string; bytes: number }; target?: TargetRef }): Promise<{ sha256: string; bytes: number; verifiedBy: 'etag' | 'read-back' }> {
  const plain = hashingTap();
  source.once('error', (e) => plain.stream.destroy(e));
  source.pipe(plain.stream);
  const stored = hasher(bucket.partSize);
  const bytes = o.recipients?.length ? new Age(runner).encrypt(plain.stream, o.recipients, { signal: o.signal, target: o.target }) : plain.stream;
  bytes.once('error', (e) => stored.stream.destroy(e));
  bytes.pipe(stored.stream);
  let saved = false;
  try {
    await bucket.save(key, stored.stream, { signal: o.signal });
    saved = true;
    if (plain.digest() !== o.expect.sha256 || plain.bytes() !== o.expect.bytes)
      throw new VerificationError(`${bucket.location}/${key}: the local file read for upload is not the one recorded (${plain.bytes()} bytes read, ${o.expect.bytes} recorded): changed or damaged on this host; nothing kept offsite`, o.target);
    const s = stored.result();
    return { sha256: s.sha256, bytes: s.bytes, verifiedBy: await confirm(bucket, key, s, o) };
  } catch (e) {
    // Stop what feeds the upload: the file, and age with its input (it would wait on it forever).
    source.destroy();
    if (!plain.stream.destroyed) plain.stream.destroy(new Error('the upload ended'));
    if (saved) await bucket.remove(key).catch(() => undefined);
    throw e;
  }
}

/** Upload `local` (a complete backup in `localStore`) to `bucket`, read back from its file. See the header for the promises. */
export async function uploadBackup(runner: Runner, target: Target, local: StoredBackup, localStore: Store, bucket: S3Store, o: UploadOptions = {}): Promise<Uploaded> {
  const source = await localStore.load(local.key);
  const up = startUpload(runner, target, local.meta.id, bucket, { ...o, fromFile: true });
  source.once('error', (e) => up.sink.destroy(e));
  // The sink closes when the upload fails: stop reading the file then.
  up.sink.once('close', () => source.destroy());
  let read = 0;
  if (o.onBytes) source.on('data', (c: Buffer) => o.onBytes!((read += c.length)));
  source.pipe(up.sink);
  return up.finish(local, localStore);
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
