/**
 * The Store on S3-compatible object storage (AWS, R2, B2, Wasabi, MinIO, Ceph's gateway), with the
 * AWS SDK v3. Keys live under the URL's prefix: `s3://bucket/prefix` + `/` + key.
 *
 * Beyond store.ts's promises:
 * - save() streams a multipart upload (8 MiB parts, two in flight: memory stays flat, under
 *   100 MB; S3's 10,000 parts make 78 GiB the largest object, `partSize` raises it); S3 makes
 *   the object appear only when the upload completes. A source error or an aborted signal aborts
 *   the multipart upload before save() rejects; if even the abort fails (endpoint gone), the
 *   upload is left for abandoned()/removeAbandoned(), never listed.
 * - With `objectLock`, every object written carries that retention (mode, retain-until = now +
 *   days), and remove() deletes the key's versions, so a locked one is refused (not hidden behind
 *   a delete marker).
 * - Credentials, bounded requests, checksums and error messages: see s3-client.ts (never a
 *   credential from config, argv or in a message; an unreachable endpoint fails in seconds).
 * Content is checked by pgfleet's own sha256 (metadata), not by the service's checksums.
 */
import { Readable, Transform, addAbortSignal } from 'node:stream';
import {
  type S3Client,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  PutObjectRetentionCommand,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PgfleetError, InterruptedError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { parseS3Url } from '../config/offsite.js';
import { makeS3Client, s3Failure, S3StoreError, type S3ClientOptions } from './s3-client.js';
import { NotFoundError, checkKey, checkPrefix, isKey, type Abandoned, type ObjectInfo, type SaveOptions, type SaveResult, type Store } from './store.js';

export { S3StoreError };

export interface S3StoreOptions extends S3ClientOptions {
  /** s3://bucket[/prefix] */
  url: string;
  storageClass?: string;
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
  partSize?: number;
  now?: () => Date;
}

/** An object's size, ETag (quotes removed) and object lock, as the service reports them. */
export interface ObjectHead {
  size: number;
  etag: string;
  lock: { mode?: string; retainUntil?: Date; legalHold: boolean };
}

/** An abort's reason for InterruptedError: 'SIGTERM' whether given as a string or an Error. */
const reasonOf = (signal: AbortSignal) => (signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'SIGINT'));

const MiB = 1024 * 1024;
const PART_SIZE = 8 * MiB;
const QUEUE_SIZE = 2;

export class S3Store implements Store {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly secrets: string[];
  private readonly now: () => Date;

  constructor(private readonly o: S3StoreOptions) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Url(o.url));
    this.location = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
    this.now = o.now ?? (() => new Date());
    ({ client: this.client, secrets: this.secrets } = makeS3Client(o));
  }

  /** The size of a multipart upload's parts (the last one smaller): what the object's ETag is made of. */
  get partSize(): number {
    return this.o.partSize ?? PART_SIZE;
  }

  private full(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private fail(op: string, key: string, e: unknown): Error {
    return s3Failure({ ...this.o, location: this.location, bucket: this.bucket, secrets: this.secrets }, op, key, e);
  }

  private base(): string {
    return this.prefix ? `${this.prefix}/` : '';
  }

  async save(key: string, data: Readable | Buffer | string, o: SaveOptions = {}): Promise<SaveResult> {
    const Key = this.full(key);
    const signal = o.signal;
    if (signal?.aborted) throw new InterruptedError(reasonOf(signal));
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        cb(null, chunk);
      },
    });
    // An aborted signal ends the source with an error: the upload then aborts its multipart
    // upload before it rejects (an abort passed to Upload itself would reject first, leaving it).
    const source = typeof data === 'string' || Buffer.isBuffer(data) ? Readable.from([Buffer.from(data)]) : data;
    // pipe(), not pipeline(): when the upload gives up and stops reading, pipeline() would destroy
    // the source with an error of its own, which would then pass for the source's failure.
    let sourceError: unknown;
    source.once('error', (e) => {
      sourceError = e;
      counted.destroy(e);
    });
    source.pipe(signal ? addAbortSignal(signal, counted) : counted);
    const lock = this.o.objectLock;
    const retainUntil = lock ? new Date(this.now().getTime() + lock.days * 86_400_000) : undefined;
    const partSize = this.partSize;
    const upload = new Upload({
      client: this.client,
      partSize,
      queueSize: QUEUE_SIZE,
      params: {
        Bucket: this.bucket,
        Key,
        Body: counted,
        StorageClass: this.o.storageClass as StorageClass | undefined,
        ...(lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: retainUntil } : {}),
      },
    });
    let versionId: string | undefined;
    try {
      versionId = (await upload.done()).VersionId;
    } catch (e) {
      counted.destroy();
      source.destroy();
      if (signal?.aborted) throw new InterruptedError(reasonOf(signal));
      // The source's own failure (a dump that died) is the save's reason, not the service.
      if (sourceError instanceof PgfleetError) throw sourceError;
      if (sourceError) throw new S3StoreError(redact(`${this.location}: save ${key}: the source failed, upload aborted: ${(sourceError as Error).message}`, this.secrets));
      throw this.fail('save', key, e);
    }
    // A single PutObject carries its lock headers everywhere; a multipart upload (more than one
    // part) does not on every service, so its retention is checked and set if missing.
    if (lock && size > partSize) await this.ensureRetention(key, versionId, lock.mode, retainUntil!);
    return { key, size };
  }

  /**
   * Make sure the version just written carries its retention: some services (Ceph's gateway 16)
   * ignore the lock headers of a multipart upload. Needs s3:GetObjectRetention (else HEAD omits
   * the lock) and s3:PutObjectRetention (which can extend a COMPLIANCE lock, never shorten it).
   * When it cannot be set, the version is deleted (best effort) and the save fails: an unlocked
   * copy must not pass for a locked one.
   */
  private async ensureRetention(key: string, VersionId: string | undefined, mode: 'GOVERNANCE' | 'COMPLIANCE', until: Date): Promise<void> {
    const Key = this.full(key);
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key, VersionId }));
      if (h.ObjectLockMode === mode && (h.ObjectLockRetainUntilDate?.getTime() ?? 0) >= until.getTime() - 1000) return;
      await this.client.send(new PutObjectRetentionCommand({ Bucket: this.bucket, Key, VersionId: VersionId ?? h.VersionId, Retention: { Mode: mode, RetainUntilDate: until } }));
    } catch (e) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key, VersionId })).catch(() => undefined);
      throw this.fail('set retention of', key, e);
    }
  }

  async load(key: string, o: { signal?: AbortSignal } = {}): Promise<Readable> {
    const Key = this.full(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: o.signal });
      const body = r.Body as Readable;
      return o.signal ? addAbortSignal(o.signal, body) : body;
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(key, this.location);
      throw this.fail('load', key, e);
    }
  }

  async read(key: string): Promise<Buffer> {
    const Key = this.full(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(key, this.location);
      throw this.fail('read', key, e);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const Key = this.full(key);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, size: r.ContentLength ?? 0, mtime: r.LastModified ?? new Date(0) };
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404 && (e as { name?: string }).name !== 'NoSuchBucket') return null;
      throw this.fail('stat', key, e);
    }
  }

  /** What the service says of one object beyond stat(): its ETag and its object lock. Throws NotFoundError. */
  async head(key: string, o: { signal?: AbortSignal } = {}): Promise<ObjectHead> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }), { abortSignal: o.signal });
      return {
        size: r.ContentLength ?? 0,
        etag: (r.ETag ?? '').replace(/"/g, ''),
        lock: { mode: r.ObjectLockMode, retainUntil: r.ObjectLockRetainUntilDate, legalHold: r.ObjectLockLegalHoldStatus === 'ON' },
      };
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404 && (e as { name?: string }).name !== 'NoSuchBucket') throw new NotFoundError(key, this.location);
      throw this.fail('head', key, e);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const base = this.base();
    const out: ObjectInfo[] = [];
    let ContinuationToken: string | undefined;
    try {
      do {
        const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base + prefix, ContinuationToken }));
        for (const c of r.Contents ?? []) {
          const key = c.Key!.slice(base.length);
          if (isKey(key)) out.push({ key, size: c.Size ?? 0, mtime: c.LastModified ?? new Date(0) });
        }
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (ContinuationToken);
    } catch (e) {
      throw this.fail('list', prefix || '(all)', e);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    const Key = this.full(key);
    try {
      if (!this.o.objectLock) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
        return;
      }
      // A locked bucket is versioned: delete the versions themselves, so a lock refuses it.
      const r = await this.client.send(new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: Key }));
      for (const v of [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])].filter((v) => v.Key === Key))
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key, VersionId: v.VersionId }));
    } catch (e) {
      throw this.fail('remove', key, e);
    }
  }

  async abandoned(prefix: string, before: Date): Promise<Abandoned[]> {
    checkPrefix(prefix);
    const base = this.base();
    const out: Abandoned[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    try {
      do {
        const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: base + prefix, KeyMarker, UploadIdMarker }));
        for (const u of r.Uploads ?? []) {
          const key = u.Key!.slice(base.length);
          if (u.UploadId && u.Initiated && u.Initiated < before && isKey(key)) out.push({ key, handle: u.UploadId, startedAt: u.Initiated });
        }
        [KeyMarker, UploadIdMarker] = r.IsTruncated ? [r.NextKeyMarker, r.NextUploadIdMarker] : [undefined, undefined];
      } while (KeyMarker);
    } catch (e) {
      throw this.fail('list uploads', prefix || '(all)', e);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async removeAbandoned(a: Abandoned): Promise<void> {
    const Key = this.full(a.key);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: a.handle }));
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchUpload') return;
      throw this.fail('abort upload', a.key, e);
    }
  }
}
